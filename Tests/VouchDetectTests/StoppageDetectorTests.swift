import Testing
import VouchCore
@testable import VouchDetect

struct StoppageDetectorTests {
    /// 1 Hz samples; threshold 500 (W), stoppage after 15 s below.
    let rule = StoppageDetector.Rule(id: "press-stop", channel: "meter.power", threshold: 500, minDurationMs: 15_000, severity: "high", windowSamples: 3, unit: "W", scaleExponent: 0)

    func sample(_ second: Int64, _ value: Int64?) -> StoppageDetector.Sample {
        .init(monoMs: 1_000_000 + second * 1000, wallMs: 1_700_000_000_000 + second * 1000, value: value)
    }

    /// Feeds a profile (value per second), returns outputs with the second they appeared at.
    func run(_ profile: [Int64?], inShift: (Int64) -> Bool = { _ in true }) -> [(Int64, StoppageDetector.Output)] {
        var detector = StoppageDetector(rule: rule)
        var outputs: [(Int64, StoppageDetector.Output)] = []
        for (i, v) in profile.enumerated() {
            if let o = detector.feed(sample(Int64(i), v), inShift: inShift(Int64(i))) { outputs.append((Int64(i), o)) }
        }
        return outputs
    }

    @Test func stoppageStartsAtTheFirstLowReadingAndIsConfirmedAfterTheMinimum() throws {
        let profile: [Int64?] = Array(repeating: 12_000, count: 10) + Array(repeating: 0, count: 30) + Array(repeating: 12_000, count: 5)
        let outputs = run(profile)
        try #require(outputs.count == 2)
        guard case .started(let start, let duration, let lowest, let window) = outputs[0].1 else { Issue.record("first output must be a start"); return }
        #expect(outputs[0].0 == 25, "confirmed 15 s after the first low reading at second 10")
        #expect(start == sample(10, 0))
        #expect(duration == 15_000)
        #expect(lowest == 0)
        // Window: the 3 samples before the start, then the first 3 from the start on.
        #expect(window == [sample(7, 12_000), sample(8, 12_000), sample(9, 12_000), sample(10, 0), sample(11, 0), sample(12, 0)])
        guard case .ended(let s, let end, let total) = outputs[1].1 else { Issue.record("second output must be an end"); return }
        #expect(s == start)
        #expect(end == sample(40, 12_000))
        #expect(total == 30_000)
    }

    @Test func shortDipIsNotAStoppage() {
        let profile: [Int64?] = Array(repeating: 12_000, count: 5) + Array(repeating: 0, count: 14) + Array(repeating: 12_000, count: 5)
        #expect(run(profile).isEmpty, "14 s below a 15 s minimum must not alarm")
    }

    @Test func valueExactlyAtTheThresholdIsRunning() {
        #expect(run(Array(repeating: 500, count: 40)).isEmpty)
        #expect(run(Array(repeating: 499, count: 40)).count == 1)
    }

    @Test func failedPollsNeitherConfirmNorEndAStoppage() throws {
        // Low from 0, then 20 s unreadable, then low again at 21: confirmed at 21 with start 0.
        let profile: [Int64?] = [0] + Array(repeating: nil, count: 20) + [0, 0]
        let outputs = run(profile)
        try #require(outputs.count == 1)
        guard case .started(let start, let duration, _, _) = outputs[0].1 else { Issue.record("expected a start"); return }
        #expect(outputs[0].0 == 21)
        #expect(start == sample(0, 0))
        #expect(duration == 21_000)
        // And unreadable polls during a stoppage do not end it.
        let during: [Int64?] = Array(repeating: 0, count: 20) + Array(repeating: nil, count: 10) + [0]
        #expect(run(during).count == 1)
    }

    @Test func lowOutsideTheShiftIsNotAlarmedAndCountsFromShiftStart() throws {
        // Shift starts at second 30; power is off from second 0 (the night) until 60.
        let profile: [Int64?] = Array(repeating: 0, count: 60) + Array(repeating: 12_000, count: 3)
        let outputs = run(profile, inShift: { $0 >= 30 })
        try #require(outputs.count == 2)
        guard case .started(let start, _, _, _) = outputs[0].1 else { Issue.record("expected a start"); return }
        #expect(start == sample(30, 0), "a stop that began before the shift counts from the first in-shift reading")
        #expect(outputs[0].0 == 45)
        #expect(run(Array(repeating: 0, count: 60), inShift: { _ in false }).isEmpty)
    }

    @Test func confirmedStoppageOutlivesTheEndOfTheShift() throws {
        let profile: [Int64?] = Array(repeating: 0, count: 40) + [12_000]
        let outputs = run(profile, inShift: { $0 < 20 })
        try #require(outputs.count == 2)
        guard case .ended(_, _, let total) = outputs[1].1 else { Issue.record("expected an end"); return }
        #expect(total == 40_000)
    }

    @Test func secondStoppageAfterRecoveryIsANewEvent() {
        let stop: [Int64?] = Array(repeating: 0, count: 20)
        let run1: [Int64?] = Array(repeating: 12_000, count: 5)
        let outputs = run(run1 + stop + run1 + stop + run1)
        #expect(outputs.count == 4)
    }

    @Test func windowMemoryIsBoundedByWindowSamples() {
        var detector = StoppageDetector(rule: rule)
        for i in 0..<10_000 { _ = detector.feed(sample(Int64(i), Int64(i % 2 == 0 ? 12_000 : 11_000)), inShift: true) }
        for i in 10_000..<10_100 { _ = detector.feed(sample(Int64(i), 0), inShift: true) }
        #expect(detector.isStopped)
        // The state is the ring (≤ 3) plus the after-samples (≤ 3): checked through the reported window.
        var fresh = StoppageDetector(rule: rule)
        var last: StoppageDetector.Output?
        for i in 0..<10_000 { if let o = fresh.feed(sample(Int64(i), i > 9_000 ? 0 : 12_000), inShift: true) { last = o } }
        guard case .started(_, _, _, let window)? = last else { Issue.record("expected a start"); return }
        #expect(window.count == 6)
    }
}
