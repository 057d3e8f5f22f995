import Foundation
import Synchronization
import Testing
import VouchBank
import VouchCore
import VouchEvidence
import VouchStore
import VouchUplink

/// The bank out of reach for a week, on an accelerated clock: a standard site's evidence accumulates
/// in the outbox under its disk budget, then the bank comes back and the backlog drains.
///
/// Runs only with `VOUCH_OUTAGE_WEEK=1` (scripts/test runs it as its own step and prints the figures):
/// in a debug build it takes about a minute, too long for the unit suite.
@Suite("A week-long bank outage", .serialized, .enabled(if: ProcessInfo.processInfo.environment["VOUCH_OUTAGE_WEEK"] == "1"))
struct OutageWeekTests {
    /// The simulated time: one minute per step.
    final class WeekClock: AgentClock {
        private let minute = Mutex<Int64>(0)
        func set(minute m: Int64) { minute.withLock { $0 = m } }
        func now() -> ClockReading {
            let m = minute.withLock { $0 }
            return ClockReading(bootCount: 1, monoNs: (10_000 + m * 60_000) * 1_000_000, wallNs: (Fixture.t0 + m * 60_000) * 1_000_000, quality: .synchronized)
        }
        func stamp() -> RecordStamp {
            let n = now()
            return RecordStamp(rseq: 0, boot: 1, monoMs: n.monoMs, wallMs: n.wallMs, timeQuality: .synchronized)
        }
    }

    static let channels = (1...32).map { "site.ch\($0)" }
    static let minutes: Int64 = 7 * 24 * 60
    static let budget = DiskBudget(bytes: 8_000_000)

    /// What the agent records in one minute of a standard site: a summary per channel, a heartbeat every
    /// 5 minutes, a stoppage (start and end) every day.
    static func minuteOfEvidence(_ m: Int64, clock: WeekClock) -> [EvidenceRecord] {
        let start = RecordStamp(rseq: 0, boot: 1, monoMs: 10_000 + (m - 1) * 60_000, wallMs: Fixture.t0 + (m - 1) * 60_000, timeQuality: .synchronized)
        var records: [EvidenceRecord] = channels.enumerated().map { i, channel in
            let base = Int64(1_000 * (i + 1))
            return .summary(
                ReadingSummary(
                    stamp: start, channel: channel, intervalMs: 60_000, unit: "W", scale: -1, count: 60, errors: 0, min: base + m % 97,
                    max: base + 500 + m % 89, mean: base + 250 + m % 13, last: base + m % 71, lastError: nil))
        }
        if m % 5 == 0 {
            records.append(.heartbeat(Heartbeat(stamp: clock.stamp(), intervalMs: 300_000, uptimeMs: m * 60_000, backlog: 4)))
        }
        if m % 1440 == 600 || m % 1440 == 660 {
            let phase: EventRecord.Phase = m % 1440 == 600 ? .start : .end
            let startMinute = m - (phase == .end ? 60 : 0)
            records.append(
                .event(
                    EventRecord(
                        stamp: clock.stamp(), eventId: "press-stop@\(startMinute)", phase: phase, rule: "press-stop", ruleVersion: 1, channel: "site.ch1",
                        severity: "high", startMonoMs: 10_000 + startMinute * 60_000, startWallMs: Fixture.t0 + startMinute * 60_000,
                        endMonoMs: phase == .end ? 10_000 + m * 60_000 : nil, endWallMs: phase == .end ? Fixture.t0 + m * 60_000 : nil,
                        durationMs: phase == .end ? 3_600_000 : 15_000, unit: "W", scale: -1, params: ["below": 5_000], window: [],
                        explanation: "site.ch1 below 500.0 W during the shift")))
        }
        return records
    }

    @Test("7 days without the bank: the outbox stays within its budget, then everything drains once, in order, and every missing rseq is accounted for by a signed gap")
    func weekWithoutTheBank() async throws {
        let dir = try TempDir()
        defer { dir.remove() }
        let port = try Net.freePort()
        let bank = try Bank(dir: dir)
        var gateway = try Gateway(dir: dir, bankURL: "http://127.0.0.1:\(port)", maxBatchRecords: 500, requestTimeout: .milliseconds(300))
        try bank.store.enroll(gateway.enrollment)
        let clock = WeekClock()
        try gateway.agentUplink(clock: clock)
        defer { Task { [uplink = gateway.uplink] in await uplink.shutdownHTTPClient() } }
        let passes = Mutex<[Degradation]>([])
        gateway.outbox.setBudget(Self.budget) { pass in passes.withLock { $0.append(pass) } }

        // The week, with the bank down: an upload round every 6 simulated hours.
        var accepted = 0, events = 0, peakUsed: Int64 = 0, peakFile: Int64 = 0
        let outageStart = ContinuousClock.now
        for m in Int64(1)...Self.minutes {
            clock.set(minute: m)
            let records = Self.minuteOfEvidence(m, clock: clock)
            accepted += records.count
            events += records.filter { if case .event = $0 { true } else { false } }.count
            try gateway.outbox.append(records, now: clock.stamp())
            if m % 60 == 0 {
                peakUsed = max(peakUsed, try gateway.outbox.usedBytes())
                peakFile = max(peakFile, Self.fileBytes(gateway.outbox.path))
            }
            if m % 360 == 0 {
                try gateway.uplink.sealPending(ahead: gateway.settings.sealAhead)
                let outcome = await gateway.uplink.sendPending()
                guard case .failed = outcome else { Issue.record("the bank is down, yet: \(outcome)"); return }
                #expect(try gateway.outbox.undeliveredCount() <= gateway.settings.sealAhead, "no more than sealAhead batches are signed ahead of the bank")
            }
        }
        let outageSeconds = (ContinuousClock.now - outageStart)
        #expect(peakUsed <= Self.budget.bytes + 256 * 1024, "outbox pages within the budget (plus one append): peak \(peakUsed)")

        // The bank is back: drain as the uplink's rounds do, and time it.
        let (drained, drainTime) = try await bank.serving(port: port) { () async throws -> (Int, Duration) in
            let start = ContinuousClock.now
            var rounds = 0, failures = 0
            var firstDelivery: ContinuousClock.Instant?
            while try gateway.outbox.undeliveredCount() > 0 || gateway.outbox.status().unsealedRecords > 0 {
                rounds += 1
                try #require(rounds < 10_000)
                try gateway.uplink.sealPending(ahead: gateway.settings.sealAhead)
                let outcome = await gateway.uplink.sendPending()
                if case .delivered(let n) = outcome, n > 0, firstDelivery == nil { firstDelivery = ContinuousClock.now }
                if case .failed(_, let reason) = outcome {
                    // Retried as the uplink's rounds do, a bounded number of times (the agent's client
                    // retries no connection on its own, so the first attempt after the bank is back works).
                    failures += 1
                    try #require(failures < 50, "drain keeps failing: \(reason)")
                    try await Task.sleep(for: .milliseconds(100))
                }
            }
            let reconnect = (firstDelivery ?? start) - start
            print("outage-week: \(failures) failed attempt(s) in the first \(reconnect.formatted(.units(allowed: [.seconds, .milliseconds]))) while the HTTP client reconnected")
            return (Int(try gateway.outbox.status().batches), ContinuousClock.now - start)
        }

        // Delivered once, in order: the bank holds exactly the outbox's batches, and the chain verifies.
        let sealed = try gateway.outbox.sealedBatches()
        let stored = try bank.store.batches(device: gateway.deviceID)
        #expect(stored.map(\.bseq) == Array(1...Int64(sealed.count)))
        #expect(stored.map(\.hash) == sealed.map(\.batch.signingInputHash))
        #expect(sealed.allSatisfy { $0.receipt != nil })
        var head: ChainHead?
        var rseqs: [Int64] = []
        var gapMissing: Int64 = 0
        var kept: [EvidenceRecord] = []
        for batch in stored {
            let verified = try VerifiedBatch.verify(token: batch.token, records: batch.records, key: gateway.key.publicJWK)
            #expect(ChainRule.classify(bseq: verified.payload.bseq, prev: verified.payload.prev, signingInputHash: verified.signingInputHash, head: head, acceptedHash: nil) == .extends)
            head = ChainHead(bseq: verified.payload.bseq, signingInputHash: verified.signingInputHash)
            for record in try verified.typedRecords() {
                rseqs.append(record.stamp.rseq)
                kept.append(record)
                if case .gap(let g) = record, g.reason == .diskBudget { gapMissing += g.missing }
            }
        }
        #expect(rseqs == rseqs.sorted() && Set(rseqs).count == rseqs.count, "rseq strictly increasing across the chain")
        let holes = Int64((rseqs.last ?? 0) - Int64(rseqs.count))
        #expect(holes == gapMissing, "every rseq the bank never got is counted in a signed disk_budget gap (\(holes) missing, gaps say \(gapMissing))")
        #expect(kept.filter { if case .event = $0 { true } else { false } }.count == events, "every event delivered")
        #expect(kept.filter { if case .heartbeat = $0 { true } else { false } }.count == Int(Self.minutes / 5), "every heartbeat delivered")
        for channel in Self.channels {
            let readings = kept.reduce(Int64(0)) { sum, r in if case .summary(let s) = r, s.channel == channel { sum + s.count } else { sum } }
            #expect(readings == Self.minutes * 60, "\(channel): every reading counted in a summary, coarse or fine")
        }

        let degradedPasses = passes.withLock { $0 }
        let merged = degradedPasses.reduce(0) { $0 + $1.summariesMerged }
        let seconds = Double(drainTime.components.seconds) + Double(drainTime.components.attoseconds) / 1e18
        print(
            """
            outage-week: 7 simulated days (\(Self.channels.count) channels, minute summaries, 5-min heartbeats, daily stoppage) \
            generated in \(outageSeconds.formatted(.units(allowed: [.seconds], fractionalPart: .show(length: 1)))): \
            \(accepted) records accepted, \(merged) summaries merged in \(degradedPasses.count) budget passes (\(gapMissing) records named in signed gaps), \
            peak outbox \(String(format: "%.2f", Double(peakUsed) / 1e6)) MB of pages (file+WAL \(String(format: "%.2f", Double(peakFile) / 1e6)) MB) \
            against a \(String(format: "%.0f", Double(Self.budget.bytes) / 1e6)) MB budget; \
            drain: \(drained) batches, \(kept.count) records in \(String(format: "%.2f", seconds)) s \
            (\(String(format: "%.0f", Double(drained) / max(seconds, 0.001))) batches/s, \(String(format: "%.0f", Double(kept.count) / max(seconds, 0.001))) records/s); \
            \(events) events and \(Self.minutes / 5) heartbeats all delivered; losses 0
            """)
    }

    static func fileBytes(_ path: String) -> Int64 {
        ["", "-wal"].reduce(Int64(0)) { sum, suffix in
            sum + ((try? FileManager.default.attributesOfItem(atPath: path + suffix)[.size] as? Int64) ?? 0)
        }
    }
}
