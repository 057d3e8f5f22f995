import Testing
import VouchCore
@testable import VouchDetect

struct RunStateDetectorTests {
    typealias F = HealthFixture
    /// Polled every 10 s; running at 1000 W and above, stopped below 300 W; stop after 5 min, run after 1 min, offline after 2 min.
    static let interval: Int64 = 10_000
    static let params = RunStateDetector.Parameters(runningAtOrAbove: 1000, stoppedBelow: 300, minStopMs: 300_000, minRunMs: 60_000, offlineAfterMs: 120_000)

    func detector(_ p: RunStateDetector.Parameters = params, unit: String = "W") -> RunStateDetector {
        RunStateDetector(rule: F.rule(RunStateDetector.kind, version: RunStateDetector.version, unit: unit), parameters: p)
    }

    /// Running at 5000 W ±3 %, `minutes` long.
    func running(_ minutes: Int, seed: UInt64 = 1) -> [Int64?] {
        var j = F.Jitter(seed: seed)
        return j.series(5000, perMille: 30, count: minutes * 6)
    }

    func off(_ minutes: Int, seed: UInt64 = 2) -> [Int64?] {
        var j = F.Jitter(seed: seed)
        return (0..<(minutes * 6)).map { _ in 10 + j.around(10, perMille: 300) }
    }

    @Test func aStopInTheShiftIsAnAlarmDatedAtItsFirstLowSampleAndEndsAtItsFirstRunningOne() throws {
        var d = detector()
        let out = F.run(&d, running(10) + off(20) + running(10), intervalMs: Self.interval)
        try #require(out.count == 2)
        let (i, start) = out[0]
        #expect(start.phase == .start && start.severity == .alarm)
        #expect(start.start == F.sample(60, start.start.value, intervalMs: Self.interval), "dated at the first sample below 300 W")
        #expect(i == 90, "confirmed exactly 5 min after the first low sample")
        #expect(start.at.monoMs - start.start.monoMs <= Self.params.minStopMs + Self.interval)
        #expect(start.baseline == ["running_at_or_above": 1000, "stopped_below": 300])
        #expect(start.params["min_stop_ms"] == .int(300_000) && start.params["alarm_on_idle"] == .text("false") && start.params.count == 7)
        #expect(start.explanation.contains("below the stop threshold 300 W for 5 min during the shift: production stopped"), "\(start.explanation)")
        #expect(start.window.count == 4 && start.window[2] == start.start, "2 samples before the start, the start, 1 after")
        let (j, end) = out[1]
        #expect(end.phase == .end && end.start == start.start && end.severity == .alarm)
        #expect(end.end?.monoMs == F.sample(180, nil, intervalMs: Self.interval).monoMs, "dated at the first running sample")
        #expect(j == 186, "confirmed after 1 min running")
        #expect(end.durationMs == 20 * 60_000)
        #expect(end.explanation.contains("stopped 20 min"), "\(end.explanation)")
        #expect(d.state == .running)
    }

    @Test func theRulesSeverityIsTheSeverityOfAStopInTheShift() throws {
        var p = Self.params
        p.severity = .warning
        var d = detector(p)
        let inShift = F.run(&d, running(10) + off(20) + running(10), intervalMs: Self.interval)
        #expect(inShift.map(\.finding.severity) == [.warning, .warning])
        var outside = detector(p)
        #expect(F.run(&outside, running(10) + off(20), intervalMs: Self.interval, context: { _ in SiteContext(inShift: false) }).map(\.finding.severity) == [.record])
        // A rule that only records: an in-shift stop is one event, not followed again at every sample.
        p.severity = .record
        var recording = detector(p)
        let out = F.run(&recording, running(10) + off(20) + running(10), intervalMs: Self.interval)
        #expect(out.map(\.finding.phase) == [.start, .end] && out.allSatisfy { $0.finding.severity == .record })
    }

    @Test func aDipShorterThanMinStopIsNoEvent() {
        var d = detector()
        #expect(F.run(&d, running(10) + Array(off(5).dropLast()) + running(10), intervalMs: Self.interval).isEmpty, "4 min 50 s below a 5 min minimum")
    }

    @Test func aStopOutsideTheShiftIsRecordedNotAlarmed() throws {
        var d = detector()
        let out = F.run(&d, running(10) + off(20), intervalMs: Self.interval, context: { _ in SiteContext(inShift: false) })
        try #require(out.count == 1)
        #expect(out[0].finding.severity == .record)
        #expect(out[0].finding.explanation.hasSuffix("outside the shift: stop recorded"), "\(out[0].finding.explanation)")
    }

    /// A real calendar: weekdays 06:00–22:00 UTC, maintenance Tuesday 10:00–12:00.
    func calendar() -> SiteCalendar {
        let tenOClock = F.tuesdayMidnightWall + 10 * 3_600_000
        return SiteCalendar(
            timeZoneID: "UTC", shift: .init(days: [.mon, .tue, .wed, .thu, .fri], startMinute: 360, endMinute: 1320),
            maintenance: [.init(startWallMs: tenOClock, endWallMs: tenOClock + 2 * 3_600_000, reason: "press service")])
    }

    @Test func aStopDuringPlannedMaintenanceIsRecorded() throws {
        var cal = calendar()
        var d = detector()
        // From 09:00: running until 10:05, stopped until 11:50, running to 12:30.
        let values = running(65) + off(105) + running(40)
        let out = F.run(&d, values, intervalMs: Self.interval, firstIndex: 9 * 360) { i in cal.context(wallMs: F.sample(i, nil, intervalMs: Self.interval).wallMs) }
        try #require(out.count == 2)
        #expect(out[0].finding.severity == .record)
        #expect(out[0].finding.explanation.hasSuffix("during a planned stop (holiday or maintenance): stop recorded"))
        #expect(out[1].finding.phase == .end && out[1].finding.severity == .record)
    }

    @Test func aStopThatOutlastsMaintenanceIsAlarmedFromTheFirstSampleAfterIt() throws {
        var cal = calendar()
        var d = detector()
        // Stopped from 10:05 and not restarted after the service ended at 12:00.
        let values = running(65) + off(175)
        let out = F.run(&d, values, intervalMs: Self.interval, firstIndex: 9 * 360) { i in cal.context(wallMs: F.sample(i, nil, intervalMs: Self.interval).wallMs) }
        try #require(out.count == 3)
        let noon = 12 * 360
        #expect(out[0].finding.severity == .record)
        #expect(out[1].finding.phase == .end && out[1].index == noon, "the recorded stop closes at the first in-shift sample")
        #expect(out[1].finding.explanation.contains("an in-shift stop is followed from here"))
        #expect(out[2].finding.phase == .start && out[2].finding.severity == .alarm)
        #expect(out[2].finding.start.monoMs == F.sample(noon, nil, intervalMs: Self.interval).monoMs)
        #expect(out[2].index == noon + 30, "alarmed 5 min after the shift resumed")
    }

    @Test func aMachineThatDoesNotStartWithTheMorningShiftIsAlarmed() throws {
        // Night (outside the shift) from sample 0, the shift from sample 100; stopped all along.
        var d = detector()
        let out = F.run(&d, running(5) + off(40), intervalMs: Self.interval) { i in SiteContext(inShift: i >= 100) }
        try #require(out.count == 3)
        #expect(out.map(\.finding.severity) == [.record, .record, .alarm])
        #expect(out[2].finding.start.monoMs == F.sample(100, nil, intervalMs: Self.interval).monoMs && out[2].index == 130)
        // Once the machine starts with the shift, a morning is just the night's record closing.
        var d2 = detector()
        let normal = F.run(&d2, running(5) + off(15) + running(20), intervalMs: Self.interval) { i in SiteContext(inShift: i >= 119) }
        #expect(normal.map(\.finding.phase) == [.start, .end] && normal.allSatisfy { $0.finding.severity == .record })
    }

    @Test func jitterAroundTheRunningThresholdDoesNotFlap() {
        // Running just at the threshold, ±3 %: each sample is on either side.
        var j = F.Jitter(seed: 7)
        var d = detector()
        var changes = 0, last = d.state, findings = 0
        for i in 0..<(6 * 60 * 8) {
            if d.feed(F.sample(i, j.around(1000, perMille: 30), intervalMs: Self.interval), SiteContext()) != nil { findings += 1 }
            if d.state != last { changes += 1; last = d.state }
        }
        #expect(findings == 0)
        #expect(changes <= 1, "offline → running or idle once, then steady")
        // The same with idle alarmed: never 5 min unbroken below 1000 W.
        var e = detector(.init(runningAtOrAbove: 1000, stoppedBelow: 300, minStopMs: 300_000, minRunMs: 60_000, offlineAfterMs: 120_000, alarmOnIdle: true))
        var j2 = F.Jitter(seed: 7)
        #expect(F.run(&e, j2.series(1030, perMille: 30, count: 6 * 60 * 8), intervalMs: Self.interval).isEmpty)
    }

    @Test func jitterAroundTheStopThresholdWhileIdleIsOneStateNotAStream() {
        var j = F.Jitter(seed: 11)
        var d = detector()
        var states: [RunStateDetector.RunState] = []
        var findings = 0
        for (i, v) in (running(10) + j.series(300, perMille: 30, count: 6 * 60 * 4)).enumerated() {
            if d.feed(F.sample(i, v, intervalMs: Self.interval), SiteContext()) != nil { findings += 1 }
            if states.last != d.state { states.append(d.state) }
        }
        #expect(findings == 0, "idle is not an event without alarmOnIdle, and never 5 min unbroken below 300 W")
        #expect(states == [.offline, .running, .idle])
    }

    @Test func idleInTheShiftIsAnAlarmOnlyWithAlarmOnIdle() throws {
        var j = F.Jitter(seed: 3)
        let values = running(10) + j.series(600, perMille: 30, count: 6 * 20)
        var quiet = detector()
        #expect(F.run(&quiet, values, intervalMs: Self.interval).isEmpty)
        #expect(quiet.state == .idle)
        var loud = detector(.init(runningAtOrAbove: 1000, stoppedBelow: 300, minStopMs: 300_000, minRunMs: 60_000, offlineAfterMs: 120_000, alarmOnIdle: true))
        let out = F.run(&loud, values, intervalMs: Self.interval)
        try #require(out.count == 1)
        #expect(out[0].finding.severity == .alarm && out[0].index == 90 && out[0].finding.start.monoMs == F.sample(60, nil, intervalMs: Self.interval).monoMs)
        #expect(out[0].finding.explanation.contains("below the running threshold 1000 W but powered"), "\(out[0].finding.explanation)")
        #expect(out[0].finding.explanation.hasSuffix("machine idle, not producing"))
    }

    /// A counter at 60 parts a minute (10 per 10 s poll) until sample `stopAt`, then stopped.
    func counter(_ count: Int, stopAt: Int, restartAt: Int? = nil) -> [Int64?] {
        var total: Int64 = 123_456, out: [Int64?] = []
        for i in 0..<count {
            if i == restartAt { total = 0 }
            if i > 0 && i <= stopAt { total += 10 }
            out.append(total)
        }
        return out
    }

    var counterParams: RunStateDetector.Parameters {
        .init(input: .counter, runningAtOrAbove: 30, stoppedBelow: 5, minStopMs: 300_000, minRunMs: 60_000, offlineAfterMs: 120_000)
    }

    @Test func aCounterAtAKnownRateThatStopsIsAStopFromWhenItsRateFell() throws {
        var d = detector(counterParams, unit: "parts")
        let out = F.run(&d, counter(200, stopAt: 60), intervalMs: Self.interval)
        try #require(out.count == 1)
        // Last count at 60; at 61 at most 1 count in 10 s = 6/min (idle), at 62 at most 1 in 20 s = 3/min: below 5.
        #expect(out[0].finding.start.monoMs == F.sample(62, nil, intervalMs: Self.interval).monoMs)
        #expect(out[0].index == 92 && out[0].finding.severity == .alarm)
        #expect(out[0].finding.explanation.hasPrefix("rate 0 parts/min, below the stop threshold 5 parts/min for 5 min during the shift"), "\(out[0].finding.explanation)")
    }

    @Test func aCounterRestartIsNotAStop() {
        var d = detector(counterParams)
        var states = Set<RunStateDetector.RunState>()
        for (i, v) in counter(300, stopAt: 300, restartAt: 150).enumerated() {
            #expect(d.feed(F.sample(i, v, intervalMs: Self.interval), SiteContext()) == nil, "sample \(i)")
            if i > 10 { states.insert(d.state) }
        }
        #expect(states == [.running])
        // Not even for an instant: with no minimum at all, one low sample would be a stop.
        var strict = detector(.init(input: .counter, runningAtOrAbove: 30, stoppedBelow: 5, minStopMs: 0, minRunMs: 0, offlineAfterMs: 120_000))
        #expect(F.run(&strict, counter(300, stopAt: 300, restartAt: 150), intervalMs: Self.interval).isEmpty)
    }

    @Test func aSlowCounterPolledFastIsRunning() {
        // 10 strokes a minute (one every 6 s), polled every second: most polls see no new count.
        var d = detector(.init(input: .counter, runningAtOrAbove: 5, stoppedBelow: 2, minStopMs: 60_000, minRunMs: 30_000, offlineAfterMs: 120_000))
        let values: [Int64?] = (0..<3600).map { Int64($0 / 6) }
        #expect(F.run(&d, values, intervalMs: 1000).isEmpty)
        #expect(d.state == .running)
    }

    @Test func failedPollsNeitherConfirmNorEndAStop() throws {
        // Low from sample 60, every other poll failing: confirmed at the first valid sample ≥ 5 min after 60.
        let values = running(10) + (0..<60).map { $0 % 2 == 0 ? Int64(10) : nil } + [Int64(10)]
        var d = detector()
        let out = F.run(&d, values, intervalMs: Self.interval)
        try #require(out.count == 1)
        #expect(out[0].index == 90 && out[0].finding.start.monoMs == F.sample(60, nil, intervalMs: Self.interval).monoMs)
        // Failed polls alone (shorter than offline) while running start nothing, and while stopped end nothing.
        var e = detector()
        let during = running(10) + off(10) + Array(repeating: nil, count: 10) + off(1)
        #expect(F.run(&e, during, intervalMs: Self.interval).map(\.finding.phase) == [.start])
        #expect(e.state == .stopped)
    }

    @Test func goingOfflineEndsAStopAndTheStateIsOfflineUntilReconfirmed() throws {
        var d = detector()
        let values = running(10) + off(10) + Array(repeating: nil, count: 13) + off(10)
        var states: [RunStateDetector.RunState] = []
        var out: [(Int, Finding)] = []
        for (i, v) in values.enumerated() {
            if let f = d.feed(F.sample(i, v, intervalMs: Self.interval), SiteContext()) { out.append((i, f)) }
            if states.last != d.state { states.append(d.state) }
        }
        try #require(out.count == 3)
        // Last valid sample 119; 2 min later (sample 131, a failed poll) it is offline.
        #expect(out[1].0 == 131 && out[1].1.phase == .end && out[1].1.end?.value == nil)
        #expect(out[1].1.explanation.contains("run state unknown (offline)"))
        // Back at 133: a new stop from there, confirmed after 5 min.
        #expect(out[2].1.phase == .start && out[2].1.start.monoMs == F.sample(133, nil, intervalMs: Self.interval).monoMs && out[2].0 == 163)
        #expect(states == [.offline, .running, .stopped, .offline, .stopped])
    }

    @Test func aSilentGapLongerThanOfflineEndsAStopLikeFailedPolls() throws {
        var d = detector()
        for (i, v) in (running(10) + off(10)).enumerated() { _ = d.feed(F.sample(i, v, intervalMs: Self.interval), SiteContext()) }
        let back = d.feed(F.sample(200, 10, intervalMs: Self.interval), SiteContext())
        #expect(back?.phase == .end && back?.explanation.contains("offline") == true)
        #expect(d.state == .offline)
    }

    @Test func scoreRisesWhileAStopDevelopsAndIsOneWhenConfirmed() {
        var d = detector()
        _ = F.run(&d, running(10), intervalMs: Self.interval)
        #expect(d.score == 0)
        _ = F.run(&d, off(2), intervalMs: Self.interval, firstIndex: 60)
        #expect(d.score > 0.3 && d.score < 0.5, "11 of 30 samples")
        _ = F.run(&d, off(4), intervalMs: Self.interval, firstIndex: 72)
        #expect(d.score == 1)
    }

    @Test func theSameSamplesGiveTheSameFindings() {
        let values = running(10) + off(20) + running(10) + Array(repeating: nil, count: 20) + off(10)
        F.expectDeterministic({ detector() }, values, intervalMs: Self.interval, count: 3)
    }

    @Test func stateFitsIn512Bytes() {
        F.expectStateBytes(detector().stateBytes, documented: 441)
    }
}
