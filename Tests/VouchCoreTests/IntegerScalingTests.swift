import Testing
import VouchCore

@Suite struct IntegerScalingTests {
    // Inputs are exact in binary, so the expected result does not depend on representation error.
    static let cases: [(Double, Int, Int64)] = [
        (2.5, 0, 3), (-2.5, 0, -3), (0.5, 0, 1), (-0.5, 0, -1), (1.5, 0, 2), (2.4, 0, 2), (-2.4, 0, -2), (2.6, 0, 3),
        (0, 0, 0), (-0.0, 0, 0), (1234, 0, 1234),
        (1.25, 1, 13), (-1.25, 1, -13), (2.75, 1, 28), (-0.25, 1, -3), (1.24, 1, 12), (500, 1, 5000),
        (1.125, 2, 113), (-1.125, 2, -113), (0.125, 2, 13), (-0.375, 2, -38), (3.14159, 2, 314), (-3.14159, 2, -314),
        (1.0, 6, 1_000_000),
    ]

    @Test(arguments: cases)
    func roundsHalfAwayFromZero(_ value: Double, _ decimals: Int, _ expected: Int64) {
        #expect(IntegerScaling.scaled(value, decimals: decimals) == expected, "\(value) at \(decimals) decimals")
    }

    @Test(arguments: [Double.nan, .infinity, -.infinity, -Double.nan])
    func nonFiniteIsNil(_ value: Double) {
        #expect(IntegerScaling.scaled(value, decimals: 0) == nil)
        #expect(IntegerScaling.scaled(value, decimals: 2) == nil)
    }

    @Test func valuesBeyondInt64AreNil() {
        #expect(IntegerScaling.scaled(1e19, decimals: 0) == nil)
        #expect(IntegerScaling.scaled(-1e19, decimals: 0) == nil)
        #expect(IntegerScaling.scaled(Double.greatestFiniteMagnitude, decimals: 0) == nil)
        #expect(IntegerScaling.scaled(9.3e18, decimals: 0) == nil)
        // In range before scaling, out of range after.
        #expect(IntegerScaling.scaled(1e17, decimals: 2) == nil)
        #expect(IntegerScaling.scaled(-1e17, decimals: 3) == nil)
    }

    @Test func largeValuesInsideInt64Survive() {
        #expect(IntegerScaling.scaled(1e18, decimals: 0) == 1_000_000_000_000_000_000)
        #expect(IntegerScaling.scaled(-1e15, decimals: 3) == -1_000_000_000_000_000_000)
    }
}

/// The one integer-to-decimal text every display of a scaled value uses (CLI, events, replay).
@Suite struct IntegerScalingTextTests {
    @Test(arguments: [
        (Int64(23012), Int64(-2), "230.12"), (5, -1, "0.5"), (-5, -3, "-0.005"), (-8124, -1, "-812.4"), (0, -2, "0.00"), (12, 0, "12"), (12, 2, "1200"), (0, 3, "0"),
        (Int64.min, -1, "-922337203685477580.8"),
    ] as [(Int64, Int64, String)])
    func exactDecimalText(value: Int64, exponent: Int64, text: String) {
        #expect(IntegerScaling.text(value, exponent: exponent) == text)
    }
}
