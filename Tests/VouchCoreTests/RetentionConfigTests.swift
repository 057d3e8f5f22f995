import Testing
import VouchCore

/// `[evidence] retention`: how long delivered batches stay in the outbox; durations may be in days.
@Suite struct RetentionConfigTests {
    static let evidence = "summary_interval = \"60s\"\nbatch_interval = \"30s\""

    func with(_ line: String) -> String {
        ExampleConfig.replacing(Self.evidence, with: Self.evidence + "\n" + line)
    }

    @Test(arguments: [("\"30d\"", Duration.seconds(30 * 86_400)), ("\"1d\"", .seconds(86_400)), ("\"1h\"", .seconds(3_600)), ("\"90d\"", .seconds(90 * 86_400))])
    func parses(_ value: String, _ expected: Duration) throws {
        let config = try ConfigLoader.parse(with("retention = \(value)"), file: "vouch.toml")
        #expect(config.evidence.retention == expected)
    }

    @Test func defaultsToThirtyDays() throws {
        let config = try ConfigLoader.parse(ExampleConfig.text, file: "vouch.toml")
        #expect(config.evidence.retention == .seconds(30 * 86_400))
    }

    @Test func underAnHourIsAnErrorAtTheValue() throws {
        let text = with("retention = \"59m\"")
        let error = #expect(throws: ConfigError.self) { try ConfigLoader.parse(text, file: "vouch.toml") }
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        let line = try #require(lines.firstIndex { $0.hasPrefix("retention") }) + 1
        #expect(error?.diagnostics.map(\.description) == ["vouch.toml:\(line):13: error: \"retention\" in [evidence] is 59m, shorter than the minimum of 1h"])
    }

    @Test func aDayCountThatOverflowsIsRefused() throws {
        #expect(throws: ConfigError.self) { try ConfigLoader.parse(with("retention = \"999999999999999999d\""), file: "vouch.toml") }
    }
}
