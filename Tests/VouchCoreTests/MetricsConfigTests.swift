import Testing
import VouchCore

/// `[metrics] listen`: off unless set; an IPv4 address and a port.
struct MetricsConfigTests {
    static let site = DetectConfigTests.site

    @Test func offUnlessSetAndReadWhenSet() throws {
        #expect(try ConfigLoader.parse(Self.site, file: "vouch.toml").metrics == nil)
        let on = try ConfigLoader.parse(Self.site + "[metrics]\nlisten = \"127.0.0.1:9464\"\n", file: "vouch.toml").metrics
        #expect(on == MetricsSettings(host: "127.0.0.1", port: 9464))
    }

    @Test(arguments: [
        ("listen = \"9464\"\n", "\"listen\" in [metrics] is \"9464\"; expected an IPv4 address and a port such as \"127.0.0.1:9464\" (127.0.0.1 keeps the metrics on the gateway)"),
        ("listen = \"localhost:9464\"\n", "\"listen\" in [metrics] is \"localhost:9464\"; expected an IPv4 address and a port such as \"127.0.0.1:9464\" (127.0.0.1 keeps the metrics on the gateway)"),
        ("listen = \"127.0.0.1:70000\"\n", "\"listen\" in [metrics] is \"127.0.0.1:70000\"; expected an IPv4 address and a port such as \"127.0.0.1:9464\" (127.0.0.1 keeps the metrics on the gateway)"),
        ("listen = 9464\n", "\"listen\" in [metrics] must be HOST:PORT such as \"127.0.0.1:9464\", found an integer"),
        ("lisen = \"127.0.0.1:9464\"\n", "unknown key \"lisen\" in [metrics]; did you mean \"listen\"?"),
    ] as [(String, String)])
    func badValuesAreReportedOnTheirLine(body: String, message: String) {
        let text = Self.site + "[metrics]\n" + body
        let d = configDiagnostics(text)
        #expect(d.map(\.message).first == message, "\(d.map(\.message))")
        #expect(d.first?.position.line == position(of: String(body.prefix(5)), in: text).line)
    }
}
