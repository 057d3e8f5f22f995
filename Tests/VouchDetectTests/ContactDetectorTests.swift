import Testing
@testable import VouchDetect

/// A warehouse door contact and a PIR sensor at 1 Hz (0 closed/still, 1 open/motion).
struct ContactDetectorTests {
    let bench = Bench()

    func detector(_ activeMinMs: Int64 = 30_000, when: ContactDetector.When = .outsideBusinessHours, severity: Severity = .alarm) -> ContactDetector {
        ContactDetector(
            rule: collateralRule(ContactDetector.kind, channel: "door.main", unit: "", exponent: 0),
            parameters: .init(activeMinMs: activeMinMs, when: when, severity: severity))
    }


    @Test func aDoorOpenAtNightIsAnAlarmAfterActiveMinMsAndEndsWhenClosed() throws {
        var d = detector()
        let values = Bench.steps([(0, 10), (1, 40), (0, 5)])
        let findings = bench.run(&d, values, context: { _ in .night })
        try #require(findings.count == 2)
        let (at, start) = findings[0]
        #expect(at == 40, "confirmed activeMinMs after the first active sample (delay ≤ minimum + 1 interval)")
        #expect(start.phase == .start && start.severity == .alarm && start.start == bench.sample(10, 1))
        #expect(start.explanation == "door.main active for 30 s outside business hours (rule: 30 s): nobody is expected on site")
        #expect(start.params == ["active_min_ms": .int(30_000), "when": .text("outside_business_hours"), "severity": .text("alarm")])
        #expect(start.window.count == 12 && start.window[5] == bench.sample(9, 0) && start.window[6] == start.start, "6 samples before the start, 6 from it")
        let (endAt, end) = findings[1]
        #expect(endAt == 50 && end.phase == .end && end.start == start.start && end.end == bench.sample(50, 0))
        #expect(end.durationMs == 40_000 && end.explanation == "door.main inactive again after 40 s")
    }

    @Test func duringBusinessHoursNothingIsRaised() {
        var d = detector()
        #expect(bench.run(&d, Bench.steps([(0, 10), (1, 600), (0, 5)]), context: { _ in .day }).isEmpty)
    }

    @Test func anOpeningShorterThanActiveMinMsIsNotAnEvent() {
        var d = detector()
        #expect(bench.run(&d, Bench.steps([(0, 10), (1, 30), (0, 5)]), context: { _ in .night }).isEmpty, "29 s → confirmed only at 30 s")
    }

    @Test func pirJitterOfSingleBlipsRaisesNothing() {
        var d = detector(5_000)
        // A PIR that blips for one or two samples every few minutes all night (insects, heating).
        let values: [Int64?] = (0..<36_000).map { i in i % 173 == 0 || i % 173 == 1 || i % 611 == 0 ? 1 : 0 }
        #expect(bench.run(&d, values, context: { _ in .night }).isEmpty)
    }

    @Test func aDoorProppedOpenBeforeClosingTimeCountsFromTheEndOfBusinessHours() throws {
        var d = detector()
        let findings = bench.run(&d, Bench.steps([(0, 5), (1, 100)]), context: { $0 < 20 ? .day : .night })
        try #require(findings.count == 1)
        #expect(findings[0].0 == 50 && findings[0].1.start == bench.sample(20, 1))
    }

    @Test func anUnconfirmedOpeningIsDroppedWhenBusinessHoursBegin() {
        var d = detector()
        #expect(bench.run(&d, Bench.steps([(0, 5), (1, 100)]), context: { $0 < 20 ? .night : .day }).isEmpty)
    }

    @Test func aConfirmedOpeningOutlivesTheStartOfBusinessHours() throws {
        var d = detector()
        let findings = bench.run(&d, Bench.steps([(0, 5), (1, 100), (0, 1)]), context: { $0 < 40 ? .night : .day })
        try #require(findings.count == 2)
        #expect(findings[1].0 == 105 && findings[1].1.durationMs == 100_000)
    }

    @Test func anEnclosureSwitchAlarmsOnItsFirstActiveSampleAtAnyTime() throws {
        var d = detector(0, when: .always)
        let findings = bench.run(&d, Bench.steps([(0, 5), (1, 1), (0, 3)]), context: { _ in .day })
        try #require(findings.count == 2)
        #expect(findings[0].0 == 5 && findings[0].1.explanation == "door.main went active: the contact is watched at all times (tamper or enclosure)")
        #expect(findings[1].0 == 6)
    }

    @Test func outsideShiftFollowsTheShiftNotBusinessHours() {
        // In business hours but outside the shift: watched. In the shift: not.
        let offShift = SiteContext(inShift: false, businessHours: true)
        var d = detector(when: .outsideShift)
        #expect(bench.run(&d, Bench.steps([(1, 40)]), context: { _ in offShift }).count == 1)
        var e = detector(when: .outsideShift)
        #expect(bench.run(&e, Bench.steps([(1, 40)]), context: { _ in SiteContext(inShift: true, businessHours: false) }).isEmpty)
    }

    @Test func theSeverityComesFromTheParameter() {
        var d = detector(severity: .record)
        #expect(bench.run(&d, Bench.steps([(1, 40), (0, 1)]), context: { _ in .night }).map(\.1.severity) == [.record, .record])
    }

    @Test func failedPollsNeitherConfirmDropNorEnd() throws {
        var d = detector()
        // Open at 0, unreadable 1–39, open at 40: confirmed then, counted from 0.
        let findings = bench.run(&d, Bench.steps([(1, 1), (nil, 39), (1, 1), (nil, 50), (0, 1)]), context: { _ in .night })
        try #require(findings.count == 2)
        #expect(findings[0].0 == 40 && findings[0].1.start == bench.sample(0, 1))
        #expect(findings[1].0 == 91, "unreadable polls do not end it; the closed reading does")
    }

    @Test func theScoreRisesWhileOpenAndIsOneDuringTheEvent() {
        var d = detector()
        #expect(scoreRisesToOne(&d, normal: 0, abnormal: 1, minMs: 30_000, .night))
        _ = d.feed(bench.sample(40, 0), .night)
        #expect(d.score == 0)
    }

    @Test func theSameSamplesGiveTheSameFindings() {
        let values: [Int64?] = (0..<5_000).map { ($0 / 97) % 3 == 0 ? 1 : ($0 % 50 == 0 ? nil : 0) }
        HealthFixture.expectDeterministic({ detector() }, values, intervalMs: 1000, context: { ($0 / 1000) % 2 == 0 ? .night : .day }, count: 23)
    }

    @Test func stateIsSmallAndFixed() {
        var d = detector()
        let before = d.stateBytes
        _ = bench.run(&d, Bench.steps([(1, 100), (0, 10)]), context: { _ in .night })
        #expect(d.stateBytes == before)
        HealthFixture.expectStateBytes(before, documented: 490)
    }
}
