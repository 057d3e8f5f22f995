import Testing
@testable import VouchDetect

/// An RFID reader counting tagged pallets at 1 Hz (450 pledged), and an energy meter's kWh register
/// (monotonic) at 1 Hz.
struct CountDropDetectorTests {
    let bench = Bench()

    func tags(dropAbs: Int64 = 10, settleMs: Int64 = 60_000, when: CountDropDetector.When = .always) -> CountDropDetector {
        CountDropDetector(
            rule: collateralRule(CountDropDetector.kind, channel: "rfid.pallets", unit: "pallets", exponent: 0),
            parameters: .init(dropAbs: dropAbs, settleMs: settleMs, when: when))
    }

    func meter() -> CountDropDetector {
        CountDropDetector(
            rule: collateralRule(CountDropDetector.kind, channel: "meter.energy", unit: "kWh", exponent: -1),
            parameters: .init(dropAbs: 1, settleMs: 60_000, backwardsIsTamper: true))
    }


    @Test func aCountDropOutsideAReleaseWindowIsAnAlarmAndEndsWhenTheCountSettles() throws {
        var d = tags()
        let values = Bench.steps([(450, 100), (412, 200)])
        let findings = bench.run(&d, values)
        try #require(findings.count == 2)
        let (at, start) = findings[0]
        #expect(at == 160, "confirmed settleMs after the drop")
        #expect(start.severity == .alarm && start.start == bench.sample(100, 412) && start.baseline == ["settled": 450])
        #expect(start.explanation == "count 412 pallets, 38 pallets below the settled 450 pallets for 1 min, outside any release window: items left")
        #expect(start.params == ["drop": .int(10), "settle_ms": .int(60_000), "when": .text("always"), "backwards_is_tamper": .text("false")])
        #expect(start.window.count == 6 && start.window[2] == bench.sample(99, 450) && start.window[3] == start.start)
        let (endAt, end) = findings[1]
        #expect(endAt == 161 && end.phase == .end && end.severity == .alarm)
        #expect(end.baseline == ["settled": 450, "after": 412, "loss": 38, "lowest": 412])
        #expect(d.settledCount == 412)
    }

    @Test func aDropInsideAReleaseWindowIsARecordNotAnAlarm() throws {
        var d = tags()
        let findings = bench.run(&d, Bench.steps([(450, 100), (412, 200)]), context: { $0 >= 50 && $0 < 150 ? .releasing : SiteContext() })
        try #require(findings.count == 2)
        #expect(findings.map(\.1.severity) == [.record, .record])
        #expect(findings[0].1.explanation == "released 38 pallets inside the release window (count 412 pallets, settled 450 pallets)")
        #expect(findings[1].1.explanation == "count settled at 412 pallets: 38 pallets released inside the release window")
    }

    @Test func dropsSmallerThanDropAbsAndMissedReadsRaiseNothing() {
        var d = tags()
        // The reader misses up to 15 tags for a few seconds at a time; 9 pallets leave for good.
        let values: [Int64?] = (0..<20_000).map { (i: Int) -> Int64? in
            let base: Int64 = i < 10_000 ? 450 : 441
            return i % 97 < 3 ? base - Int64(i % 16) : base
        }
        #expect(bench.run(&d, values).isEmpty)
        #expect(d.settledCount == 441)
    }

    @Test func aConfirmedDropThatSettlesBackIsCorrected() throws {
        var d = tags()
        // The reader flickers between 400 and 396 for 70 s (never settles), then reads 449 again.
        let flicker: [Int64?] = (0..<70).map { $0 % 2 == 0 ? 400 : 396 }
        let findings = bench.run(&d, Bench.steps([(450, 100)]) + flicker + Bench.steps([(449, 70)]))
        try #require(findings.count == 2)
        #expect(findings[1].0 == 170 + 60 && findings[1].1.explanation == "count settled back at 449 pallets, less than 10 pallets below the settled 450 pallets: the drop was corrected")
        #expect(d.settledCount == 449, "back within dropAbs: it settles as an ordinary small change")
    }

    @Test func whenGatesWhereADropMayBegin() {
        var d = tags(when: .outsideBusinessHours)
        #expect(bench.run(&d, Bench.steps([(450, 100), (400, 200)]), context: { _ in .day }).isEmpty)
        #expect(d.settledCount == 400)
        var e = tags(when: .outsideBusinessHours)
        #expect(bench.run(&e, Bench.steps([(450, 100), (400, 200)]), context: { _ in .night }).first?.1.explanation.contains("outside business hours") == true)
    }

    @Test func failedPollsNeitherConfirmNorEndADrop() throws {
        var d = tags()
        let findings = bench.run(&d, Bench.steps([(450, 100), (400, 1), (nil, 80), (400, 1)]))
        try #require(findings.count == 1)
        #expect(findings[0].0 == 181 && findings[0].1.start == bench.sample(100, 400))
    }

    @Test func aCounterGoingBackwardsIsTamperingAtOnceEvenInAReleaseWindow() throws {
        var m = meter()
        // 0.1 kWh every 10 s; at 300 the register reads 119.9 kWh lower, then counts on.
        var values: [Int64?] = (0..<300).map { 100_000 + Int64($0 / 10) }
        values += (0..<200).map { 98_830 + Int64($0 / 10) }
        let findings = bench.run(&m, values, context: { _ in .releasing })
        try #require(findings.count == 2)
        let (at, start) = findings[0]
        #expect(at == 300 && start.severity == .alarm && start.start == bench.sample(300, 98_830))
        #expect(start.explanation == "counter went backwards from 10002.9 kWh to 9883.0 kWh: tampering or a replaced meter")
        #expect(start.baseline == ["before": 100_029])
        #expect(findings[1].0 == 360 && findings[1].1.phase == .end && findings[1].1.start == start.start && findings[1].1.baseline == ["before": 100_029, "lowest": 98_830])
        #expect(start.window.count == 4 && start.window[3] == start.start, "3 samples before the decrease, then it (found at once)")
        #expect(findings[1].1.explanation.contains("went back by 119.9 kWh from 10002.9 kWh"), "\(findings[1].1.explanation)")
    }

    @Test func aRisingCounterAndItsFailedPollsAreNeverAnEvent() {
        var m = meter()
        let values: [Int64?] = (0..<50_000).map { (i: Int) -> Int64? in i % 1000 == 5 ? nil : 100_000 + Int64(i / 7) }
        #expect(bench.run(&m, values).isEmpty)
        #expect(m.score == 0)
    }

    @Test func aDecreaseAcrossFailedPollsIsStillTampering() {
        var m = meter()
        #expect(bench.run(&m, [500, 501, nil, nil, 400]).map(\.0) == [4])
    }

    @Test func theScoreRisesWithTheDropAndIsOneDuringTheEvent() {
        var d = tags()
        _ = bench.run(&d, Bench.steps([(450, 70)]))
        #expect(d.score == 0)
        _ = d.feed(bench.sample(70, 445), SiteContext())
        #expect(d.score > 0.2 && d.score < 0.5)
        _ = d.feed(bench.sample(71, 400), SiteContext())
        #expect(d.score >= 0.5 && d.score < 1)
        _ = d.feed(bench.sample(131, 400), SiteContext())
        #expect(d.score == 1)
    }

    @Test func theSameSamplesGiveTheSameFindings() {
        let values = Bench.steps([(450, 100), (412, 200), (nil, 10), (430, 100), (300, 100)])
        HealthFixture.expectDeterministic({ tags() }, values, intervalMs: 1000, context: { $0 > 350 ? .releasing : SiteContext() }, count: 4)
        let meterValues: [Int64?] = (0..<500).map { (i: Int) -> Int64? in 1000 + Int64(i % 200) }
        HealthFixture.expectDeterministic({ meter() }, meterValues, intervalMs: 1000, context: { _ in SiteContext() }, count: 4)
    }

    @Test func stateIsSmallAndFixed() {
        var d = tags()
        let before = d.stateBytes
        _ = bench.run(&d, Bench.steps([(450, 100), (412, 200)]))
        #expect(d.stateBytes == before)
        HealthFixture.expectStateBytes(before, documented: 498)
    }
}
