import Foundation
import Testing
import VouchEvidence
@testable import VouchCore

@Suite struct ReceiptKeyConfigTests {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("vouch-bankkey-\(UUID().uuidString)")

    func config(receiptKey path: String) -> String {
        ExampleConfig.replacing(#"url = "https://bank.example:8443""#, with: "url = \"https://bank.example:8443\"\nreceipt_key = \"\(path)\"")
    }

    @Test func bankKeyFileAsVouchBankKeyPrintsItIsRead() throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let key = SigningKey.generate()
        let file = directory.appendingPathComponent("bank.jwk").path
        FileManager.default.createFile(atPath: file, contents: Data(CanonicalJSON.encode(["kid": .string(key.kid), "jwk": key.publicJWK.json])))
        let parsed = try ConfigLoader.parse(config(receiptKey: file), file: "v.toml")
        #expect(parsed.bank.receiptKey == key.publicJWK)
    }

    @Test func missingBankKeyFileIsOneDiagnosticAtTheValue() {
        let text = config(receiptKey: "/nonexistent/bank.jwk")
        let diagnostics = configDiagnostics(text)
        #expect(diagnostics.count == 1)
        #expect(diagnostics.first?.position == position(of: "\"/nonexistent/bank.jwk\"", in: text))
        #expect(diagnostics.first?.message.contains("does not exist") == true)
    }

    @Test func aFileThatIsNotAKeyIsRefused() throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("bank.jwk").path
        FileManager.default.createFile(atPath: file, contents: Data(#"{"kty":"RSA","n":"x","e":"AQAB"}"#.utf8))
        let diagnostics = configDiagnostics(config(receiptKey: file))
        #expect(diagnostics.count == 1)
        #expect(diagnostics.first?.message.contains("is not a P-256 public key") == true)
    }
}
