import Testing
import VouchCore
@testable import VouchDetect

struct FlatlineDetectorTests {
    typealias F = HealthFixture
    /// Polled every minute; power in tenths of a watt; stuck after 2 h within ±0.1 W.
    static let interval: Int64 = 60_000
    static let params = FlatlineDetector.Parameters(epsilon: 1, durationMs: 7_200_000)

    func detector() -> FlatlineDetector {
        FlatlineDetector(rule: F.rule(FlatlineDetector.kind, version: FlatlineDetector.version, exponent: -1), parameters: Self.params)
    }

    /// A live meter: 500.0 W ±0.5 %.
    func live(_ count: Int, seed: UInt64 = 5) -> [Int64?] {
        var j = F.Jitter(seed: seed)
        return j.series(5000, perMille: 5, count: count)
    }

    @Test func aValueThatDoesNotMoveForTwoHoursIsAWarningDatedAtItsFirstSample() throws {
        var d = detector()
        let out = F.run(&d, live(60) + Array(repeating: 4120, count: 150) + live(10), intervalMs: Self.interval)
        try #require(out.count == 2)
        let start = out[0].finding
        #expect(start.phase == .start && start.severity == .warning)
        #expect(start.start == F.sample(60, 4120, intervalMs: Self.interval))
        #expect(out[0].index == 180, "confirmed exactly 2 h after the first stuck sample")
        #expect(start.explanation == "value stuck at 412.0 W for 2 h: sensor stuck or disconnected")
        #expect(start.baseline == ["stuck_value": 4120] && start.params == ["epsilon": .int(1), "duration_ms": .int(7_200_000)])
        #expect(start.window.count == 6 && start.window[3] == start.start, "3 samples before, the start, 2 after")
        let end = out[1].finding
        #expect(end.phase == .end && end.start == start.start && out[1].index == 210)
        #expect(end.end == F.sample(210, end.end?.value, intervalMs: Self.interval), "ends at the first sample outside the band")
        #expect(end.durationMs == 150 * Self.interval)
    }

    @Test func oneSampleShortOfTheDurationIsNoEvent() {
        var d = detector()
        #expect(F.run(&d, live(60) + Array(repeating: 4120, count: 120) + live(10), intervalMs: Self.interval).isEmpty, "119 min")
    }

    @Test func aLiveSensorsNoiseNeverLooksStuck() {
        // A week of a meter at ±0.5 % (±25 counts), and of a quiet one at 200.0 ±0.3 % (±6 counts, the
        // band being ±1 count: epsilon must sit below the sensor's noise).
        var d = detector()
        let loud = F.run(&d, live(7 * 1440), intervalMs: Self.interval).count
        #expect(loud == 0)
        var q = detector()
        var j = F.Jitter(seed: 9)
        let quiet = F.run(&q, j.series(2000, perMille: 3, count: 7 * 1440), intervalMs: Self.interval).count
        #expect(quiet == 0)
    }

    @Test func theBandIsAnchoredAtTheRunsFirstValueSoADriftEndsIt() {
        // Readings within ±0.1 W of the first are stuck even when they alternate.
        var d = detector()
        let wobble: [Int64?] = (0..<130).map { 4120 + Int64($0 % 2) }
        #expect(F.run(&d, live(5) + wobble, intervalMs: Self.interval).count == 1)
        // A slow drift of 0.1 W a minute leaves the band every second sample: a live sensor.
        var e = detector()
        let drift: [Int64?] = (0..<300).map { 4120 + Int64($0) }
        #expect(F.run(&e, drift, intervalMs: Self.interval).isEmpty)
    }

    @Test func failedPollsNeitherConfirmNorEndAStuckRun() throws {
        // Stuck from sample 10, every third poll failing.
        let values = live(10) + (0..<200).map { $0 % 3 == 2 ? nil : Int64(4120) }
        var d = detector()
        let out = F.run(&d, values, intervalMs: Self.interval)
        try #require(out.count == 1)
        #expect(out[0].finding.start.monoMs == F.sample(10, nil, intervalMs: Self.interval).monoMs && out[0].index == 130)
    }

    @Test func scoreRisesWithTheStuckTime() {
        var d = detector()
        _ = F.run(&d, live(10) + Array(repeating: 4120, count: 61), intervalMs: Self.interval)
        #expect(d.score == 0.5)
        _ = F.run(&d, Array(repeating: 4120, count: 60), intervalMs: Self.interval, firstIndex: 71)
        #expect(d.score == 1)
        _ = F.run(&d, live(1), intervalMs: Self.interval, firstIndex: 131)
        #expect(d.score == 0)
    }

    @Test func theSameSamplesGiveTheSameFindings() {
        let values = live(60) + Array(repeating: 4120, count: 150) + live(10) + Array(repeating: 0, count: 200)
        F.expectDeterministic({ detector() }, values, intervalMs: Self.interval, count: 3)
    }

    @Test func stateFitsIn512Bytes() {
        F.expectStateBytes(detector().stateBytes, documented: 377)
    }
}
