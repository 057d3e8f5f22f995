import Foundation
import Testing
import VouchCore
import VouchDetect
import VouchEvidence
import VouchStore
@testable import VouchAgent

/// `[[detect]]` findings reach the outbox as event records, through the same DetectionEngine the
/// replay runs.
@Suite struct DetectionPipelineTests {
    typealias T = AgentFixtures

    /// An event while meter.power is above `limit`, with a window and a baseline.
    struct Above: Detector {
        let rule = RuleIdentity(id: "too-high", version: 3, kind: "test_above", channel: "meter.power", unit: "W", scaleExponent: 0)
        let limit: Int64 = 5000
        var start: DetectorSample?
        var score = 0.0
        var stateBytes: Int { MemoryLayout<Self>.size }
        mutating func feed(_ s: DetectorSample, _ context: SiteContext) -> Finding? {
            guard let v = s.value else { return nil }
            switch (start, v > limit) {
            case (nil, true):
                start = s
                return Finding(
                    phase: .start, rule: rule, severity: .alarm, start: s, at: s, params: ["limit": .int(limit), "mode": .text("strict")], baseline: ["limit": limit],
                    window: [s], explanation: "power above the limit")
            case (let first?, false):
                start = nil
                return Finding(phase: .end, rule: rule, severity: .alarm, start: first, end: s, at: s, params: ["limit": .int(limit)], window: [], explanation: "back")
            default: return nil
            }
        }
    }

    @Test func findingsAreEventRecordsWithTheirRuleParamsBaselineAndWindow() async throws {
        let store = try TemporaryOutbox()
        defer { store.cleanUp() }
        let clock = ScriptedClock(T.time(0))
        let config = try T.config()
        let engine = DetectionEngine(detectors: [Above()], calendar: SiteCalendar(shift: config.shift, calendar: config.calendar))
        let pipeline = EvidencePipeline(config: config, outbox: store.outbox, clock: clock, logger: T.quietLogger, engine: engine, onEvent: {})
        for (s, v) in [(0, 1000), (1, 6000), (2, 6000), (3, 1000)] as [(Int64, Int64)] {
            clock.set(T.time(s))
            await pipeline.ingest([T.reading(T.time(s), value: v)])
        }
        await pipeline.flush()
        let events = try store.sealAndVerifyRecords().compactMap { if case .event(let e) = $0, e.rule == "too-high" { e } else { nil } }
        try #require(events.count == 2, "\(events)")
        let start = events[0], end = events[1]
        #expect(start.phase == .start && end.phase == .end && start.eventId == end.eventId)
        #expect(start.ruleVersion == 3 && start.severity == "alarm" && start.channel == "meter.power")
        #expect(start.startMonoMs == T.time(1).monoMs && end.endMonoMs == T.time(3).monoMs)
        #expect(start.params == ["limit": .int(5000), "mode": .string("strict")])
        #expect(start.baseline == .object(["limit": .int(5000)]))
        #expect(start.window == [WindowSample(monoMs: T.time(1).monoMs, wallMs: T.time(1).wallMs, value: 6000)])
        #expect(start.explanation.hasPrefix("power above the limit (since "))
        #expect(end.durationMs == 2000)
    }
}
