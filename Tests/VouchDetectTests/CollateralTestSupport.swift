import Testing
@testable import VouchDetect

/// Deterministic sensor noise of a fixed amplitude (a 64-bit LCG): the same seed gives the same
/// jitter on every run. (``HealthFixture/Jitter`` is relative to the value; a load cell's or a tilt
/// sensor's noise is not.)
struct Jitter {
    var state: UInt64

    init(seed: UInt64) { state = seed }

    /// A value in [-amplitude, amplitude].
    mutating func next(_ amplitude: Int64) -> Int64 {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        guard amplitude > 0 else { return 0 }
        return Int64((state >> 33) % UInt64(2 * amplitude + 1)) - amplitude
    }
}

/// One sample a second, on ``HealthFixture``'s clocks; findings with the index they appeared at.
struct Bench {
    let intervalMs: Int64 = 1000

    func sample(_ i: Int, _ value: Int64?) -> DetectorSample { HealthFixture.sample(i, value, intervalMs: intervalMs) }

    func run<D: Detector>(_ detector: inout D, _ values: [Int64?], context: (Int) -> SiteContext = { _ in SiteContext() }) -> [(Int, Finding)] {
        HealthFixture.run(&detector, values, intervalMs: intervalMs, context: context).map { ($0.index, $0.finding) }
    }

    /// Segments of (value, samples) without noise.
    static func steps(_ segments: [(Int64?, Int)]) -> [Int64?] { segments.flatMap { Array(repeating: $0.0, count: $0.1) } }

    /// `count` samples around `level` with ±`noise` jitter.
    static func level(_ level: Int64, _ count: Int, noise: Int64 = 0, _ jitter: inout Jitter) -> [Int64?] {
        (0..<count).map { _ in level + jitter.next(noise) }
    }
}

extension SiteContext {
    static let night = SiteContext(inShift: false, businessHours: false)
    static let day = SiteContext(inShift: true, businessHours: true)
    static let releasing = SiteContext(releaseOpen: true)
}

func collateralRule(_ kind: String, channel: String, unit: String, exponent: Int64) -> RuleIdentity {
    RuleIdentity(id: "\(kind)-test", version: 1, kind: kind, channel: channel, unit: unit, scaleExponent: exponent)
}

/// Feeds `normal` at sample 0, then `abnormal` held to `minMs`: the score is 0 when normal, at least
/// 0.5 when the condition begins, rises while it develops, and is 1 once the event is confirmed.
func scoreRisesToOne<D: Detector>(_ d: inout D, normal: Int64, abnormal: Int64, minMs: Int64, _ context: SiteContext) -> Bool {
    let bench = Bench()
    let seconds = Int(minMs / bench.intervalMs)
    _ = d.feed(bench.sample(0, normal), context)
    let quiet = d.score
    _ = d.feed(bench.sample(1, abnormal), context)
    let early = d.score
    _ = d.feed(bench.sample(1 + seconds / 2, abnormal), context)
    let developing = d.score
    let confirmed = d.feed(bench.sample(1 + seconds, abnormal), context)
    return quiet == 0 && early >= 0.5 && developing > early && developing < 1 && confirmed?.phase == .start && d.score == 1
}
