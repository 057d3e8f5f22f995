import Dispatch
import Foundation
import Logging
import Testing
import VouchCore
import VouchDetect
import VouchEvidence
import VouchStore
@testable import VouchAgent

#if canImport(Glibc)
import Glibc
#endif

/// Release windows on the live agent: opened and closed through the pipeline (and the control socket),
/// recorded in the chain with the window state in the same transaction, honoured by the detectors,
/// ended at their time, kept across an agent restart in the same boot and ended by a reboot.
@Suite struct ReleaseWindowTests {
    typealias T = AgentFixtures

    /// A scale (whole kg, read every 10 s) guarded by a weight-drop rule: drops of more than 100 kg
    /// that hold a minute; and a door channel that no rule watches.
    static let siteText = """
        [device]
        id = "acme-store-1"
        data_dir = "/var/lib/vouch"

        [bank]
        url = "https://bank.example:8443"

        [shift]
        timezone = "UTC"
        start = "00:00"
        end = "24:00"

        [release]
        max_duration = "4h"

        [[modbus.device]]
        name = "scale"
        url = "tcp://192.168.1.30:502"
        unit_id = 1
        poll_interval = "10s"

        [[modbus.device.channel]]
        name = "weight"
        register = "holding"
        address = 0
        type = "u32"
        unit = "kg"

        [[modbus.device.channel]]
        name = "door"
        register = "coil"
        address = 0
        type = "bool"

        [[detect]]
        id = "stock-left"
        kind = "weight_drop"
        channel = "scale.weight"
        tolerance = 100
        noise = 5
        settle = "1m"

        """

    struct Site {
        let store: TemporaryOutbox
        let clock: ScriptedClock
        let pipeline: EvidencePipeline
        let events = Counter()

        init(releases: ReleaseBook = ReleaseBook(bootID: "boot-a"), store: TemporaryOutbox? = nil, at seconds: Int64 = 0) throws {
            self.store = try store ?? TemporaryOutbox()
            clock = ScriptedClock(T.time(seconds))
            let config = try ConfigLoader.parse(ReleaseWindowTests.siteText, file: "/etc/vouch/vouch.toml")
            let engine = try DetectorFactory.engine(for: config)
            let counter = events
            pipeline = EvidencePipeline(
                config: config, outbox: self.store.outbox, clock: clock, logger: T.quietLogger, engine: engine, releases: releases, onEvent: { counter.increment() })
        }

        /// Readings every 10 s from `from` up to (not including) `to`, at `kg`.
        func weigh(_ kg: Int64, from: Int64, to: Int64) async {
            for s in stride(from: from, to: to, by: 10) {
                clock.set(T.time(s))
                await pipeline.ingest([Reading(channel: "scale.weight", time: T.time(s), value: kg, scaleExponent: 0, unit: "kg", rawWords: [], quality: .ok)])
            }
        }

        func records() throws -> [EvidenceRecord] { try store.sealAndVerifyRecords() }
    }

    static func actions(_ records: [EvidenceRecord]) -> [TechnicianAction] { records.compactMap { if case .action(let a) = $0 { a } else { nil } } }
    static func events(_ records: [EvidenceRecord]) -> [EventRecord] { records.compactMap { if case .event(let e) = $0, e.phase == .start { e } else { nil } } }

    @Test("a drop inside an open window is recorded as a release; the same drop after the window is closed is an alarm")
    func releaseThenAlarm() async throws {
        let site = try Site()
        defer { site.store.cleanUp() }
        await site.weigh(10_000, from: 0, to: 180)
        let window = try await site.pipeline.openRelease(ReleaseRequest(durationMs: 7_200_000, reason: "sale to Koné Ltd, invoice 2291", by: "A. Diallo"))
        await site.weigh(8_000, from: 180, to: 360)  // 2 t leave inside the window
        let closed = try await site.pipeline.closeRelease(id: nil, note: "truck gone")
        #expect(closed.id == window.id)
        await site.weigh(8_000, from: 360, to: 480)
        await site.weigh(6_500, from: 480, to: 660)  // 1.5 t leave after it closed
        let records = try site.records()
        let events = Self.events(records)
        try #require(events.count == 2, "\(events.map(\.explanation))")
        #expect(events[0].severity == "record" && events[0].explanation.contains("inside the release window"))
        #expect(events[1].severity == "alarm" && events[1].explanation.contains("outside any release window"))
        // The open record comes before the release event, the close before the alarm.
        let order = records.map { r -> String in
            switch r {
            case .action(let a): a.action
            case .event(let e) where e.phase == .start: e.severity
            default: ""
            }
        }.filter { !$0.isEmpty }
        #expect(order == ["release_open", "record", "release_close", "alarm"])
        #expect(site.events.value >= 2, "the uplink is told at once, as for an event")
    }

    @Test("the open record says who, why, for how long and on which channels; its rseq is the window's id, saved with it")
    func openRecordAndSavedState() async throws {
        let site = try Site()
        defer { site.store.cleanUp() }
        await site.weigh(10_000, from: 0, to: 20)
        let peer = UnixPeer(uid: 1000, pid: 4321, userName: "alice")
        let window = try await site.pipeline.openRelease(
            ReleaseRequest(durationMs: 5_400_000, reason: "  weekly delivery  ", channels: ["scale.weight", "scale.weight"], by: "A. Diallo", peer: peer))
        #expect(window.reason == "weekly delivery" && window.channels == ["scale.weight"])
        #expect(window.who == "A. Diallo, as alice (uid 1000)")
        #expect(window.untilMonoMs - window.openedMonoMs == 5_400_000)
        let saved = try #require(try site.store.outbox.state(ReleaseBook.stateKey))
        #expect(try JSONDecoder().decode([ReleaseWindow].self, from: Data(saved.utf8)) == [window])
        let records = try site.records()
        let open = try #require(Self.actions(records).first)
        #expect(open.action == "release_open" && open.stamp.rseq == window.id)
        #expect(open.who == "A. Diallo, as alice (uid 1000)")
        #expect(open.params["for_ms"] == .int(5_400_000) && open.params["reason"] == .string("weekly delivery"))
        #expect(open.params["channels"] == .array([.string("scale.weight")]) && open.params["unix_user"] == .string("alice") && open.params["uid"] == .int(1000))
        #expect(open.params["until_wall_ms"] == .int(open.stamp.wallMs + 5_400_000))
        #expect(open.explanation == "release window opened for 1 h 30 min (until \(EvidencePipeline.clockTime(open.stamp.wallMs + 5_400_000))) on scale.weight: weekly delivery")
        #expect(await site.pipeline.openReleases() == [window])
    }

    @Test("a window on one channel does not cover another")
    func scopedToItsChannels() async throws {
        let site = try Site()
        defer { site.store.cleanUp() }
        await site.weigh(10_000, from: 0, to: 180)
        _ = try await site.pipeline.openRelease(ReleaseRequest(durationMs: 3_600_000, reason: "door repair", channels: ["scale.door"]))
        await site.weigh(8_000, from: 180, to: 360)
        let events = Self.events(try site.records())
        #expect(events.map(\.severity) == ["alarm"])
    }

    @Test("a window ends at its set time: its cover stops there, and the end is recorded at the next reading")
    func expiry() async throws {
        let site = try Site()
        defer { site.store.cleanUp() }
        await site.weigh(10_000, from: 0, to: 180)
        let window = try await site.pipeline.openRelease(ReleaseRequest(durationMs: 60_000, reason: "one pallet"))
        // The drop begins after the window's minute: an alarm, though no reading came in between.
        await site.weigh(10_000, from: 180, to: 240)
        await site.weigh(8_000, from: 240, to: 400)
        #expect(await site.pipeline.openReleases().isEmpty)
        #expect(try site.store.outbox.state(ReleaseBook.stateKey) == "[]")
        let records = try site.records()
        let actions = Self.actions(records)
        #expect(actions.map(\.action) == ["release_open", "release_expired"])
        #expect(actions[1].params["release"] == .int(window.id) && actions[1].who == "agent")
        #expect(actions[1].explanation.contains("ended at its set time"))
        #expect(Self.events(records).map(\.severity) == ["alarm"])
    }

    @Test("a drop that began before the window opened stays an alarm: open the window before moving stock")
    func dropBeforeTheWindow() async throws {
        let site = try Site()
        defer { site.store.cleanUp() }
        await site.weigh(10_000, from: 0, to: 180)
        await site.weigh(8_000, from: 180, to: 220)
        _ = try await site.pipeline.openRelease(ReleaseRequest(durationMs: 3_600_000, reason: "late paperwork"))
        await site.weigh(8_000, from: 220, to: 400)
        #expect(Self.events(try site.records()).map(\.severity) == ["alarm"])
    }

    @Test("bad requests are refused with what was wrong, and open nothing", arguments: [
        (ReleaseRequest(durationMs: 30_000, reason: "x"), "at least 1 min"),
        (ReleaseRequest(durationMs: 5 * 3_600_000, reason: "x"), "at most 4 h ([release] max_duration)"),
        (ReleaseRequest(durationMs: 3_600_000, reason: "   "), "say why stock may leave"),
        (ReleaseRequest(durationMs: 3_600_000, reason: "two\nlines"), "without control characters"),
        (ReleaseRequest(durationMs: 3_600_000, reason: String(repeating: "a", count: 501)), "at most 500"),
        (ReleaseRequest(durationMs: 3_600_000, reason: "x", channels: ["scale.wieght"]), "\"scale.wieght\" is not a configured channel (channels: scale.weight, scale.door)"),
        (ReleaseRequest(durationMs: 3_600_000, reason: "x", by: ""), "--by must be a name"),
    ])
    func refused(request: ReleaseRequest, expected: String) async throws {
        let site = try Site()
        defer { site.store.cleanUp() }
        await #expect {
            _ = try await site.pipeline.openRelease(request)
        } throws: { error in
            guard let e = error as? ReleaseError else { return false }
            return e.code == .input && e.message.contains(expected)
        }
        #expect(Self.actions(try site.records()).isEmpty)
        #expect(try site.store.outbox.state(ReleaseBook.stateKey) == nil)
    }

    @Test("close: the only open window without an id; several need one; an unknown id is refused")
    func closing() async throws {
        let site = try Site()
        defer { site.store.cleanUp() }
        await #expect(throws: ReleaseError(.notOpen, "no release window is open")) { _ = try await site.pipeline.closeRelease(id: nil) }
        let a = try await site.pipeline.openRelease(ReleaseRequest(durationMs: 3_600_000, reason: "a"))
        let b = try await site.pipeline.openRelease(ReleaseRequest(durationMs: 3_600_000, reason: "b"))
        await #expect(throws: ReleaseError(.ambiguous, "2 release windows are open (\(a.id), \(b.id)): say which one to close")) {
            _ = try await site.pipeline.closeRelease(id: nil)
        }
        await #expect(throws: ReleaseError(.notOpen, "no release window 999 is open (open: \(a.id), \(b.id))")) { _ = try await site.pipeline.closeRelease(id: 999) }
        #expect(try await site.pipeline.closeRelease(id: b.id).id == b.id)
        #expect(try await site.pipeline.closeRelease(id: nil).id == a.id)
        let actions = Self.actions(try site.records())
        #expect(actions.map(\.action) == ["release_open", "release_open", "release_close", "release_close"])
        #expect(actions[2].params["release"] == .int(b.id))
    }

    @Test("an outbox that cannot be written opens nothing and says so")
    func unwritableOutbox() async throws {
        let store = try TemporaryOutbox()
        defer { store.cleanUp() }
        let readOnly = try Outbox(path: store.outbox.path, readOnly: true)
        let config = try ConfigLoader.parse(Self.siteText, file: "/etc/vouch/vouch.toml")
        let pipeline = EvidencePipeline(config: config, outbox: readOnly, clock: ScriptedClock(T.time(0)), logger: T.quietLogger, onEvent: {})
        await #expect {
            _ = try await pipeline.openRelease(ReleaseRequest(durationMs: 3_600_000, reason: "sale"))
        } throws: { ($0 as? ReleaseError)?.code == .store }
        #expect(await pipeline.openReleases().isEmpty)
    }

    @Test("a restart in the same boot keeps an open window; a reboot ends it with a record")
    func restart() async throws {
        let store = try TemporaryOutbox()
        defer { store.cleanUp() }
        let first = try Site(store: store)
        await first.weigh(10_000, from: 0, to: 180)
        let window = try await first.pipeline.openRelease(ReleaseRequest(durationMs: 3_600_000, reason: "sale"))

        // The agent restarts ten minutes later in the same kernel boot: the window goes on.
        let kept = try VouchAgent.Agent.resumeReleases(outbox: store.outbox, bootID: "boot-a", now: T.time(780), logger: T.quietLogger)
        #expect(kept.open == [window])
        let second = try Site(releases: kept, store: store, at: 780)
        await second.weigh(10_000, from: 780, to: 960)
        await second.weigh(8_000, from: 960, to: 1_140)
        #expect(Self.events(try store.sealAndVerifyRecords()).map(\.severity) == ["record"])

        // The gateway reboots: the window ends, recorded, and a drop is an alarm again.
        let rebooted = try VouchAgent.Agent.resumeReleases(outbox: store.outbox, bootID: "boot-b", now: T.time(2_000, boot: 3), logger: T.quietLogger)
        #expect(rebooted.open.isEmpty)
        #expect(try store.outbox.state(ReleaseBook.stateKey) == "[]")
        let ended = Self.actions(try store.sealAndVerifyRecords())
        #expect(ended.map(\.action) == ["release_ended"] && ended[0].params["cause"] == .string("reboot") && ended[0].params["release"] == .int(window.id))
        // Resuming again records nothing more.
        _ = try VouchAgent.Agent.resumeReleases(outbox: store.outbox, bootID: "boot-b", now: T.time(2_010, boot: 3), logger: T.quietLogger)
        #expect(try store.sealAndVerifyRecords().isEmpty)
    }

    @Test("resume: a window whose time ran out while the agent was down is recorded as expired; unreadable state ends every window")
    func resumeCases() {
        let w = ReleaseWindow(id: 7, bootID: "b", openedMonoMs: 1_000, openedWallMs: 1_000, untilMonoMs: 61_000, untilWallMs: 61_000, channels: [], reason: "r", who: "x")
        let saved = ReleaseBook(bootID: "b", open: [w]).encoded()
        let before = ReleaseBook.resume(saved: saved, bootID: "b", now: ClockReading(bootCount: 2, monoNs: 60_999_000_000, wallNs: 0, quality: .synchronized))
        #expect(before.book.open == [w] && before.records.isEmpty)
        let after = ReleaseBook.resume(saved: saved, bootID: "b", now: ClockReading(bootCount: 2, monoNs: 61_000_000_000, wallNs: 0, quality: .synchronized))
        #expect(after.book.open.isEmpty && Self.actions(after.records).map(\.action) == ["release_expired"])
        let broken = ReleaseBook.resume(saved: "{not json", bootID: "b", now: ClockReading(bootCount: 2, monoNs: 0, wallNs: 0, quality: .synchronized))
        #expect(broken.book.open.isEmpty && Self.actions(broken.records).map { $0.params["cause"] } == [.string("state_unreadable")])
        #expect(ReleaseBook.resume(saved: nil, bootID: "b", now: ClockReading(bootCount: 2, monoNs: 0, wallNs: 0, quality: .synchronized)).records.isEmpty)
    }

    @Test("through the control socket: open, list and close, with the caller's Unix user as the kernel reports it")
    func controlSocket() async throws {
        let site = try Site()
        defer { site.store.cleanUp() }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vouch-rel-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let server = ControlServer(path: ControlSocket.path(dataDir: dir.path), deviceID: "acme-store-1", clients: [:], pipeline: site.pipeline, logger: T.quietLogger)
        let path = server.path
        try await offThePool { Result { () throws(ControlClientError) in try server.listen() } }.get()
        defer { server.stop() }
        func ask(_ r: ControlRequest) async throws -> ControlResponse {
            let answer = try await offThePool { Result { () throws(ControlClientError) in try ControlSocket.ask(r, socketPath: path) } }.get()
            return try #require(answer)
        }
        let opened = try await ask(.releaseOpen(durationMs: 7_200_000, reason: "sale", channels: ["scale.weight"], by: "A. Diallo"))
        #expect(opened.ok)
        let window = try #require(opened.releases?.first)
        let me = UnixPeer(uid: getuid(), pid: 0, userName: UnixPeer.userName(uid: getuid()))
        #expect(window.who == "A. Diallo, as \(me.description)")
        #expect(try await ask(ControlRequest(op: "release.list")).releases == [window])
        let refused = try await ask(.releaseOpen(durationMs: 7_200_000, reason: "sale", channels: ["nope"], by: nil))
        #expect(!refused.ok && refused.code == "E_RELEASE_INPUT" && refused.message?.contains("\"nope\" is not a configured channel") == true)
        let closed = try await ask(.releaseClose(id: window.id, by: nil, note: nil))
        #expect(closed.ok && closed.releases?.first?.id == window.id)
        #expect(try await ask(ControlRequest(op: "release.list")).releases == [])
        let open = Self.actions(try site.records())
        #expect(open.first?.params["uid"] == .int(Int64(getuid())))
    }

    func offThePool<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { c in DispatchQueue.global().async { c.resume(returning: body()) } }
    }
}

extension ReleaseRequest: CustomTestStringConvertible {
    public var testDescription: String { "\(durationMs) ms, \"\(reason.prefix(20))\", \(channels)" }
}
