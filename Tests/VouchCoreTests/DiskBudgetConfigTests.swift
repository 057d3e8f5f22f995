import Testing
import VouchCore

/// `[evidence] disk_budget`: the most the outbox may hold, as a size with a unit.
@Suite struct DiskBudgetConfigTests {
    static let evidence = "summary_interval = \"60s\"\nbatch_interval = \"30s\""

    func with(_ line: String) -> String {
        ExampleConfig.replacing(Self.evidence, with: Self.evidence + "\n" + line)
    }

    func diagnostics(_ line: String) -> [String] {
        do {
            _ = try ConfigLoader.parse(with(line), file: "vouch.toml")
            return []
        } catch { return error.diagnostics.map(\.description) }
    }

    var line: Int { (with("disk_budget = 0").split(separator: "\n", omittingEmptySubsequences: false).firstIndex { $0.hasPrefix("disk_budget") } ?? -1) + 1 }

    @Test(arguments: [
        ("\"64MB\"", Int64(64_000_000)), ("\"512MiB\"", 512 << 20), ("\"2GB\"", 2_000_000_000), ("\"1 GiB\"", 1 << 30),
        ("\"1500000\"", 1_500_000), ("\"3000kB\"", 3_000_000), ("\"8mb\"", 8_000_000),
    ])
    func parses(_ value: String, _ expected: Int64) throws {
        let config = try ConfigLoader.parse(with("disk_budget = \(value)"), file: "vouch.toml")
        #expect(config.evidence.diskBudgetBytes == expected)
    }

    @Test func defaultsToOneGigabyte() throws {
        #expect(try ConfigLoader.parse(with(""), file: "vouch.toml").evidence.diskBudgetBytes == 1_000_000_000)
    }

    @Test func belowTheMinimumIsAnErrorAtItsPosition() {
        #expect(diagnostics("disk_budget = \"500kB\"") == ["vouch.toml:\(line):15: error: \"disk_budget\" in [evidence] is 500kB, below the minimum of 1 MB"])
    }

    @Test(arguments: ["\"0.5GB\"", "\"64 megabytes\"", "\"-5MB\"", "\"MB\"", "\"99999999999999GB\""])
    func unreadableSizesSayWhatIsExpected(_ value: String) {
        let found = diagnostics("disk_budget = \(value)")
        #expect(found.count == 1)
        #expect(found.first?.contains("vouch.toml:\(line):15: error: \"disk_budget\" in [evidence] is") == true)
        #expect(found.first?.contains("not a size such as \"64MB\"") == true)
    }

    @Test func aNumberIsNotASize() {
        #expect(diagnostics("disk_budget = 64") == ["vouch.toml:\(line):15: error: \"disk_budget\" in [evidence] must be a size such as \"64MB\", \"512MiB\" or \"2GB\", found an integer"])
    }
}
