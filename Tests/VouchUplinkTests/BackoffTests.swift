import Testing
import VouchUplink

/// SplitMix64: a small seeded generator, so every run draws the same delays.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite("Backoff")
struct BackoffTests {
    @Test("the ceiling doubles from base and stops at cap")
    func ceilingDoublesAndCaps() {
        let backoff = Backoff()  // 1 s … 60 s
        #expect(backoff.base == .seconds(1))
        #expect(backoff.cap == .seconds(60))
        #expect((1...8).map { backoff.ceiling(afterFailures: $0) } == [1, 2, 4, 8, 16, 32, 60, 60].map { Duration.seconds($0) })
        #expect(backoff.ceiling(afterFailures: 1_000) == .seconds(60))
        #expect(backoff.ceiling(afterFailures: Int.max) == .seconds(60))
        #expect(backoff.ceiling(afterFailures: 0) == .seconds(1), "no failure yet: the base")

        let quick = Backoff(base: .milliseconds(250), cap: .seconds(5))
        #expect((1...7).map { quick.ceiling(afterFailures: $0) } == [250, 500, 1_000, 2_000, 4_000, 5_000, 5_000].map { Duration.milliseconds($0) })

        let big = Backoff(base: .seconds(1), cap: .seconds(Int64(1) << 40))
        #expect(big.ceiling(afterFailures: 31) == .seconds(1 << 30))
        #expect(big.ceiling(afterFailures: 64) == .seconds(1 << 30), "the exponent stops growing, no overflow")
    }

    @Test("delays are drawn uniformly in [0, ceiling]: full jitter", arguments: [1, 2, 3, 5, 7, 12])
    func fullJitter(failures: Int) {
        let backoff = Backoff()
        let ceiling = backoff.ceiling(afterFailures: failures)
        var rng = SeededGenerator(seed: 0x5EED_0000 + UInt64(failures))
        let delays = (0..<2_000).map { _ in backoff.delay(afterFailures: failures, using: &rng) }
        #expect(delays.allSatisfy { $0 >= .zero && $0 <= ceiling })
        #expect(Set(delays).count > 100, "not constant")
        // Full jitter, not "ceiling/2 + jitter": the draws cover the whole range.
        #expect(delays.contains { $0 < ceiling / 10 })
        #expect(delays.contains { $0 > ceiling * 9 / 10 })
        let meanMs = delays.map { Double($0.components.seconds) * 1000 + Double($0.components.attoseconds) / 1e15 }.reduce(0, +) / Double(delays.count)
        let ceilingMs = Double(ceiling.components.seconds) * 1000
        #expect(abs(meanMs - ceilingMs / 2) < ceilingMs * 0.05, "mean \(meanMs) ms for ceiling \(ceilingMs) ms")
    }

    @Test("the same seed draws the same delays")
    func deterministicWithSeed() {
        let backoff = Backoff(base: .milliseconds(100), cap: .seconds(10))
        var a = SeededGenerator(seed: 42)
        var b = SeededGenerator(seed: 42)
        let first = (1...50).map { backoff.delay(afterFailures: $0 % 9 + 1, using: &a) }
        let second = (1...50).map { backoff.delay(afterFailures: $0 % 9 + 1, using: &b) }
        #expect(first == second)
        var c = SeededGenerator(seed: 43)
        #expect((1...50).map { backoff.delay(afterFailures: $0 % 9 + 1, using: &c) } != first)
    }

    @Test("the unseeded delay stays within the ceiling too")
    func systemRandom() {
        let backoff = Backoff(base: .milliseconds(200), cap: .seconds(3))
        for n in 1...10 {
            let d = backoff.delay(afterFailures: n)
            #expect(d >= .zero && d <= backoff.ceiling(afterFailures: n))
        }
    }

    /// The contract is `0 … min(cap, base × 2^(n−1))`; a ceiling below one millisecond must not
    /// produce a delay above it.
    @Test("a sub-millisecond ceiling is respected")
    func subMillisecondCeiling() {
        let backoff = Backoff(base: .microseconds(500), cap: .seconds(1))
        let ceiling = backoff.ceiling(afterFailures: 1)
        #expect(ceiling == .microseconds(500))
        var rng = SeededGenerator(seed: 7)
        let delays = (0..<200).map { _ in backoff.delay(afterFailures: 1, using: &rng) }
        #expect(delays.allSatisfy { $0 >= .zero && $0 <= ceiling }, "max drawn \(delays.max() ?? .zero)")
    }
}
