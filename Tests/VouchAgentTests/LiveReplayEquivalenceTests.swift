import Foundation
import Testing
import VouchCore
import VouchDetect
import VouchEvidence
import VouchStore
@testable import VouchAgent

/// The agent's pipeline and `vouch detect replay` give the same events for the same readings: an hour
/// of a press's power at one reading a second, through the live EvidencePipeline into a real outbox,
/// and as a CSV through CSVHistory and Replay.
@Suite struct LiveReplayEquivalenceTests {
    typealias T = AgentFixtures

    /// The fixtures' site with a 20:00–23:00 UTC shift (the readings start 22:13:20 UTC, a Tuesday) and
    /// four [[detect]] rules on meter.power.
    static let configText = T.configText
        .replacingOccurrences(of: "start = \"00:00\"\nend = \"24:00\"", with: "start = \"20:00\"\nend = \"23:00\"")
        + """

        [[detect]]
        id = "line-stop"
        kind = "run_state"
        channel = "meter.power"
        running_at_or_above = 3000
        stopped_below = 500
        min_stop = "2m"
        min_run = "30s"

        [[detect]]
        id = "meter-comm"
        kind = "comm_loss"
        channel = "meter.power"
        duration = "1m"

        [[detect]]
        id = "overload"
        kind = "threshold"
        channel = "meter.power"
        above = 9000
        min_duration = "30s"

        [[detect]]
        id = "stuck"
        kind = "flatline"
        channel = "meter.power"
        duration = "5m"

        """

    /// The value at second `s` (nil: a failed poll): running with jitter, a stop in the shift, 90 s of
    /// failed polls, an overload, a frozen value, and a stop after the shift.
    static func value(_ s: Int64) -> Int64? {
        let jitter = (s * 37) % 200 - 100
        switch s {
        case 600..<900: return 100 + jitter / 10
        case 1200..<1290: return nil
        case 1500..<1560: return 9500 + jitter
        case 2000..<2400: return 5000
        case 3000..<3400: return 120 + jitter / 10
        default: return 5000 + jitter
        }
    }

    struct Event: Hashable, CustomStringConvertible {
        var rule: String, phase: String, severity: String, startWallMs: Int64, endWallMs: Int64?
        var description: String { "\(rule) \(phase) \(severity) \(startWallMs) \(endWallMs.map(String.init) ?? "-")" }
    }

    @Test func theAgentAndTheReplayRaiseTheSameEvents() async throws {
        let config = try T.config(Self.configText)
        let seconds: ClosedRange<Int64> = 0...3_599

        // Live: the pipeline as the agent builds it, readings one by one.
        let store = try TemporaryOutbox()
        defer { store.cleanUp() }
        let clock = ScriptedClock(T.time(0))
        let pipeline = EvidencePipeline(config: config, outbox: store.outbox, clock: clock, logger: T.quietLogger, engine: try DetectorFactory.engine(for: config), onEvent: {})
        for s in seconds {
            clock.set(T.time(s))
            await pipeline.ingest([Self.value(s).map { T.reading(T.time(s), value: $0) } ?? T.failed(T.time(s))])
        }
        await pipeline.flush()
        let live = Set(
            try store.sealAndVerifyRecords().compactMap { r -> Event? in
                guard case .event(let e) = r, e.rule != "press-stop" else { return nil }  // press-stop: the older [[stoppage]] rule
                return Event(rule: e.rule, phase: e.phase.rawValue, severity: e.severity, startWallMs: e.startWallMs, endWallMs: e.endWallMs)
            })

        // Replay: the same readings as a CSV (epoch milliseconds, an empty cell for a failed poll).
        let csv = "timestamp,meter.power\n" + seconds.map { "\(T.time($0).wallMs),\(Self.value($0).map(String.init) ?? "")" }.joined(separator: "\n") + "\n"
        var engine = try DetectorFactory.engine(for: config)
        var replayed = Set<Event>()
        try Replay.run(
            try CSVHistory(text: csv, timestamp: nil), channels: [.init(id: "meter.power", column: 1, scaleExponent: 0)], engine: &engine, zoneID: "UTC",
            row: { _ in },
            finding: { f in
                replayed.insert(Event(rule: f.rule.id, phase: f.phase.rawValue, severity: f.severity.rawValue, startWallMs: f.start.wallMs, endWallMs: f.end?.wallMs))
            })

        #expect(live == replayed, "live only: \(live.subtracting(replayed).sorted { $0.description < $1.description }); replay only: \(replayed.subtracting(live).sorted { $0.description < $1.description })")
        // And the readings did raise what they were made to: each rule, a stop alarmed in the shift and one recorded after it.
        #expect(Set(live.map(\.rule)) == ["line-stop", "meter-comm", "overload", "stuck"], "\(live)")
        let stops = live.filter { $0.rule == "line-stop" && $0.phase == "start" }.sorted { $0.startWallMs < $1.startWallMs }
        #expect(stops.map(\.severity) == ["alarm", "record"], "\(stops)")
        #expect(stops.first?.startWallMs == T.time(600).wallMs)
    }

    /// A release window opened live with `vouch release open` and the replay's `release` column over the
    /// same rows: the same release (record) inside it and the same alarm after it.
    @Test func aReleaseWindowLiveAndTheReleaseColumnInReplayGiveTheSameEvents() async throws {
        let config = try ConfigLoader.parse(ReleaseWindowTests.siteText, file: "/etc/vouch/vouch.toml")
        func kg(_ s: Int64) -> Int64 {
            switch s {
            case ..<300: 10_000 + (s / 10 % 3) - 1
            case ..<1_000: 8_000 + (s / 10 % 3) - 1
            default: 6_500
            }
        }
        let seconds = stride(from: Int64(0), to: 1_500, by: 10)
        let (opensAt, openForMs): (Int64, Int64) = (200, 600_000)

        let store = try TemporaryOutbox()
        defer { store.cleanUp() }
        let clock = ScriptedClock(T.time(0))
        let pipeline = EvidencePipeline(config: config, outbox: store.outbox, clock: clock, logger: T.quietLogger, engine: try DetectorFactory.engine(for: config), onEvent: {})
        for s in seconds {
            clock.set(T.time(s))
            if s == opensAt { _ = try await pipeline.openRelease(ReleaseRequest(durationMs: openForMs, reason: "sale")) }
            await pipeline.ingest([Reading(channel: "scale.weight", time: T.time(s), value: kg(s), scaleExponent: 0, unit: "kg", rawWords: [], quality: .ok)])
        }
        let live = Set(
            try store.sealAndVerifyRecords().compactMap { r -> Event? in
                guard case .event(let e) = r else { return nil }
                return Event(rule: e.rule, phase: e.phase.rawValue, severity: e.severity, startWallMs: e.startWallMs, endWallMs: e.endWallMs)
            })

        let rows = seconds.map { s in "\(T.time(s).wallMs),\(kg(s)),\(s >= opensAt && s * 1_000 < opensAt * 1_000 + openForMs ? 1 : 0)" }
        let csv = "timestamp,scale.weight,release\n" + rows.joined(separator: "\n") + "\n"
        var engine = try DetectorFactory.engine(for: config)
        var replayed = Set<Event>()
        try Replay.run(
            try CSVHistory(text: csv, timestamp: nil), channels: [.init(id: "scale.weight", column: 1, scaleExponent: 0)], engine: &engine, zoneID: "UTC",
            row: { _ in },
            finding: { f in
                replayed.insert(Event(rule: f.rule.id, phase: f.phase.rawValue, severity: f.severity.rawValue, startWallMs: f.start.wallMs, endWallMs: f.end?.wallMs))
            })
        #expect(live == replayed, "live only: \(live.subtracting(replayed)); replay only: \(replayed.subtracting(live))")
        let starts = live.filter { $0.phase == "start" }.sorted { $0.startWallMs < $1.startWallMs }
        #expect(starts.map(\.severity) == ["record", "alarm"], "\(starts)")
    }
}
