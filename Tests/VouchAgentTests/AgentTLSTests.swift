import Foundation
import Testing
import VouchCore
import VouchEvidence
@testable import VouchAgent
@testable import VouchUplink

/// The agent makes its own HTTP client when `[bank]` names TLS files, refuses to start when they do not
/// load (E_AGENT_TLS), and shuts that client down; `vouch config check` runs the same full parse.
@Suite(.serialized) struct AgentTLSTests {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("vouch-agent-tls-\(UUID().uuidString)").path
    func path(_ name: String) -> String { directory + "/" + name }

    /// `name.pem` and `name.key` (mode 0600): a self-signed P-256 certificate and its key, by `openssl`.
    func makeCertificate(_ name: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = [
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", path("\(name).key"), "-out", path("\(name).pem"),
            "-days", "2", "-subj", "/CN=\(name)",
        ]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        try #require(process.terminationStatus == 0)
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path("\(name).key"))
    }

    func config(clientCert: String, clientKey: String) throws -> AgentConfig {
        let text = AgentFixtures.configText
            .replacingOccurrences(of: #"data_dir = "/var/lib/vouch""#, with: #"data_dir = "\#(directory)/data""#)
            .replacingOccurrences(
                of: #"url = "https://bank.example:8443""#,
                with: #"url = "https://bank.example:8443"\#nca_file = "\#(path("ca.pem"))"\#nclient_cert = "\#(clientCert)"\#nclient_key = "\#(clientKey)""#)
        let config = try AgentFixtures.config(text)
        #expect(config.bank.tls == BankTLSSettings(caFile: path("ca.pem"), clientCertificate: clientCert, clientKey: clientKey))
        _ = try DeviceKeyFile.create(path: config.device.keyFile, force: false)
        return config
    }

    @Test func withTLSFilesTheAgentsUplinkOwnsAClientAndShutsItDown() async throws {
        try makeCertificate("ca")
        try makeCertificate("client")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let config = try config(clientCert: path("client.pem"), clientKey: path("client.key"))
        try Agent.checkBankTLS(config.bank)
        let agent = try Agent.build(config: config, logger: AgentFixtures.quietLogger)
        #expect(agent.uplink.ownsHTTPClient)
        #expect(agent.uplink.settings.tls == config.bank.tls)
        await agent.uplink.shutdownHTTPClient()
        #expect(agent.uplink.isHTTPClientShutDown)
    }

    @Test func aClientKeyOfAnotherCertificateStopsTheStartWithETLS() throws {
        try makeCertificate("ca")
        try makeCertificate("client")
        try makeCertificate("other")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // Both files pass the loader's light check (PEM, mode 0600); only the full parse sees they do not match.
        let config = try config(clientCert: path("client.pem"), clientKey: path("other.key"))
        let checked = #expect(throws: AgentError.self) { try Agent.checkBankTLS(config.bank) }
        #expect(checked?.code == .tls)
        #expect(checked?.message.hasPrefix("[bank] client_key \(path("other.key")) is not the private key of the first certificate in client_cert \(path("client.pem"))") == true)
        let error = #expect(throws: AgentError.self) { _ = try Agent.build(config: config, logger: AgentFixtures.quietLogger) }
        #expect(error?.description.hasPrefix("E_AGENT_TLS: [bank] client_key") == true)
        #expect(!FileManager.default.fileExists(atPath: config.device.dataDir + "/outbox.sqlite"), "a start that fails on TLS records nothing")
    }
}
