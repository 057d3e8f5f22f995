import Testing
@testable import VouchGPIO

/// A fake line: a waveform as the kernel would report it (edges with timestamps), written as levels
/// held for durations, with optional contact bounce at each change.
struct FakeLine {
    var edges: [(rising: Bool, ns: Int64)] = []
    var level: Bool
    var now: Int64 = 0

    init(level: Bool) { self.level = level }

    /// Moves to `active` (bouncing `bounces` times, 1 ms apart, first) and holds it for `ms`.
    mutating func hold(_ active: Bool, ms: Int64, bounces: Int = 0) {
        if active != level {
            for _ in 0..<bounces {
                edges.append((active, now))
                now += 1_000_000
                edges.append((!active, now))
                now += 1_000_000
            }
            edges.append((active, now))
            level = active
        }
        now += ms * 1_000_000
    }
}

struct DebouncerTests {
    @Test func bounceIsIgnoredAndTheChangeIsDatedFromTheLastEdge() {
        var line = FakeLine(level: false)
        line.hold(false, ms: 100)
        line.hold(true, ms: 500, bounces: 3)  // a door contact closing with 3 bounces
        line.hold(false, ms: 500, bounces: 2)
        var d = Debouncer(stableNs: 20_000_000, initial: false)
        var changes: [LevelChange] = []
        for e in line.edges { if let c = d.edge(rising: e.rising, atNs: e.ns) { changes.append(c) } }
        if let c = d.advance(toNs: line.now) { changes.append(c) }
        // Two real changes: closed at 106 ms (after 3 bounces of 2 ms), open again at 606 + 4 ms.
        #expect(changes == [LevelChange(active: true, sinceNs: 106_000_000), LevelChange(active: false, sinceNs: 610_000_000)])
        #expect(d.active == false)
    }

    @Test func aBlipShorterThanTheStableTimeIsNoChange() {
        var d = Debouncer(stableNs: 50_000_000, initial: false)
        #expect(d.edge(rising: true, atNs: 1_000_000_000) == nil)
        #expect(d.edge(rising: false, atNs: 1_030_000_000) == nil)  // 30 ms: a blip
        #expect(d.advance(toNs: 5_000_000_000) == nil)
        #expect(d.active == false)
    }

    @Test func zeroStableTimePassesEveryEdge() {
        var d = Debouncer(stableNs: 0, initial: false)
        #expect(d.edge(rising: true, atNs: 10) == LevelChange(active: true, sinceNs: 10))
        #expect(d.edge(rising: false, atNs: 20) == LevelChange(active: false, sinceNs: 20))
    }
}

struct HoldTimerTests {
    @Test func doorOpenForFortySecondsIsReportedOnceThenReleased() {
        var h = HoldTimer(holdNs: 40_000_000_000)
        #expect(h.level(LevelChange(active: true, sinceNs: 0)) == nil)
        #expect(h.advance(toNs: 39_999_000_000) == nil)
        #expect(h.advance(toNs: 40_000_000_000) == .held(sinceNs: 0))
        #expect(h.advance(toNs: 90_000_000_000) == nil, "reported once")
        #expect(h.level(LevelChange(active: false, sinceNs: 95_000_000_000)) == .released(atNs: 95_000_000_000, durationNs: 95_000_000_000))
    }

    @Test func aShortOpeningIsNotHeld() {
        var h = HoldTimer(holdNs: 40_000_000_000)
        _ = h.level(LevelChange(active: true, sinceNs: 0))
        #expect(h.level(LevelChange(active: false, sinceNs: 10_000_000_000)) == nil)
        #expect(h.advance(toNs: 100_000_000_000) == nil)
    }
}

struct PulseCounterTests {
    @Test func countsRisingEdgesAndGivesTheRatePerMinute() {
        var line = FakeLine(level: false)
        for _ in 0..<90 {  // 90 pulses, 200 ms high / 466.67 ms low: 90 per minute
            line.hold(true, ms: 200)
            line.hold(false, ms: 467)
        }
        var c = PulseCounter(startNs: 0)
        for e in line.edges { c.edge(rising: e.rising) }
        let (count, rate) = c.closeInterval(atNs: 60_000_000_000)
        #expect(count == 90)
        #expect(rate == 90_000, "90 pulses in 60 s: 90.000 per minute")
        #expect(c.total == 90)
        c.edge(rising: true)
        #expect(c.closeInterval(atNs: 90_000_000_000) == (1, 2_000), "1 pulse in 30 s: 2.000 per minute")
        #expect(c.total == 91)
    }
}

struct DutyCycleTests {
    @Test func runSignalActiveShareOfAnInterval() {
        var d = DutyCycle(active: false, startNs: 0)
        d.level(LevelChange(active: true, sinceNs: 15_000_000_000))
        d.level(LevelChange(active: false, sinceNs: 45_000_000_000))
        #expect(d.closeInterval(atNs: 60_000_000_000) == 500)
        d.level(LevelChange(active: true, sinceNs: 60_000_000_000))
        #expect(d.closeInterval(atNs: 120_000_000_000) == 1000, "active the whole next interval")
    }
}

struct EdgeContinuityTests {
    @Test func anEdgeInFlightIsNotALoss() {
        var c = EdgeContinuity(level: false)
        #expect(c.check(current: true) == false)  // the read saw the new level first
        #expect(c.edge(rising: true) == false)  // then its edge arrived
        #expect(c.check(current: true) == false)
        #expect(c.losses == 0)
    }

    @Test func alternatingEdgesLoseNothing() {
        var c = EdgeContinuity(level: false)
        for i in 0..<20 { #expect(c.edge(rising: i % 2 == 0) == false) }
        #expect(c.check(current: false) == false)
        #expect(c.losses == 0)
    }

    /// The kernel queue kept the first 16 of 200 toggles: the queue alone looks fine, the level read
    /// afterwards does not (200 toggles from low end low; 16 edges end low too, so also try 201).
    @Test func aFullKernelQueueIsDetected() {
        var c = EdgeContinuity(level: false)
        for i in 0..<16 { _ = c.edge(rising: i % 2 == 0) }
        #expect(c.check(current: true) == false, "one disagreeing read may be an edge in flight")
        #expect(c.check(current: true) == true, "201 toggles end high, the 16 kept edges end low")
        #expect(c.losses == 1)
        #expect(c.check(current: true) == false, "resynchronised")
        var twice = EdgeContinuity(level: false)
        #expect(twice.edge(rising: true) == false)
        #expect(twice.edge(rising: true) == true, "rising twice: a falling edge went missing")
    }
}
