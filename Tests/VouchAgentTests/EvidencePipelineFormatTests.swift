import Testing
@testable import VouchAgent

struct EvidencePipelineFormatTests {
    @Test(arguments: [
        (Int64(12034), Int64(-1), "W", "1203.4 W"),
        (5, -2, "A", "0.05 A"),
        (-5, -2, "A", "-0.05 A"),
        (-12034, -1, "", "-1203.4"),
        (7, 0, "Wh", "7 Wh"),
        (7, 2, "Wh", "700 Wh"),
        (Int64.min, -1, "", "-922337203685477580.8"),
    ])
    func integerScaledValuesPrintExactly(value: Int64, exponent: Int64, unit: String, expected: String) {
        #expect(EvidencePipeline.format(value, exponent, unit) == expected)
    }
}
