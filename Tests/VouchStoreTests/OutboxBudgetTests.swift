import Foundation
import Synchronization
import Testing
import VouchCore
import VouchEvidence
@testable import VouchStore

/// The disk budget's degradation ladder on real SQLite files.
struct OutboxBudgetTests {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("vouch-budget-\(UUID().uuidString)")
    var path: String { directory.appendingPathComponent("outbox.sqlite").path }
    static let t0: Int64 = 1_764_460_800_000  // 2025-11-30T00:00:00Z, a 15-minute boundary

    /// A one-minute summary of `channel` for minute `minute` (boot 1), values derived from the minute.
    func summary(_ channel: String, minute: Int64, count: Int64 = 60, boot: Int64 = 1) -> EvidenceRecord {
        .summary(
            ReadingSummary(
                stamp: RecordStamp(rseq: 0, boot: boot, monoMs: 10_000 + minute * 60_000, wallMs: Self.t0 + minute * 60_000, timeQuality: .synchronized),
                channel: channel, intervalMs: 60_000, unit: "W", scale: 0, count: count, errors: minute % 7 == 0 ? 1 : 0, min: 1_000 + minute,
                max: 2_000 + minute, mean: 1_500 + minute, last: 1_700 + minute, lastError: minute % 7 == 0 ? "E_MODBUS_ETIMEDOUT" : nil))
    }

    func raw(_ channel: String, minute: Int64) -> EvidenceRecord {
        .raw(
            RawSamples(
                stamp: RecordStamp(rseq: 0, boot: 1, monoMs: 10_000 + minute * 60_000, wallMs: Self.t0 + minute * 60_000, timeQuality: .synchronized),
                channel: channel, unit: "W", scale: 0, periodMs: 1_000, values: (0..<60).map { 1_000 + minute * 3 + $0 * ($0 % 5) }))
    }

    func event(minute: Int64) -> EvidenceRecord {
        .event(
            EventRecord(
                stamp: RecordStamp(rseq: 0, boot: 1, monoMs: 10_000 + minute * 60_000, wallMs: Self.t0 + minute * 60_000, timeQuality: .synchronized),
                eventId: "stop@\(minute)", phase: .start, rule: "press-stop", ruleVersion: 1, channel: "meter.power", severity: "high",
                startMonoMs: 10_000 + minute * 60_000, startWallMs: Self.t0 + minute * 60_000, endMonoMs: nil, endWallMs: nil, durationMs: 15_000,
                unit: "W", scale: 0, params: ["below": 500], window: [], explanation: "meter.power below 500 W"))
    }

    func heartbeat(minute: Int64) -> EvidenceRecord {
        .heartbeat(
            Heartbeat(
                stamp: RecordStamp(rseq: 0, boot: 1, monoMs: 10_000 + minute * 60_000, wallMs: Self.t0 + minute * 60_000, timeQuality: .synchronized),
                intervalMs: 300_000, uptimeMs: minute * 60_000, backlog: 0))
    }

    static let now = RecordStamp(rseq: 0, boot: 1, monoMs: 999_000_000, wallMs: t0 + 999_000_000, timeQuality: .synchronized)

    func sealer(_ key: SigningKey) -> (Outbox.SealInput) -> SealedBatch { testSealer(key) }

    @Test("under the budget nothing is degraded")
    func underBudgetNothingHappens() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let outbox = try Outbox(path: path)
        try outbox.append((0..<100).map { summary("meter.power", minute: $0) })
        let pass = try outbox.degrade(budget: DiskBudget(bytes: 100_000_000), now: Self.now)
        #expect(!pass.degradedAnything)
        #expect(pass.gaps.isEmpty)
        #expect(try outbox.records().count == 100)
    }

    @Test("merged summaries keep exact count, errors, min, max, last and a count-weighted mean")
    func summariesMergeExactly() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let outbox = try Outbox(path: path)
        // Minutes 0–29: two 15-minute buckets; the counts differ so the mean must be weighted.
        let originals = (0..<30).compactMap { minute -> ReadingSummary? in
            if case .summary(let s) = summary("meter.power", minute: Int64(minute), count: minute % 2 == 0 ? 60 : 20) { s } else { nil }
        }
        try outbox.append(originals.map { .summary($0) })
        let pass = try outbox.degrade(budget: DiskBudget(bytes: 1_000_000), now: Self.now, targetBytes: 0)
        #expect(pass.summariesMerged >= 30)
        let left = try outbox.records().compactMap { r -> ReadingSummary? in if case .summary(let s) = r.record { s } else { nil } }
        #expect(left.count < 30)
        #expect(left.reduce(Int64(0)) { $0 + $1.count } == originals.reduce(Int64(0)) { $0 + $1.count })
        for merged in left {
            let parts = originals.filter { $0.stamp.wallMs >= merged.stamp.wallMs && $0.stamp.wallMs < merged.stamp.wallMs + merged.intervalMs }
            #expect(parts.count >= 2)
            #expect(merged.stamp.wallMs == parts.first?.stamp.wallMs)
            #expect(merged.intervalMs == (parts.last.map { $0.stamp.monoMs + $0.intervalMs } ?? 0) - (parts.first?.stamp.monoMs ?? 0))
            #expect(merged.count == parts.reduce(0) { $0 + $1.count })
            #expect(merged.errors == parts.reduce(0) { $0 + $1.errors })
            #expect(merged.min == parts.compactMap(\.min).min())
            #expect(merged.max == parts.compactMap(\.max).max())
            #expect(merged.last == parts.last?.last)
            #expect(merged.lastError == parts.last(where: { $0.lastError != nil })?.lastError)
            let weighted = Double(parts.reduce(Int64(0)) { $0 + ($1.mean ?? 0) * $1.count }) / Double(merged.count)
            #expect(merged.mean == Int64(weighted.rounded()), "count-weighted mean")
        }
    }

    @Test("a pass records one signed disk_budget gap per channel naming the rseqs and times it merged; rseqs are never reused")
    func gapsAccountForEveryDegradedRecord() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let outbox = try Outbox(path: path)
        var records: [EvidenceRecord] = []
        for minute in Int64(0)..<60 {
            records.append(summary("meter.power", minute: minute))
            records.append(summary("meter.energy", minute: minute))
        }
        let stored = try outbox.append(records)
        let highestBefore = stored.last?.stamp.rseq ?? 0
        let pass = try outbox.degrade(budget: DiskBudget(bytes: 1_000_000), now: Self.now, targetBytes: 0)
        // Target 0: every level runs; the first (15 min) merged the 60 originals of each channel.
        let gaps = pass.gaps.compactMap { r -> GapRecord? in if case .gap(let g) = r, g.detail.contains("into 15 min") { g } else { nil } }
        #expect(gaps.compactMap(\.channel).sorted() == ["meter.energy", "meter.power"])
        for gap in gaps {
            #expect(gap.reason == .diskBudget)
            #expect(gap.missing == 60, "every merged original is counted")
            #expect(gap.fromBoot == 1)
            #expect(gap.fromWallMs == Self.t0)
            #expect(gap.toWallMs == Self.t0 + 60 * 60_000)
            #expect(gap.detail.contains("merged 60 summaries of \(gap.channel ?? "")"))
            #expect(gap.detail.contains("rseq "))
            #expect(gap.stamp.rseq > highestBefore, "appended after everything that was there")
        }
        // The pass's own records come after the highest rseq ever assigned, and later appends go on after them.
        let after = try outbox.records().map(\.record.stamp.rseq)
        #expect(after.min() ?? 0 > highestBefore)
        let next = try outbox.append([heartbeat(minute: 99)])
        #expect(next.first?.stamp.rseq == (after.max() ?? 0) + 1)
    }

    @Test("raw samples go before any summary is touched, and stop as soon as they cover the excess")
    func rawGoesFirst() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let outbox = try Outbox(path: path)
        var records: [EvidenceRecord] = []
        for minute in Int64(0)..<300 {
            records.append(raw("meter.power", minute: minute))
            records.append(summary("meter.power", minute: minute))
        }
        try outbox.append(records)
        let used = try outbox.usedBytes()
        // Ask for a little room: the oldest raw records cover it, nothing else is touched.
        let pass = try outbox.degrade(budget: DiskBudget(bytes: used), now: Self.now, targetBytes: used - 20_000)
        #expect(pass.rawDropped > 0)
        #expect(pass.rawDropped < 300, "only as many as the excess needs")
        #expect(pass.summariesMerged == 0)
        let left = try outbox.records()
        #expect(left.filter { if case .summary = $0.record { true } else { false } }.count == 300, "every summary kept")
        let rawLeft = left.compactMap { r -> RawSamples? in if case .raw(let x) = r.record { x } else { nil } }
        #expect(rawLeft.count == 300 - pass.rawDropped)
        #expect(rawLeft.first?.stamp.wallMs == Self.t0 + Int64(pass.rawDropped) * 60_000, "the oldest went first")
        let gap = try #require(pass.gaps.first.flatMap { r -> GapRecord? in if case .gap(let g) = r { g } else { nil } })
        #expect(gap.missing == Int64(pass.rawDropped))
        #expect(gap.detail.contains("raw-sample"))
    }

    @Test("events, heartbeats and sealed batches are never degraded, however far over the budget")
    func findingsAndSealedBatchesStay() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let outbox = try Outbox(path: path)
        let key = SigningKey.generate()
        try outbox.append((0..<30).map { summary("meter.power", minute: $0) })
        let sealed = try #require(try outbox.sealNext(maxRecords: 100, seal: sealer(key)))
        var later: [EvidenceRecord] = []
        for minute in Int64(30)..<90 {
            later.append(summary("meter.power", minute: minute))
            if minute % 10 == 0 { later.append(event(minute: minute)) }
            if minute % 5 == 0 { later.append(heartbeat(minute: minute)) }
        }
        try outbox.append(later)
        let pass = try outbox.degrade(budget: DiskBudget(bytes: 1_000_000), now: Self.now, targetBytes: 0)
        #expect(pass.stillOver, "a target of 0 cannot be met: what is left may not be degraded")
        let left = try outbox.records()
        #expect(left.filter { if case .event = $0.record { true } else { false } }.count == 6)
        #expect(left.filter { if case .heartbeat = $0.record { true } else { false } }.count == 12)
        #expect(try outbox.sealedBatches().map(\.batch) == [sealed], "a signed batch is never changed")
        #expect(left.filter { $0.bseq == 1 }.count == 30, "sealed records untouched")
        // Only the unsealed minutes 30–89 were merged (into one summary at the coarsest level).
        #expect(left.filter { if case .summary = $0.record, $0.bseq == nil { true } else { false } }.count == 1)
    }

    @Test("summaries of different boots are never merged (their monotonic times are not comparable)")
    func bootsStayApart() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let outbox = try Outbox(path: path)
        try outbox.append((0..<10).map { summary("meter.power", minute: $0, boot: 1) } + (0..<10).map { summary("meter.power", minute: $0, boot: 2) })
        let pass = try outbox.degrade(budget: DiskBudget(bytes: 1_000_000), now: Self.now, targetBytes: 0)
        let summaries = try outbox.records().compactMap { r -> ReadingSummary? in if case .summary(let s) = r.record { s } else { nil } }
        #expect(summaries.map(\.stamp.boot).sorted() == [1, 2])
        #expect(pass.gaps.count == 2, "one gap per channel and boot")
    }

    @Test("with a budget, appends keep the outbox within it: a week of minute summaries of 4 channels in 1 MB")
    func appendsStayWithinBudget() async throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let outbox = try Outbox(path: path)
        let budget = DiskBudget(bytes: 1_000_000)
        let passes = PassLog()
        outbox.setBudget(budget) { passes.add($0) }
        let channels = (1...4).map { "meter.ch\($0)" }
        // Seconds of synchronous SQLite work: off the cooperative pool, which the other tests share.
        let peak = try await offThePool { () throws -> Int64 in
            var peak: Int64 = 0
            for hour in Int64(0)..<(7 * 24) {
                var records = (hour * 60..<(hour + 1) * 60).flatMap { minute in channels.map { summary($0, minute: minute) } }
                if hour % 24 == 0 { records.append(event(minute: hour * 60)) }
                try outbox.append(records)
                peak = max(peak, try outbox.usedBytes())
            }
            return peak
        }
        #expect(peak <= budget.bytes + 64 * 1024, "within the budget (plus the pages of one append): peak \(peak)")
        #expect(!passes.all.isEmpty)
        #expect(passes.all.allSatisfy { !$0.stillOver }, "\(passes.all.map { "\($0.usedBefore)→\($0.usedAfter) m\($0.summariesMerged)+\($0.summariesAdded)" })")
        let left = try outbox.records()
        #expect(left.filter { if case .event = $0.record { true } else { false } }.count == 7, "every event kept")
        // Every minute of every channel is still accounted for: summaries' counts add up.
        for channel in channels {
            let total = left.reduce(Int64(0)) { sum, r in if case .summary(let s) = r.record, s.channel == channel { sum + s.count } else { sum } }
            #expect(total == 7 * 24 * 60 * 60, "\(channel): no reading count lost in merging")
        }
        let gapped = left.reduce(Int64(0)) { sum, r in if case .gap(let g) = r.record { sum + g.missing } else { sum } }
        #expect(gapped > 0)
    }
}

/// Runs blocking work on a Dispatch thread and awaits it.
func offThePool<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global().async { continuation.resume(with: Result { try work() }) }
    }
}

final class PassLog: Sendable {
    private let passes = Mutex<[Degradation]>([])
    func add(_ pass: Degradation) { passes.withLock { $0.append(pass) } }
    var all: [Degradation] { passes.withLock { $0 } }
}
