import Testing
import VouchCore

/// `[evidence] heartbeat_interval`: how often the agent promises the bank a sign of life.
@Suite struct HeartbeatIntervalConfigTests {
    static let evidence = "summary_interval = \"60s\"\nbatch_interval = \"30s\""

    func with(_ line: String) -> String {
        ExampleConfig.replacing(Self.evidence, with: Self.evidence + "\n" + line)
    }

    @Test(arguments: [("\"60s\"", Duration.seconds(60)), ("\"10s\"", .seconds(10)), ("\"2m\"", .seconds(120)), ("\"1h\"", .seconds(3600)), ("\"10000ms\"", .seconds(10))])
    func parses(_ value: String, _ expected: Duration) throws {
        let config = try ConfigLoader.parse(with("heartbeat_interval = \(value)"), file: "vouch.toml")
        #expect(config.evidence.heartbeatInterval == expected)
        // The other evidence settings are untouched.
        #expect(config.evidence.summaryInterval == .seconds(60))
        #expect(config.evidence.batchInterval == .seconds(30))
    }

    @Test func defaultsToFiveMinutes() throws {
        let config = try ConfigLoader.parse(ExampleConfig.text, file: "vouch.toml")
        #expect(!ExampleConfig.text.contains("heartbeat_interval"))
        #expect(config.evidence.heartbeatInterval == .seconds(300))
        // Also without any [evidence] table.
        let start = try #require(ExampleConfig.text.range(of: "[evidence]\n"))
        let end = try #require(ExampleConfig.text.range(of: "batch_interval = \"30s\"\n"))
        let text = ExampleConfig.text.replacingCharacters(in: start.lowerBound..<end.upperBound, with: "")
        #expect(!text.contains("[evidence]"))
        #expect(try ConfigLoader.parse(text, file: "vouch.toml").evidence.heartbeatInterval == .seconds(300))
        #expect(EvidenceSettings(summaryInterval: .seconds(1), batchInterval: .seconds(1), maxBatchRecords: 1).heartbeatInterval == .seconds(300))
    }

    @Test(arguments: ["9s", "9999ms", "1s", "0s"])
    func belowTenSecondsIsAnErrorAtTheValue(_ value: String) throws {
        let text = with("heartbeat_interval = \"\(value)\"")
        let diagnostics = configDiagnostics(text, file: "site.toml")
        try #require(diagnostics.count == 1, "\(diagnostics.map(\.description))")
        let d = diagnostics[0]
        let at = position(of: "heartbeat_interval = ", in: text, plus: 21)
        #expect(d.position == at)
        #expect(d.file == "site.toml")
        #expect(d.message.contains("\"heartbeat_interval\" in [evidence]"), "\(d.message)")
        #expect(d.message.contains(value), "\(d.message)")
        #expect(d.message.contains("minimum"), "\(d.message)")
        #expect(d.description == "site.toml:\(at.line):\(at.column): error: \(d.message)")
    }

    @Test(arguments: ["\"often\"", "300", "\"5 min\""])
    func notADurationIsAnErrorAtTheValue(_ value: String) throws {
        let text = with("heartbeat_interval = \(value)")
        let diagnostics = configDiagnostics(text)
        try #require(diagnostics.count == 1, "\(diagnostics.map(\.description))")
        #expect(diagnostics[0].position == position(of: "heartbeat_interval = ", in: text, plus: 21))
        #expect(diagnostics[0].message.contains("duration"), "\(diagnostics[0].message)")
    }

    @Test func aMisspeltKeyIsNotSilentlyIgnored() throws {
        let text = with("heartbeat_intervall = \"60s\"")
        let diagnostics = configDiagnostics(text)
        try #require(diagnostics.count == 1, "\(diagnostics.map(\.description))")
        #expect(diagnostics[0].position.line == line(of: "heartbeat_intervall", in: text))
        #expect(diagnostics[0].message.contains("heartbeat_interval"), "\(diagnostics[0].message)")
    }

    @Test func sourceFileIsTheFileItWasReadFrom() throws {
        #expect(try ConfigLoader.parse(ExampleConfig.text, file: "/etc/vouch/site.toml").sourceFile == "/etc/vouch/site.toml")
    }
}
