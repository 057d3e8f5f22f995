import Testing
import VouchCore
@testable import VouchDetect

struct BaselineDetectorTests {
    typealias F = HealthFixture
    /// Polled every minute from a Monday 00:00; a machine that runs weekdays 06:00–22:00 at 5000 W and idles
    /// at 800 W otherwise, both ±3 %. (06 and 22 are block edges of the two-hour profile.)
    static let interval: Int64 = 60_000
    static let week = 7 * 1440
    static let params = BaselineDetector.Parameters(direction: .below, minDurationMs: 900_000, learnSamples: Int64(week), minSpread: 10)

    func detector(_ p: BaselineDetector.Parameters = params) -> BaselineDetector {
        BaselineDetector(rule: F.rule(BaselineDetector.kind, version: BaselineDetector.version), parameters: p)
    }

    static func context(_ i: Int) -> SiteContext { SiteContext(hourOfWeek: (i / 60) % 168) }

    /// Minute index of day `day` (0 = Monday) of week `week` at hh:mm.
    static func at(week: Int, day: Int, _ hour: Int, _ minute: Int = 0) -> Int { week * Self.week + day * 1440 + hour * 60 + minute }

    /// The machine's readings for `weeks` weeks, idle instead of running over `idle` (minute ranges).
    func machine(weeks: Int, idle: [Range<Int>] = [], seed: UInt64 = 21) -> [Int64?] {
        var j = F.Jitter(seed: seed)
        return (0..<(weeks * Self.week)).map { i in
            let day = (i / 1440) % 7, minute = i % 1440
            let runs = day < 5 && minute >= 360 && minute < 1320 && !idle.contains { $0.contains(i) }
            return j.around(runs ? 5000 : 800, perMille: 30)
        }
    }

    func run(_ d: inout BaselineDetector, _ values: [Int64?]) -> [(index: Int, finding: Finding)] {
        F.run(&d, values, intervalMs: Self.interval, context: Self.context)
    }

    @Test func idleOnATuesdayMorningIsAnEventAndTheSameIdleOnASundayIsNot() throws {
        let tuesday = Self.at(week: 3, day: 1, 10), sunday = Self.at(week: 3, day: 6, 10)
        var d = detector()
        let out = run(&d, machine(weeks: 4, idle: [tuesday..<(tuesday + 120)]))
        try #require(out.count == 2, "nothing else in four noisy weeks, Sunday's idle included (\(sunday))")
        let start = out[0].finding
        #expect(start.phase == .start && start.severity == .warning && start.start.monoMs == F.sample(tuesday, nil, intervalMs: Self.interval).monoMs)
        #expect(out[0].index == tuesday + 15, "confirmed 15 min after the first idle sample")
        #expect(start.baseline["bin"] == 5 && (4900...5100).contains(start.baseline["center"] ?? 0), "\(start.baseline)")
        #expect(start.explanation.hasSuffix("for weekdays 10:00–12:00 at this time of the week, score 1.00 for 15 min: unusually low"), "\(start.explanation)")
        #expect(start.params.count == 9 && start.params["direction"] == .text("below"))
        #expect(start.window.count == 3 && start.window[1] == start.start, "1 before, the start, the next")
        #expect(out[1].finding.phase == .end && out[1].index == tuesday + 120, "ends when it runs again at 12:00")
    }

    @Test func nothingIsScoredDuringWarmUp() {
        // The same idle Tuesday in the first week, while it is still learning.
        let tuesday = Self.at(week: 0, day: 1, 10)
        var d = detector()
        var maxScore = 0.0
        for (i, v) in machine(weeks: 1, idle: [tuesday..<(tuesday + 120)]).enumerated() {
            #expect(d.feed(F.sample(i, v, intervalMs: Self.interval), Self.context(i)) == nil)
            maxScore = max(maxScore, d.score)
        }
        #expect(maxScore == 0)
    }

    @Test func aLongAnomalyDoesNotTeachItselfAsNormal() throws {
        // A whole Tuesday idle in week 3, then an idle Wednesday morning in week 4: both events, one each.
        let tuesday = Self.at(week: 2, day: 1, 6), wednesday = Self.at(week: 3, day: 2, 10)
        var d = detector()
        let out = run(&d, machine(weeks: 4, idle: [tuesday..<(tuesday + 960), wednesday..<(wednesday + 120)]))
        try #require(out.count == 4)
        #expect(out[0].index == tuesday + 15 && out[1].index == tuesday + 960, "one event for the whole day, ending at 22:00")
        #expect(out[2].index == wednesday + 15 && out[3].index == wednesday + 120)
    }

    @Test func aWeekOfLowOutputStaysUnusualEveryDay() throws {
        // From week 3 the machine runs 12 % low (4400 W) every weekday: each day is an event. Were the
        // event's samples learned, even clipped, Monday would teach Tuesday that 4400 W is usual.
        var j = F.Jitter(seed: 5)
        let values: [Int64?] = machine(weeks: 4).enumerated().map { i, v in
            let day = (i / 1440) % 7, minute = i % 1440
            return i >= 3 * Self.week && day < 5 && minute >= 360 && minute < 1320 ? j.around(4400, perMille: 30) : v
        }
        var d = detector()
        let starts = run(&d, values).filter { $0.finding.phase == .start }
        #expect(starts.map(\.index) == (0..<5).map { Self.at(week: 3, day: $0, 6, 15) })
    }

    @Test func theScoreRisesWithTheDeviationAndIsZeroOnTheOtherSide() {
        var below = detector()
        var both = detector(.init(direction: .both, minDurationMs: 900_000, learnSamples: Int64(Self.week), minSpread: 10))
        let learn = machine(weeks: 3)
        _ = run(&below, learn)
        _ = run(&both, learn)
        let tuesday = Self.at(week: 3, day: 1, 10)
        var scores: [Double] = []
        for (k, v) in [Int64(5000), 4900, 4700, 4500, 4300, 4000, 6000].enumerated() {
            _ = below.feed(F.sample(tuesday + k, v, intervalMs: Self.interval), Self.context(tuesday + k))
            _ = both.feed(F.sample(tuesday + k, v, intervalMs: Self.interval), Self.context(tuesday + k))
            scores.append(below.score)
        }
        #expect(scores[0] == 0 && scores[1] == 0, "within 3 spreads: 0")
        #expect(scores[2] > 0 && scores[2] < scores[3] && scores[3] < scores[4] && scores[5] == 1, "\(scores)")
        #expect(scores[6] == 0 && both.score == 1, "6000 W is not low; it is unusual")
    }

    @Test func failedPollsNeitherConfirmNorEndAnEvent() throws {
        let tuesday = Self.at(week: 3, day: 1, 10)
        var values = machine(weeks: 4, idle: [tuesday..<(tuesday + 120)])
        for i in stride(from: tuesday + 1, to: tuesday + 120, by: 2) { values[i] = nil }
        var d = detector()
        let out = run(&d, values)
        try #require(out.count == 2)
        #expect(out[0].index == tuesday + 16, "the first valid sample at least 15 min after the start")
        #expect(out[1].index == tuesday + 120)
    }

    @Test func extremeReadingsDoNotTrap() {
        var d = detector(.init(minDurationMs: 0, learnSamples: 0, minSpread: 1))
        for (i, v) in [Int64.max, Int64.min, 0, Int64.max, nil, -1].enumerated() {
            _ = d.feed(F.sample(i * 60, v, intervalMs: Self.interval), Self.context(i * 60))
            #expect(d.score >= 0 && d.score <= 1)
        }
    }

    @Test func theSameSamplesGiveTheSameFindings() {
        let tuesday = Self.at(week: 3, day: 1, 10)
        let values = machine(weeks: 4, idle: [tuesday..<(tuesday + 120)])
        F.expectDeterministic({ detector() }, values, intervalMs: Self.interval, context: Self.context, count: 2)
    }

    @Test func stateFitsIn512BytesWindowIncluded() {
        F.expectStateBytes(detector().stateBytes, documented: 473)
    }
}
