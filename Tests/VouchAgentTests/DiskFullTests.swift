import Foundation
import Testing
import VouchCore
import VouchEvidence
import VouchStore
@testable import VouchAgent

#if canImport(Glibc)
import Glibc
#endif

/// The pipeline on a real, tiny file system that fills up (a tmpfs mounted for the test; root only,
/// as CI runs).
@Suite(.serialized, .enabled(if: geteuid() == 0, "mounting a tmpfs needs root"))
struct DiskFullTests {
    typealias T = AgentFixtures

    /// A 1 MB tmpfs, unmounted by `unmount()`.
    struct SmallFileSystem {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("vouch-full-\(UUID().uuidString)")
        init() throws {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            guard mount("tmpfs", directory.path, "tmpfs", 0, "size=1m") == 0 else {
                throw TestError("mount tmpfs at \(directory.path): \(String(cString: strerror(errno)))")
            }
        }
        func unmount() {
            umount2(directory.path, Int32(MNT_DETACH))
            try? FileManager.default.removeItem(at: directory)
        }
        var filler: String { directory.appendingPathComponent("filler").path }

        /// Writes a file until the file system says ENOSPC.
        func fill() throws {
            let fd = open(filler, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
            guard fd >= 0 else { throw TestError("open filler: \(String(cString: strerror(errno)))") }
            defer { close(fd) }
            let chunk = [UInt8](repeating: 0xAA, count: 4096)
            while true {
                let n = chunk.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
                if n < 0 { guard errno == ENOSPC else { throw TestError("filler: \(String(cString: strerror(errno)))") }; break }
                if n < chunk.count { continue }
            }
        }
        func free() throws { try FileManager.default.removeItem(atPath: filler) }
    }

    struct TestError: Error, CustomStringConvertible {
        let description: String
        init(_ d: String) { description = d }
    }

    @Test("disk full: the agent keeps running, keeps records in memory up to its limit, and once space returns stores them with a signed event and a gap for what it had to drop")
    func diskFullThenRecovery() async throws {
        let fs = try SmallFileSystem()
        defer { fs.unmount() }
        let outbox = try Outbox(path: fs.directory.appendingPathComponent("outbox.sqlite").path)
        let clock = ScriptedClock(T.time(0))
        let events = Counter()
        let pipeline = EvidencePipeline(
            config: try T.config(), outbox: outbox, clock: clock, logger: T.quietLogger, maxUnstored: 20, onEvent: { events.increment() })
        func feed(_ seconds: ClosedRange<Int64>) async {
            for s in seconds {
                clock.set(T.time(s))
                await pipeline.ingest([T.reading(T.time(s), value: 1_000 + s % 50)])
            }
        }

        await feed(0...119)  // two minutes, stored
        let before = try outbox.status().records
        #expect(before == 1, "the first minute's summary is stored (the second closes with the next reading)")

        try fs.fill()
        await feed(120...(120 + 30 * 60 - 1))  // 30 minutes while the disk is full
        #expect(try outbox.status().records == before, "nothing could be written")
        #expect(events.value == 0)

        try fs.free()
        await feed((120 + 30 * 60)...(120 + 31 * 60))  // space is back: the next store writes everything
        await pipeline.flush()
        let records = try outbox.records().map(\.record)

        let outage = records.compactMap(\.event).filter { $0.rule == "store-unwritable" }
        #expect(outage.map(\.phase) == [.start, .end], "the outage is one event, start and end")
        #expect(outage.first?.params["error"] == .string("E_STORE_FULL"))
        #expect(outage.first?.startMonoMs == T.time(120).monoMs, "it began with the first store that failed (the second summary)")
        #expect(events.value >= 1, "the uplink is woken for it")

        let dropGaps = records.compactMap(\.gap).filter { $0.reason == .diskBudget && $0.detail.contains("memory limit") }
        #expect(dropGaps.count == 1)
        let dropped = dropGaps.first?.missing ?? 0
        #expect(dropped > 0, "30 summaries cannot all wait in a memory of 20")
        // Every reading fed is accounted for: in a stored summary, or in a summary the gap says was dropped.
        let counted = records.compactMap(\.summary).reduce(Int64(0)) { $0 + $1.count }
        #expect(counted + dropped * 60 == 120 + 31 * 60 + 1, "stored \(counted) readings, dropped \(dropped) summaries")
        let rseqs = records.map(\.stamp.rseq)
        #expect(rseqs == Array(1...Int64(rseqs.count)), "rseq gap-free: nothing stored was lost")
        #expect(dropGaps.first?.fromWallMs == T.time(60).wallMs, "the oldest summaries were dropped first")
    }
    @Test("while the disk is full a store is retried at most every 5 s, not at every reading")
    func retriesAreSpacedOut() async throws {
        let fs = try SmallFileSystem()
        defer { fs.unmount() }
        let outbox = try Outbox(path: fs.directory.appendingPathComponent("outbox.sqlite").path)
        let clock = ScriptedClock(T.time(0))
        let pipeline = EvidencePipeline(config: try T.config(), outbox: outbox, clock: clock, logger: T.quietLogger, onEvent: {})
        func feed(_ seconds: ClosedRange<Int64>) async {
            for s in seconds {
                clock.set(T.time(s))
                await pipeline.ingest([T.reading(T.time(s), value: 1_000)])
            }
        }
        await feed(0...60)  // the first summary is stored
        let stored = try outbox.status().records
        try fs.fill()
        await feed(61...120)  // second 120 closes the second summary: the store fails, the next try is due at 125
        try fs.free()
        await feed(121...124)
        #expect(try outbox.status().records == stored, "no retry before 5 s have passed, although there is room again")
        await feed(125...125)
        #expect(try outbox.status().records > stored, "retried once 5 s have passed")
    }
}
