import Testing
@testable import VouchDetect

/// A tilt sensor on a parked excavator at 1 Hz, degrees with one decimal: level is 0.0 ° ± 0.3 °
/// of jitter; tilted beyond 5.0 ° for 10 s outside the shift is an alarm (it is being loaded).
struct ThresholdDetectorTests {
    let bench = Bench()

    func detector(above: Int64? = 50, below: Int64? = -50, minDurationMs: Int64 = 10_000, hysteresis: Int64 = 0, when: ThresholdDetector.When = .outsideShift) -> ThresholdDetector {
        ThresholdDetector(
            rule: collateralRule(ThresholdDetector.kind, channel: "tilt.excavator", unit: "°", exponent: -1),
            parameters: .init(above: above, below: below, minDurationMs: minDurationMs, hysteresis: hysteresis, when: when, severity: .alarm))
    }

    func profile(_ segments: [(Int64?, Int)], noise: Int64 = 3, seed: UInt64 = 11) -> [Int64?] {
        var jitter = Jitter(seed: seed)
        return segments.flatMap { s in (0..<s.1).map { _ in s.0.map { $0 + jitter.next(noise) } } }
    }

    @Test func aTiltBeyondTheLimitOutsideTheShiftIsAnAlarmAndEndsBackInside() throws {
        var d = detector()
        let values = profile([(0, 20), (120, 15), (0, 5)], noise: 0)
        let findings = bench.run(&d, values, context: { _ in .night })
        try #require(findings.count == 2)
        #expect(findings[0].0 == 30, "confirmed minDurationMs after the first outside sample")
        let start = findings[0].1
        #expect(start.start == bench.sample(20, 120) && start.severity == .alarm)
        #expect(start.explanation == "tilt.excavator at 12.0 ° (farthest 12.0 °), above the limit 5.0 ° for 10 s outside the shift")
        #expect(start.baseline == ["above": 50, "below": -50])
        #expect(start.params["hysteresis"] == .int(0) && start.params["when"] == .text("outside_shift") && start.params.count == 6)
        #expect(start.window.count == 10 && start.window[5] == start.start)
        #expect(findings[1].0 == 35 && findings[1].1.phase == .end && findings[1].1.durationMs == 15_000)
    }

    @Test func theBelowLimitCountsAloneAndTheFarthestValueIsReported() throws {
        var d = detector(above: nil)
        let values: [Int64?] = Array(repeating: 0, count: 5) + [-60, -90, -200, -70] + Array(repeating: -60, count: 10) + [0]
        let findings = bench.run(&d, values, context: { _ in .night })
        try #require(findings.count == 2)
        #expect(findings[0].1.explanation.contains("(farthest -20.0 °), below the limit -5.0 °"), "\(findings[0].1.explanation)")
        #expect(findings[0].1.params["above"] == .text("none") && findings[0].1.baseline == ["below": -50])
        // No upper limit: any height is inside.
        var e = detector(above: nil)
        #expect(bench.run(&e, [Int64.max, 10_000, 10_000], context: { _ in .night }).isEmpty)
    }

    @Test func jitterAndBumpsInsideTheLimitsRaiseNothing() {
        var d = detector()
        // A night of ±0.3 ° jitter, and every 10 min a 4 s gust tilting it to 7.0 °.
        let values: [Int64?] = profile([(0, 36_000)]).enumerated().map { i, v in i % 600 < 4 ? 70 : v }
        #expect(bench.run(&d, values, context: { _ in .night }).isEmpty)
    }

    @Test func duringTheShiftNothingIsRaised() {
        var d = detector()
        #expect(bench.run(&d, profile([(0, 10), (200, 600)]), context: { _ in .day }).isEmpty, "the excavator is working")
    }

    @Test func hysteresisStopsAValueHoveringAtTheLimitFromFlapping() {
        // Tilted to 6.0 °, then hovering 4.8–5.2 °: without hysteresis every dip below 5.0 ° ends
        // the event and the next rise begins a new one; with 1.0 ° it is one event until it is below 4.0 °.
        let hover: [Int64?] = (0..<60).map { $0 % 2 == 0 ? 52 : 48 }
        let values: [Int64?] = [0, 0] + Array(repeating: 60, count: 12) + hover + [30]
        var d = detector(minDurationMs: 0, hysteresis: 10)
        let steady = bench.run(&d, values, context: { _ in .night })
        #expect(steady.map(\.0) == [2, 74])
        var e = detector(minDurationMs: 0)
        #expect(bench.run(&e, values, context: { _ in .night }).count > 10)
    }

    @Test func aShortExcursionIsNotAnEvent() {
        var d = detector()
        #expect(bench.run(&d, profile([(0, 10), (120, 10), (0, 10)]), context: { _ in .night }).isEmpty, "9 s < 10 s")
    }

    @Test func failedPollsNeitherConfirmDropNorEnd() throws {
        var d = detector()
        let values: [Int64?] = [0, 120] + Array(repeating: nil, count: 12) + [120] + Array(repeating: nil, count: 30) + [0]
        let findings = bench.run(&d, values, context: { _ in .night })
        try #require(findings.count == 2)
        #expect(findings[0].0 == 14 && findings[0].1.start == bench.sample(1, 120))
        #expect(findings[1].0 == 45)
    }

    @Test func theScoreRisesWhileOutsideAndIsOneDuringTheEvent() {
        var d = detector()
        #expect(scoreRisesToOne(&d, normal: 0, abnormal: 120, minMs: 10_000, .night))
    }

    @Test func theSameSamplesGiveTheSameFindings() {
        let values: [Int64?] = profile([(0, 100), (120, 30), (0, 100), (-90, 50), (nil, 5), (0, 10)])
        HealthFixture.expectDeterministic({ detector() }, values, intervalMs: 1000, context: { $0 < 150 ? .night : SiteContext(inShift: false) }, count: 4)
    }

    @Test func stateIsSmallAndFixed() {
        var d = detector()
        let before = d.stateBytes
        _ = bench.run(&d, profile([(0, 10), (120, 30)]), context: { _ in .night })
        #expect(d.stateBytes == before)
        HealthFixture.expectStateBytes(before, documented: 496)
    }
}
