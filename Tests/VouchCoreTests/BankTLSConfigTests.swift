import Foundation
import Testing
@testable import VouchCore

/// `[bank] ca_file`, `client_cert`, `client_key`: each problem is one diagnostic at the value, file:line:column,
/// saying what was expected. The files are real PEM files made by `openssl` for each test.
@Suite struct BankTLSConfigTests {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("vouch-tls-config-\(UUID().uuidString)").path
    static let url = #"url = "https://bank.example:8443""#

    var caFile: String { directory + "/ca.pem" }
    var clientCert: String { directory + "/client.pem" }
    var clientKey: String { directory + "/client.key" }

    /// A self-signed CA and a client certificate with its key (mode 0600), as `openssl` writes them.
    func makeFiles() throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try Self.openssl([
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", directory + "/ca.key", "-out", caFile, "-days", "2",
            "-subj", "/CN=Test CA",
        ])
        try Self.openssl([
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", clientKey, "-out", clientCert, "-days", "2",
            "-subj", "/CN=acme-press-1",
        ])
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: clientKey)
    }

    func remove() { try? FileManager.default.removeItem(atPath: directory) }

    func write(_ name: String, _ text: String, mode: Int = 0o600) throws -> String {
        let path = directory + "/" + name
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: path)
        return path
    }

    /// The example config with `lines` added to [bank] (and its url replaced by `url`).
    func config(url: String = BankTLSConfigTests.url, _ lines: String...) -> String {
        ExampleConfig.replacing(Self.url, with: ([url] + lines).joined(separator: "\n"))
    }

    /// The single diagnostic of `text`, which must sit at the value of `key`.
    func onlyDiagnostic(_ text: String, at needle: String, sourceLocation: SourceLocation = #_sourceLocation) -> ConfigDiagnostic? {
        let diagnostics = configDiagnostics(text, sourceLocation: sourceLocation)
        #expect(diagnostics.count == 1, "\(diagnostics)", sourceLocation: sourceLocation)
        #expect(diagnostics.first?.position == position(of: needle, in: text), sourceLocation: sourceLocation)
        return diagnostics.first
    }

    static func openssl(_ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "openssl \(arguments.joined(separator: " "))")
    }

    // MARK: valid

    @Test func allThreeKeysAreRead() throws {
        try makeFiles()
        defer { remove() }
        let parsed = try ConfigLoader.parse(
            config(#"ca_file = "\#(caFile)""#, #"client_cert = "\#(clientCert)""#, #"client_key = "\#(clientKey)""#), file: "vouch.toml")
        #expect(parsed.bank.tls == BankTLSSettings(caFile: caFile, clientCertificate: clientCert, clientKey: clientKey))
        #expect(!parsed.bank.tls.isEmpty)
    }

    @Test func noKeysMeanNoTLSFiles() throws {
        let parsed = try ConfigLoader.parse(ExampleConfig.text, file: "vouch.toml")
        #expect(parsed.bank.tls == BankTLSSettings())
        #expect(parsed.bank.tls.isEmpty)
    }

    @Test func aKeyReadableByItsGroupOnlyIsAccepted() throws {
        try makeFiles()
        defer { remove() }
        try FileManager.default.setAttributes([.posixPermissions: 0o640], ofItemAtPath: clientKey)
        let parsed = try ConfigLoader.parse(config(#"client_cert = "\#(clientCert)""#, #"client_key = "\#(clientKey)""#), file: "vouch.toml")
        #expect(parsed.bank.tls.clientKey == clientKey)
        #expect(parsed.bank.tls.caFile == nil)
    }

    @Test func aCABundleWithSeveralCertificatesIsAccepted() throws {
        try makeFiles()
        defer { remove() }
        let bundle = try write("bundle.pem", "# two CAs\n" + String(contentsOfFile: caFile, encoding: .utf8) + String(contentsOfFile: clientCert, encoding: .utf8))
        let parsed = try ConfigLoader.parse(config(#"ca_file = "\#(bundle)""#), file: "vouch.toml")
        #expect(parsed.bank.tls.caFile == bundle)
    }

    // MARK: missing, unreadable, not PEM

    @Test func missingCAFileIsOneDiagnosticAtTheValue() {
        let text = config(#"ca_file = "/nonexistent/ca.pem""#)
        let d = onlyDiagnostic(text, at: #""/nonexistent/ca.pem""#)
        let row = line(of: "ca_file", in: text)
        #expect(d?.description == #"vouch.toml:\#(row):11: error: "ca_file" in [bank]: /nonexistent/ca.pem does not exist"#)
    }

    @Test func missingClientCertAndKeyAreEachReported() throws {
        let text = config(#"client_cert = "/nonexistent/client.pem""#, #"client_key = "/nonexistent/client.key""#)
        let diagnostics = configDiagnostics(text)
        #expect(diagnostics.map(\.message) == [
            #""client_cert" in [bank]: /nonexistent/client.pem does not exist"#,
            #""client_key" in [bank]: /nonexistent/client.key does not exist"#,
        ])
        #expect(diagnostics.map(\.position) == [position(of: #""/nonexistent/client.pem""#, in: text), position(of: #""/nonexistent/client.key""#, in: text)])
    }

    @Test func aDirectoryIsNotAPEMFile() throws {
        try makeFiles()
        defer { remove() }
        let d = onlyDiagnostic(config(#"ca_file = "\#(directory)""#), at: #""\#(directory)""#)
        #expect(d?.message == #""ca_file" in [bank]: \#(directory) is a directory, not a PEM file"#)
    }

    @Test func aTextFileThatIsNotPEMIsRefused() throws {
        try makeFiles()
        defer { remove() }
        let file = try write("notes.txt", "the bank's CA is in the safe\n", mode: 0o644)
        let d = onlyDiagnostic(config(#"ca_file = "\#(file)""#), at: #""\#(file)""#)
        #expect(d?.message == #""ca_file" in [bank]: \#(file) is not a PEM certificate file: expected at least one "-----BEGIN CERTIFICATE-----" block"#)
    }

    @Test func aDERFileIsRefusedWithTheConversion() throws {
        try makeFiles()
        defer { remove() }
        let der = directory + "/ca.der"
        try Self.openssl(["x509", "-in", caFile, "-outform", "der", "-out", der])
        let d = onlyDiagnostic(config(#"ca_file = "\#(der)""#), at: #""\#(der)""#)
        #expect(d?.message.contains("is not a PEM certificate file (not text: a DER file? convert it with `openssl x509 -inform der") == true, "\(d?.message ?? "")")
    }

    @Test func aCertificateBlockWhoseBase64IsBrokenIsRefusedWithItsLine() throws {
        try makeFiles()
        defer { remove() }
        let file = try write("broken.pem", "\n-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n", mode: 0o644)
        let d = onlyDiagnostic(config(#"ca_file = "\#(file)""#), at: #""\#(file)""#)
        #expect(d?.message == #""ca_file" in [bank]: \#(file) has a CERTIFICATE block at line 2 whose base64 does not decode to DER"#)
    }

    @Test func aBlockWithoutItsEndLineIsRefused() throws {
        try makeFiles()
        defer { remove() }
        let cut = try String(contentsOfFile: clientCert, encoding: .utf8).components(separatedBy: "-----END").first ?? ""
        let file = try write("cut.pem", cut, mode: 0o644)
        let d = onlyDiagnostic(config(#"client_cert = "\#(file)""#, #"client_key = "\#(clientKey)""#), at: #""\#(file)""#)
        #expect(d?.message == #""client_cert" in [bank]: \#(file) has a CERTIFICATE block at line 1 without its END line"#)
    }

    @Test func aPrivateKeyAsCAFileIsCalledWhatItIs() throws {
        try makeFiles()
        defer { remove() }
        let d = onlyDiagnostic(config(#"ca_file = "\#(clientKey)""#), at: #""\#(clientKey)""#)
        #expect(d?.message == #""ca_file" in [bank]: \#(clientKey) holds a private key, not a certificate (are client_cert and client_key swapped?)"#)
    }

    @Test func swappedClientCertAndKeyAreBothReported() throws {
        try makeFiles()
        defer { remove() }
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: clientCert)
        let text = config(#"client_cert = "\#(clientKey)""#, #"client_key = "\#(clientCert)""#)
        #expect(configDiagnostics(text).map(\.message) == [
            #""client_cert" in [bank]: \#(clientKey) holds a private key, not a certificate (are client_cert and client_key swapped?)"#,
            #""client_key" in [bank]: \#(clientCert) holds a certificate, not a private key (are client_cert and client_key swapped?)"#,
        ])
    }

    @Test func anEncryptedKeyIsRefused() throws {
        try makeFiles()
        defer { remove() }
        let encrypted = directory + "/encrypted.key"
        try Self.openssl(["pkcs8", "-topk8", "-in", clientKey, "-out", encrypted, "-passout", "pass:secret"])
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: encrypted)
        let d = onlyDiagnostic(config(#"client_cert = "\#(clientCert)""#, #"client_key = "\#(encrypted)""#), at: #""\#(encrypted)""#)
        #expect(d?.message.hasPrefix(#""client_key" in [bank]: \#(encrypted) holds an encrypted private key; the agent has no passphrase"#) == true)
    }

    @Test func aPathThatIsNotAStringSaysWhatIsExpected() {
        let text = config("ca_file = 42")
        let d = onlyDiagnostic(text, at: "42")
        #expect(d?.message == #""ca_file" in [bank] must be the path of a PEM file with the CA certificate(s) that sign the bank's certificate, found an integer"#)
    }

    // MARK: the key's mode

    @Test(arguments: [0o644, 0o604, 0o602, 0o666])
    func aKeyAccessibleByOthersIsRefusedWithTheFix(_ mode: Int) throws {
        try makeFiles()
        defer { remove() }
        try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: clientKey)
        let d = onlyDiagnostic(config(#"client_cert = "\#(clientCert)""#, #"client_key = "\#(clientKey)""#), at: #""\#(clientKey)""#)
        #expect(d?.message == #""client_key" in [bank]: \#(clientKey) is accessible by others (mode \#(String(mode, radix: 8))): run `chmod 600 \#(clientKey)` (or 640 for a group that needs it)"#)
    }

    // MARK: both or neither, https only

    @Test func clientCertWithoutClientKeyIsRefused() throws {
        try makeFiles()
        defer { remove() }
        let d = onlyDiagnostic(config(#"client_cert = "\#(clientCert)""#), at: #""\#(clientCert)""#)
        #expect(d?.message == #""client_cert" in [bank] needs "client_key" too: the PEM private key of that certificate"#)
    }

    @Test func clientKeyWithoutClientCertIsRefused() throws {
        try makeFiles()
        defer { remove() }
        let d = onlyDiagnostic(config(#"client_key = "\#(clientKey)""#), at: #""\#(clientKey)""#)
        #expect(d?.message == #""client_key" in [bank] needs "client_cert" too: the PEM certificate that goes with this key"#)
    }

    @Test func caFileWithAnHTTPURLIsRefused() throws {
        try makeFiles()
        defer { remove() }
        let text = config(url: #"url = "http://bank.example:8080""#, #"ca_file = "\#(caFile)""#)
        let d = onlyDiagnostic(text, at: #""\#(caFile)""#)
        #expect(d?.message == #""ca_file" in [bank] needs an https:// url, but [bank] url is "http://bank.example:8080": plain HTTP has no certificate to pin"#)
    }

    @Test func clientCertWithAnHTTPURLIsRefused() throws {
        try makeFiles()
        defer { remove() }
        let text = config(url: #"url = "http://bank.example:8080""#, #"client_cert = "\#(clientCert)""#, #"client_key = "\#(clientKey)""#)
        let d = onlyDiagnostic(text, at: #""\#(clientCert)""#)
        #expect(d?.message == #""client_cert" in [bank] needs an https:// url, but [bank] url is "http://bank.example:8080": a client certificate is only presented over TLS"#)
    }

    @Test func everyProblemIsReportedInOnePass() throws {
        let text = config(url: #"url = "http://bank.example:8080""#, #"ca_file = "/nonexistent/ca.pem""#, #"client_key = "/nonexistent/client.key""#)
        let messages = configDiagnostics(text).map(\.message)
        #expect(messages.count == 4)
        #expect(Set(messages) == [
            #""ca_file" in [bank] needs an https:// url, but [bank] url is "http://bank.example:8080": plain HTTP has no certificate to pin"#,
            #""ca_file" in [bank]: /nonexistent/ca.pem does not exist"#,
            #""client_key" in [bank]: /nonexistent/client.key does not exist"#,
            #""client_key" in [bank] needs "client_cert" too: the PEM certificate that goes with this key"#,
        ])
    }

    // MARK: spelling

    @Test(arguments: [("ca_fiel", "ca_file"), ("client_crt", "client_cert"), ("clientkey", "client_key"), ("cafile", "ca_file")])
    func aMisspeltKeyGetsASuggestion(_ typo: String, _ meant: String) {
        let text = config(#"\#(typo) = "/etc/vouch/x.pem""#)
        let d = onlyDiagnostic(text, at: typo)
        #expect(d?.message == #"unknown key "\#(typo)" in [bank]; did you mean "\#(meant)"?"#)
    }
}
