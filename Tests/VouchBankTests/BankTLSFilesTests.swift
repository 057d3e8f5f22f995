import Foundation
import NIOSSL
import Testing
@testable import VouchBank

/// `vouch-bank serve --tls-cert --tls-key [--client-ca]`: the server TLS configuration, and the errors that
/// stop `serve` at start, each naming its flag and file. Certificates are made by `openssl` for each test.
@Suite struct BankTLSFilesTests {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("vouch-bank-tls-\(UUID().uuidString)").path
    func path(_ name: String) -> String { directory + "/" + name }

    /// `name.pem` and `name.key`: a self-signed P-256 certificate and its key.
    func makeCertificate(_ name: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = [
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", path("\(name).key"), "-out", path("\(name).pem"),
            "-days", "2", "-subj", "/CN=\(name)", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        try #require(process.terminationStatus == 0)
    }

    func remove() { try? FileManager.default.removeItem(atPath: directory) }

    func refusal(_ files: BankTLSFiles) -> BankError? {
        do {
            _ = try files.configuration()
            Issue.record("expected \(files) to be refused")
            return nil
        } catch { return error }
    }

    @Test func certificateAndKeyServeHTTPSWithoutAskingClientsForCertificates() throws {
        try makeCertificate("server")
        defer { remove() }
        let configuration = try BankTLSFiles(certificate: path("server.pem"), privateKey: path("server.key")).configuration()
        #expect(configuration.certificateChain == [.certificate(try NIOSSLCertificate(file: path("server.pem"), format: .pem))])
        #expect(configuration.certificateVerification == .none, "no client certificate asked for without --client-ca")
    }

    @Test func clientCARequiresClientCertificatesSignedByIt() throws {
        try makeCertificate("server")
        try makeCertificate("gateways")
        defer { remove() }
        let configuration = try BankTLSFiles(certificate: path("server.pem"), privateKey: path("server.key"), clientCA: path("gateways.pem")).configuration()
        #expect(configuration.certificateVerification == .noHostnameVerification)
        #expect(configuration.trustRoots == .certificates(try NIOSSLCertificate.fromPEMFile(path("gateways.pem"))), "only --client-ca, not the system store")
    }

    @Test func aMissingCertificateFileIsNamed() throws {
        try makeCertificate("server")
        defer { remove() }
        let error = refusal(BankTLSFiles(certificate: path("nope.pem"), privateKey: path("server.key")))
        #expect(error?.code == "E_BANK_TLS")
        #expect(error?.message == "--tls-cert \(path("nope.pem")) does not exist")
    }

    @Test func aMissingKeyFileIsNamed() throws {
        try makeCertificate("server")
        defer { remove() }
        #expect(refusal(BankTLSFiles(certificate: path("server.pem"), privateKey: path("nope.key")))?.message == "--tls-key \(path("nope.key")) does not exist")
    }

    @Test func aKeyOfAnotherCertificateIsRefused() throws {
        try makeCertificate("server")
        try makeCertificate("other")
        defer { remove() }
        let error = refusal(BankTLSFiles(certificate: path("server.pem"), privateKey: path("other.key")))
        #expect(error?.message.hasPrefix("--tls-key \(path("other.key")) is not the private key of the first certificate in --tls-cert \(path("server.pem"))") == true)
    }

    @Test func aKeyFileAsCertificateIsRefused() throws {
        try makeCertificate("server")
        defer { remove() }
        let error = refusal(BankTLSFiles(certificate: path("server.key"), privateKey: path("server.key")))
        #expect(error?.message.hasPrefix("--tls-cert \(path("server.key")) ") == true, "\(error?.message ?? "")")
    }

    @Test func aClientCAThatIsNotPEMIsRefused() throws {
        try makeCertificate("server")
        defer { remove() }
        try Data("gateways: ask the bank's PKI team\n".utf8).write(to: URL(fileURLWithPath: path("ca.txt")))
        let error = refusal(BankTLSFiles(certificate: path("server.pem"), privateKey: path("server.key"), clientCA: path("ca.txt")))
        #expect(error?.message.hasPrefix("--client-ca \(path("ca.txt")) ") == true, "\(error?.message ?? "")")
    }

    @Test func aDirectoryIsRefused() throws {
        try makeCertificate("server")
        defer { remove() }
        let error = refusal(BankTLSFiles(certificate: path("server.pem"), privateKey: path("server.key"), clientCA: directory))
        #expect(error?.message == "--client-ca \(directory) is a directory, not a PEM file")
    }
}
