import Testing
@testable import VouchDetect

/// What collateral rules keep across an agent restart: stock taken while the gateway was off is a
/// loss found at the restart, not the new normal.
struct CarryOverTests {
    let bench = Bench()

    func weight() -> WeightDropDetector { WeightDropDetector(rule: collateralRule(WeightDropDetector.kind, channel: "scale.bay1", unit: "kg", exponent: -1), parameters: WeightDropDetectorTests.parameters) }

    func profile(_ segments: [(Int64, Int)]) -> [Int64?] {
        var jitter = Jitter(seed: 3)
        return segments.flatMap { Bench.level($0.0, $0.1, noise: 60, &jitter) }
    }

    /// A detector that ran on `before`, then a fresh one resumed from what it kept.
    func restarted(after before: [(Int64, Int)]) throws -> WeightDropDetector {
        var first = weight()
        _ = bench.run(&first, profile(before))
        let kept = try #require(first.carryOver)
        var second = weight()
        second.resume(kept)
        return second
    }

    @Test func nothingIsKeptBeforeTheFirstSettle() {
        var d = weight()
        _ = bench.run(&d, profile([(11_800, 20)]))
        #expect(d.carryOver == nil)
        _ = bench.run(&d, profile([(11_800, 40)]))
        #expect(d.carryOver?["baseline"].map { abs($0 - 11_800) <= 60 } == true && d.carryOver?["reference"] == d.carryOver?["baseline"])
    }

    @Test func stockTakenWhileTheAgentWasDownIsAnAlarmOnceTheWeightSettles() throws {
        var d = try restarted(after: [(11_800, 100)])
        let findings = bench.run(&d, profile([(8_100, 60)]))
        try #require(findings.count == 2)
        let (at, start) = findings[0]
        #expect(at == 30, "found when the weight after the restart has settled (settleMs)")
        #expect(start.phase == .start && start.severity == .alarm)
        #expect(start.explanation.contains("after the agent restarted") && start.explanation.hasSuffix("stock left while the gateway was not watching"), "\(start.explanation)")
        #expect(start.baseline["settled"].map { abs($0 - 11_800) <= 60 } == true)
        #expect(findings[1].1.phase == .end && findings[1].0 == 31)
        #expect(abs(d.baseline - 8_100) <= 60 && d.reference == d.baseline, "the loss is on record once")
    }

    @Test func theSameWeightAfterARestartIsNoEventAndPilferageGoesOnFromTheKeptReference() throws {
        var d = try restarted(after: [(11_800, 100), (11_400, 100)])  // 40 kg: within tolerance, under the 100 kg cumulative
        #expect(bench.run(&d, profile([(11_400, 100)])).isEmpty)
        // Two more drops of 30 and 40 kg, each within tolerance: 110 kg below the reference kept from before the restart.
        let findings = bench.run(&d, profile([(11_100, 100), (10_700, 100)]))
        #expect(findings.first?.1.explanation.contains("slow pilferage") == true, "\(findings.map(\.1.explanation))")
    }

    @Test func aLossFoundInsideAReleaseWindowIsARelease() throws {
        var d = try restarted(after: [(11_800, 100)])
        let findings = bench.run(&d, profile([(8_100, 60)]), context: { _ in .releasing })
        #expect(findings.first?.1.severity == .record && findings.first?.1.explanation.hasSuffix("inside the release window: released") == true)
    }

    @Test func aTamperCounterKeepsNothing() {
        var d = CountDropDetector(
            rule: collateralRule(CountDropDetector.kind, channel: "gpio.pulses", unit: "", exponent: 0),
            parameters: CountDropDetector.Parameters(dropAbs: 1, settleMs: 30_000, backwardsIsTamper: true))
        _ = bench.run(&d, Bench.steps([(100, 100)]))
        #expect(d.carryOver == nil, "a GPIO pulse total restarts at 0 with the agent: that is not tampering")
    }

    @Test func theEngineGivesBackOnlyToTheSameRuleOnTheSameChannelAndScale() throws {
        var a = weight()
        _ = bench.run(&a, profile([(11_800, 100)]))
        let calendar = SiteCalendar(timeZoneID: "UTC", shift: .init(days: [.mon], startMinute: 0, endMinute: 60))
        let kept = DetectionEngine(detectors: [a], calendar: calendar).carryOver
        #expect(kept.keys.sorted() == ["weight_drop-test|weight_drop|scale.bay1|-1"])
        var same = DetectionEngine(detectors: [weight()], calendar: calendar)
        #expect(same.resume(kept) == ["weight_drop-test"])
        let rescaled = WeightDropDetector(rule: collateralRule(WeightDropDetector.kind, channel: "scale.bay1", unit: "kg", exponent: 0), parameters: WeightDropDetectorTests.parameters)
        var other = DetectionEngine(detectors: [rescaled], calendar: calendar)
        #expect(other.resume(kept).isEmpty, "decimals changed: the kept weight would be ten times off")
    }
}

extension CarryOverTests {
    @Test func aRestartDuringAConfirmedDropKeepsTheWeightItFellToSoTheLossIsNotReportedTwice() throws {
        var first = weight()
        let before = bench.run(&first, profile([(11_800, 100), (8_100, 31)]))
        #expect(before.map(\.1.phase) == [.start], "confirmed, not yet settled")
        let kept = try #require(first.carryOver)
        #expect(kept["baseline"].map { abs($0 - 8_100) <= 60 } == true)
        var second = weight()
        second.resume(kept)
        #expect(bench.run(&second, profile([(8_100, 60)])).isEmpty)
        var third = weight()
        third.resume(kept)
        #expect(bench.run(&third, profile([(7_000, 60)])).map(\.1.phase) == [.start, .end], "a further loss while away is still found")
    }
}
