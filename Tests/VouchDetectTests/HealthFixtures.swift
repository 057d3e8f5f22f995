import Testing
import VouchCore
@testable import VouchDetect

/// Sample streams for the run-state, sensor-health and baseline tests.
enum HealthFixture {
    static let t0Mono: Int64 = 5_000_000
    /// Tuesday 2026-12-01 00:00 UTC.
    static let tuesdayMidnightWall: Int64 = SiteCalendar.dayNumber(year: 2026, month: 12, day: 1) * 86_400_000

    static func rule(_ kind: String, version: Int64 = 1, unit: String = "W", exponent: Int64 = 0) -> RuleIdentity {
        RuleIdentity(id: "\(kind)-1", version: version, kind: kind, channel: "meter.power", unit: unit, scaleExponent: exponent)
    }

    /// Sample `i` of a stream polled every `intervalMs` from Tuesday midnight (UTC).
    static func sample(_ i: Int, _ value: Int64?, intervalMs: Int64) -> DetectorSample {
        DetectorSample(monoMs: t0Mono + Int64(i) * intervalMs, wallMs: tuesdayMidnightWall + Int64(i) * intervalMs, value: value)
    }

    /// Feeds `values` (one per interval) with the context `context(i)`; the findings with the index they came at.
    static func run<D: Detector>(
        _ detector: inout D, _ values: [Int64?], intervalMs: Int64, firstIndex: Int = 0,
        context: (Int) -> SiteContext = { _ in SiteContext() }
    ) -> [(index: Int, finding: Finding)] {
        var out: [(index: Int, finding: Finding)] = []
        for (k, v) in values.enumerated() {
            let i = firstIndex + k
            if let f = detector.feed(sample(i, v, intervalMs: intervalMs), context(i)) { out.append((i, f)) }
        }
        return out
    }

    /// Two detectors fed the same samples give the same findings at the same samples (and `count` of them,
    /// so the sequence is not trivially empty).
    static func expectDeterministic<D: Detector>(
        _ make: () -> D, _ values: [Int64?], intervalMs: Int64, context: (Int) -> SiteContext = { _ in SiteContext() }, count: Int,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        var a = make(), b = make()
        let x = run(&a, values, intervalMs: intervalMs, context: context), y = run(&b, values, intervalMs: intervalMs, context: context)
        #expect(x.map(\.finding) == y.map(\.finding) && x.map(\.index) == y.map(\.index), sourceLocation: sourceLocation)
        #expect(x.count == count, sourceLocation: sourceLocation)
    }

    /// Within the 512-byte budget everywhere; exactly the documented figure on a 64-bit target (a 32-bit
    /// board keeps less).
    static func expectStateBytes(_ bytes: Int, documented: Int, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(bytes <= 512, sourceLocation: sourceLocation)
        #if arch(x86_64) || arch(arm64)
            #expect(bytes == documented, "documented in the type's comment", sourceLocation: sourceLocation)
        #endif
    }

    /// Deterministic jitter (a 64-bit LCG), so every run of a test sees the same noise.
    struct Jitter {
        var state: UInt64

        init(seed: UInt64) { state = seed }

        /// `value` moved by a uniform amount within ±`perMille`‰ of it.
        mutating func around(_ value: Int64, perMille: Int64) -> Int64 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            let unit = Int64((state >> 33) % 2001) - 1000  // -1000...1000
            return value + value * perMille * unit / 1_000_000
        }

        mutating func series(_ value: Int64, perMille: Int64, count: Int) -> [Int64?] {
            (0..<count).map { _ in around(value, perMille: perMille) }
        }
    }
}
