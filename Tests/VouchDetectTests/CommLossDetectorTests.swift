import Testing
import VouchCore
@testable import VouchDetect

struct CommLossDetectorTests {
    typealias F = HealthFixture
    /// Polled every 10 s; lost after 10 min of failed polls.
    static let interval: Int64 = 10_000

    func detector(_ severity: Severity = .warning) -> CommLossDetector {
        CommLossDetector(rule: F.rule(CommLossDetector.kind, version: CommLossDetector.version), parameters: .init(durationMs: 600_000, severity: severity))
    }

    func valid(_ count: Int) -> [Int64?] {
        var j = F.Jitter(seed: 4)
        return j.series(5000, perMille: 30, count: count)
    }

    @Test func tenMinutesWithoutAValidReadingIsAWarningDatedAtTheFirstFailedPoll() throws {
        var d = detector()
        let out = F.run(&d, valid(30) + Array(repeating: nil, count: 80) + valid(5), intervalMs: Self.interval)
        try #require(out.count == 2)
        let start = out[0].finding
        #expect(start.phase == .start && start.severity == .warning)
        #expect(start.start == F.sample(30, nil, intervalMs: Self.interval) && out[0].index == 90)
        #expect(start.explanation == "no valid reading for 10 min: sensor unplugged or bus fault")
        #expect(start.params == ["duration_ms": .int(600_000), "severity": .text("warning")] && start.baseline.isEmpty)
        #expect(start.window.count == 6 && start.window[3] == start.start && start.window[2].value != nil)
        let end = out[1].finding
        #expect(end.phase == .end && out[1].index == 110 && end.end == F.sample(110, end.end?.value, intervalMs: Self.interval))
        #expect(end.start == start.start && end.durationMs == 80 * Self.interval)
    }

    @Test func intermittentFailuresAreNotALoss() {
        // A flaky bus: every fifth poll fails, for a day; and one outage of 9 min 50 s.
        var d = detector()
        let flaky: [Int64?] = valid(8640).enumerated().map { $0.offset % 5 == 4 ? nil : $0.element }
        #expect(F.run(&d, flaky, intervalMs: Self.interval).isEmpty)
        var e = detector()
        #expect(F.run(&e, valid(10) + Array(repeating: nil, count: 60) + valid(10), intervalMs: Self.interval).isEmpty)
    }

    @Test func theSeverityIsTheRulesAndTheCalendarChangesNothing() throws {
        var d = detector(.alarm)
        let out = F.run(&d, valid(5) + Array(repeating: nil, count: 70), intervalMs: Self.interval) { _ in SiteContext(inShift: false, plannedStop: true, businessHours: false) }
        try #require(out.count == 1)
        #expect(out[0].finding.severity == .alarm && out[0].index == 65)
    }

    @Test func scoreRisesWithTheOutage() {
        var d = detector()
        _ = F.run(&d, valid(5) + Array(repeating: nil, count: 31), intervalMs: Self.interval)
        #expect(d.score == 0.5)
        _ = F.run(&d, Array(repeating: nil, count: 40), intervalMs: Self.interval, firstIndex: 36)
        #expect(d.score == 1)
        _ = F.run(&d, valid(1), intervalMs: Self.interval, firstIndex: 76)
        #expect(d.score == 0)
    }

    @Test func theSameSamplesGiveTheSameFindings() {
        let values = valid(30) + Array(repeating: nil, count: 80) + valid(5) + Array(repeating: nil, count: 100)
        F.expectDeterministic({ detector() }, values, intervalMs: Self.interval, count: 3)
    }

    @Test func stateFitsIn512Bytes() {
        F.expectStateBytes(detector().stateBytes, documented: 369)
    }
}
