import Foundation
import GRDB
import VouchEvidence

/// The outbox's size budget, and the degradation ladder that keeps it when the bank is out of reach
/// for long enough that unsent evidence outgrows it.
///
/// What may go, least valuable first, and only among records not yet sealed (a sealed batch is signed
/// and chained: it is never changed):
/// 1. raw samples (`raw`): the summaries of the same intervals stay;
/// 2. summaries (`sum`), merged per channel and boot into coarser intervals: 15 min, then 1 h, 6 h, 1 day.
///    A merged summary keeps the exact count, errors, min, max, last and the count-weighted mean.
///
/// What never goes: events, gaps, heartbeats, configuration, attestation, key and clock records.
/// Every pass that degrades anything appends, in the same transaction, one signed `disk_budget` gap
/// per channel, boot and step: what went, between which times, how many records, which `rseq` range.
/// The removed `rseq`s are never reused; the bank sees them missing and the gap record says why.
public struct DiskBudget: Sendable, Equatable {
    /// Database pages in use (the WAL excluded: SQLite checkpoints it at about 4 MB).
    public var bytes: Int64
    /// A pass degrades until the outbox is under this share of the budget, so that it runs seldom
    /// rather than at every append once the budget is reached.
    public var lowWater: Double

    /// Summary intervals a pass merges into, finest first.
    public static let coarserIntervalsMs: [Int64] = [15 * 60_000, 3_600_000, 6 * 3_600_000, 86_400_000]

    public init(bytes: Int64, lowWater: Double = 0.85) {
        self.bytes = bytes
        self.lowWater = lowWater
    }
}

/// What one degradation pass did.
public struct Degradation: Sendable, Equatable {
    /// Outbox bytes in use before and after.
    public var usedBefore: Int64
    public var usedAfter: Int64
    /// Raw-sample records dropped, summaries merged away (the originals) and merged summaries added.
    public var rawDropped: Int
    public var summariesMerged: Int
    public var summariesAdded: Int
    /// The signed gap records appended, one per channel, boot and step.
    public var gaps: [EvidenceRecord]
    /// Still over the budget (or the target asked for) after every step: what is left cannot be
    /// degraded (events, gaps, sealed batches waiting for the bank).
    public var stillOver: Bool

    public var degradedAnything: Bool { rawDropped > 0 || summariesMerged > 0 }
}

extension Outbox {
    /// Bytes of database pages in use, now (inside a transaction: including its changes).
    static func usedBytes(_ db: Database) throws -> Int64 {
        let pages = try Int64.fetchOne(db, sql: "PRAGMA page_count") ?? 0
        let free = try Int64.fetchOne(db, sql: "PRAGMA freelist_count") ?? 0
        let size = try Int64.fetchOne(db, sql: "PRAGMA page_size") ?? 4096
        return (pages - free) * size
    }

    /// About what a record row costs beside its body (rowid, header, index entry, cell pointer).
    static let rowOverheadBytes: Int64 = 24

    /// Bytes of database pages the outbox uses.
    public func usedBytes() throws(StoreError) -> Int64 {
        try read("measure the outbox") { db in try Self.usedBytes(db) }
    }

    /// Degrades unsealed readings until the outbox is under `targetBytes` (default: the budget's low
    /// water mark) and records what it did, in one transaction. Does nothing under the budget unless
    /// `targetBytes` is given (to make room when the disk itself is full). `now` stamps the gap records.
    @discardableResult
    public func degrade(budget: DiskBudget, now: RecordStamp, targetBytes: Int64? = nil) throws(StoreError) -> Degradation {
        try write("degrade readings to keep the disk budget") { db in
            try Self.degrade(db, budget: budget, now: now, targetBytes: targetBytes)
        }
    }

    static func degrade(_ db: Database, budget: DiskBudget, now: RecordStamp, targetBytes: Int64?) throws -> Degradation {
        let before = try usedBytes(db)
        var result = Degradation(usedBefore: before, usedAfter: before, rawDropped: 0, summariesMerged: 0, summariesAdded: 0, gaps: [], stillOver: false)
        let target: Int64
        if let targetBytes {
            target = targetBytes
        } else {
            guard before > budget.bytes else { return result }
            target = Int64(Double(budget.bytes) * budget.lowWater)
        }
        guard before > target else { return result }
        // Removed rseqs are never handed out again.
        try setMeta(db, "last_rseq", try highestRseq(db))
        var ledger = DegradationLedger()

        // Step 1: raw samples, oldest first. Raw rows share pages with the summaries of their time, so
        // deleting them frees space inside pages before it frees whole pages: stop once their bytes
        // would have covered the excess, and let the summary step (which empties those pages) go on.
        var cursor: Int64 = 0
        var freedLogically: Int64 = 0
        while freedLogically < before - target {
            let rows = try Row.fetchAll(
                db, sql: "SELECT rseq, body FROM record WHERE bseq IS NULL AND kind = 'raw' AND rseq > ? ORDER BY rseq LIMIT 256", arguments: [cursor])
            guard let lastRow = rows.last else { break }
            cursor = lastRow["rseq"]
            for row in rows {
                guard case .raw(let r) = try decode(row) else { continue }
                let rseq: Int64 = row["rseq"]
                ledger.note(.raw, channel: r.channel, boot: r.stamp.boot, rseq: rseq, from: r.stamp, toMonoMs: r.stamp.monoMs + r.periodMs * Int64(r.values.count),
                            toWallMs: r.stamp.wallMs + r.periodMs * Int64(r.values.count))
                try db.execute(sql: "DELETE FROM record WHERE rseq = ?", arguments: [rseq])
                freedLogically += Int64((row["body"] as Data).count) + Self.rowOverheadBytes
                result.rawDropped += 1
            }
        }

        // Step 2: summaries merged into ever coarser intervals, oldest first.
        for level in DiskBudget.coarserIntervalsMs {
            cursor = 0
            while try usedBytes(db) > target {
                let rows = try Row.fetchAll(
                    db, sql: "SELECT rseq, body FROM record WHERE bseq IS NULL AND kind = 'sum' AND rseq > ? ORDER BY rseq LIMIT 1024", arguments: [cursor])
                guard let lastRow = rows.last else { break }
                cursor = lastRow["rseq"]
                // Summaries of one channel, boot, unit and scale, whose interval starts fall in the
                // same wall-clock bucket of this level, become one.
                var groups: [MergeKey: [(rseq: Int64, summary: ReadingSummary)]] = [:]
                var order: [MergeKey] = []
                for row in rows {
                    guard case .summary(let s) = try decode(row), s.intervalMs < level else { continue }
                    let key = MergeKey(
                        channel: s.channel, boot: s.stamp.boot, unit: s.unit, scale: s.scale,
                        bucket: s.stamp.wallMs >= 0 ? s.stamp.wallMs / level : (s.stamp.wallMs - level + 1) / level)
                    if groups[key] == nil { order.append(key) }
                    groups[key, default: []].append((row["rseq"], s))
                }
                var merged: [EvidenceRecord] = []
                for key in order {
                    guard let members = groups[key], members.count >= 2 else { continue }
                    for m in members {
                        try db.execute(sql: "DELETE FROM record WHERE rseq = ?", arguments: [m.rseq])
                        ledger.note(.merge(level), channel: m.summary.channel, boot: m.summary.boot, rseq: m.rseq, from: m.summary.stamp,
                                    toMonoMs: m.summary.stamp.monoMs + m.summary.intervalMs, toWallMs: m.summary.stamp.wallMs + m.summary.intervalMs)
                    }
                    merged.append(.summary(ReadingSummary.merging(members.map(\.summary))))
                    result.summariesMerged += members.count
                    result.summariesAdded += 1
                }
                try insert(db, merged)
            }
        }

        result.gaps = try insert(db, ledger.gapRecords(now: now, budget: budget, usedBefore: before))
        result.usedAfter = try usedBytes(db)
        result.stillOver = result.usedAfter > (targetBytes ?? budget.bytes)
        return result
    }

    /// Appends records at the next `rseq`s (inside the caller's transaction).
    @discardableResult
    static func insert(_ db: Database, _ records: [EvidenceRecord]) throws -> [EvidenceRecord] {
        var next = try highestRseq(db) + 1
        var stored: [EvidenceRecord] = []
        for var record in records {
            record.stamp.rseq = next
            try db.execute(sql: "INSERT INTO record(rseq, kind, body) VALUES(?, ?, ?)", arguments: [next, record.kind, Data(record.canonicalBytes)])
            stored.append(record)
            next += 1
        }
        return stored
    }
}

private struct MergeKey: Hashable {
    var channel: String
    var boot: Int64
    var unit: String
    var scale: Int64
    var bucket: Int64
}

extension ReadingSummary {
    fileprivate var boot: Int64 { stamp.boot }

    /// One summary for consecutive summaries of one channel and boot: exact count, errors, min, max and
    /// last; the mean weighted by count (nil if any part had none but values, or the sum overflows).
    static func merging(_ parts: [ReadingSummary]) -> ReadingSummary {
        let sorted = parts.sorted { $0.stamp.monoMs < $1.stamp.monoMs }
        let first = sorted[0]
        let end = sorted.map { $0.stamp.monoMs + $0.intervalMs }.max() ?? first.stamp.monoMs
        var stamp = first.stamp
        let qualities = Set(sorted.map(\.stamp.timeQuality))
        stamp.timeQuality = qualities.contains(.stepped) ? .stepped : qualities.contains(.unsynchronized) ? .unsynchronized : first.stamp.timeQuality
        var count: Int64 = 0, errors: Int64 = 0, total: Int64 = 0
        var meanKnown = true
        for p in sorted {
            count += p.count
            errors += p.errors
            guard p.count > 0 else { continue }
            guard let mean = p.mean else { meanKnown = false; continue }
            let (product, o1) = mean.multipliedReportingOverflow(by: p.count)
            let (sum, o2) = total.addingReportingOverflow(product)
            if o1 || o2 { meanKnown = false }
            total = sum
        }
        var mean: Int64?
        if meanKnown, count > 0 {
            // Each part's mean was already rounded, so this is the mean to within half a unit.
            let q = total / count, r = total % count
            mean = q + (2 * abs(r) >= count ? (total < 0 ? -1 : 1) : 0)
        }
        return ReadingSummary(
            stamp: stamp, channel: first.channel, intervalMs: end - first.stamp.monoMs, unit: first.unit, scale: first.scale, count: count,
            errors: errors, min: sorted.compactMap(\.min).min(), max: sorted.compactMap(\.max).max(), mean: mean,
            last: sorted.last(where: { $0.last != nil })?.last, lastError: sorted.last(where: { $0.lastError != nil })?.lastError)
    }
}

/// What a pass removed, per step, channel and boot, to be told in gap records.
private struct DegradationLedger {
    enum Step: Hashable {
        case raw
        case merge(Int64)
    }
    struct Key: Hashable {
        var step: Step
        var channel: String
        var boot: Int64
    }
    struct Entry {
        var count: Int64 = 0
        var firstRseq = Int64.max, lastRseq = Int64.min
        var fromMonoMs = Int64.max, fromWallMs = Int64.max
        var toMonoMs = Int64.min, toWallMs = Int64.min
    }
    var entries: [Key: Entry] = [:]
    var order: [Key] = []

    mutating func note(_ step: Step, channel: String, boot: Int64, rseq: Int64, from: RecordStamp, toMonoMs: Int64, toWallMs: Int64) {
        let key = Key(step: step, channel: channel, boot: boot)
        if entries[key] == nil { order.append(key) }
        var e = entries[key] ?? Entry()
        e.count += 1
        e.firstRseq = min(e.firstRseq, rseq)
        e.lastRseq = max(e.lastRseq, rseq)
        if from.monoMs < e.fromMonoMs {
            e.fromMonoMs = from.monoMs
            e.fromWallMs = from.wallMs
        }
        if toMonoMs > e.toMonoMs {
            e.toMonoMs = toMonoMs
            e.toWallMs = toWallMs
        }
        entries[key] = e
    }

    func gapRecords(now: RecordStamp, budget: DiskBudget, usedBefore: Int64) -> [EvidenceRecord] {
        order.compactMap { key in
            guard let e = entries[key] else { return nil }
            let span = "from \(Self.iso(e.fromWallMs)) to \(Self.iso(e.toWallMs)) (boot \(key.boot))"
            let rseqs = e.firstRseq == e.lastRseq ? "rseq \(e.firstRseq)" : "rseq \(e.firstRseq)–\(e.lastRseq)"
            let what: String
            switch key.step {
            case .raw:
                what = "dropped \(e.count) raw-sample record(s) of \(key.channel) \(span), \(rseqs); the summaries of that time are kept"
            case .merge(let level):
                what = "merged \(e.count) summaries of \(key.channel) \(span), \(rseqs), into \(Self.duration(level)) summaries (count, min, max and last exact, mean weighted)"
            }
            let detail = "outbox at \(Self.megabytes(usedBefore)) of its \(Self.megabytes(budget.bytes)) disk budget: \(what)"
            // For a disk budget gap, from and to both lie in boot `from_boot` (the data's own boot).
            return .gap(
                GapRecord(
                    stamp: now, reason: .diskBudget, channel: key.channel, fromBoot: key.boot, fromMonoMs: e.fromMonoMs, fromWallMs: e.fromWallMs,
                    toMonoMs: e.toMonoMs, toWallMs: e.toWallMs, missing: e.count, detail: detail))
        }
    }

    static func iso(_ wallMs: Int64) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime]
        return f.string(from: Date(timeIntervalSince1970: Double(wallMs) / 1000))
    }

    static func duration(_ ms: Int64) -> String {
        ms % 86_400_000 == 0 ? "\(ms / 86_400_000) d" : ms % 3_600_000 == 0 ? "\(ms / 3_600_000) h" : "\(ms / 60_000) min"
    }

    static func megabytes(_ bytes: Int64) -> String {
        String(format: "%.1f MB", Double(bytes) / 1_000_000)
    }
}
