import Foundation
import NIOSSL
import Testing
import VouchCore
@testable import VouchUplink

/// The client TLS configuration the uplink builds from `[bank]` TLS files: what "pinned" means in NIOSSL's
/// terms, and the full parse that the config loader's light PEM check leaves to the uplink.
@Suite struct UplinkTLSConfigurationTests {
    static func pki() throws -> (TempDir, TestPKI) {
        let dir = try TempDir()
        return (dir, try TestPKI(in: dir.path("pki")))
    }

    @Test func pinnedCAIsTheOnlyTrustRootAndTheHostnameIsChecked() throws {
        let (dir, pki) = try Self.pki()
        defer { dir.remove() }
        let configuration = try UplinkTLS.configuration(BankTLSSettings(caFile: pki.cert("ca")))
        #expect(configuration.certificateVerification == .fullVerification)
        #expect(configuration.trustRoots == .certificates(try NIOSSLCertificate.fromPEMFile(pki.cert("ca"))), "ca_file's certificates, not .default")
        #expect(configuration.additionalTrustRoots.isEmpty, "nothing added to them: the system trust store is not used")
        #expect(configuration.certificateChain.isEmpty && configuration.privateKey == nil, "no client certificate unless configured")
    }

    @Test func withoutCAFileTheSystemTrustStoreDecides() throws {
        let (dir, pki) = try Self.pki()
        defer { dir.remove() }
        let configuration = try UplinkTLS.configuration(BankTLSSettings(clientCertificate: pki.cert("client"), clientKey: pki.key("client")))
        #expect(configuration.trustRoots == nil || configuration.trustRoots == .default)
        #expect(configuration.certificateVerification == .fullVerification)
        #expect(configuration.certificateChain.count == 1)
        #expect(configuration.privateKey == .privateKey(try NIOSSLPrivateKey(file: pki.key("client"), format: .pem)))
    }

    @Test func aKeyThatIsNotTheCertificatesIsRefusedNamingBothFiles() throws {
        let (dir, pki) = try Self.pki()
        defer { dir.remove() }
        let error = #expect(throws: UplinkError.self) {
            try UplinkTLS.configuration(BankTLSSettings(caFile: pki.cert("ca"), clientCertificate: pki.cert("client"), clientKey: pki.key("rogueClient")))
        }
        #expect(error?.code == .tls)
        #expect(error?.message.hasPrefix("[bank] client_key \(pki.key("rogueClient")) is not the private key of the first certificate in client_cert \(pki.cert("client"))") == true)
    }

    @Test func aPEMBlockThatPassesTheLightCheckButIsNoCertificateIsRefused() throws {
        let (dir, _) = try Self.pki()
        defer { dir.remove() }
        // Base64 of a DER SEQUENCE holding one INTEGER: PEM and DER in form, but no certificate.
        let file = dir.path("not-a-cert.pem")
        try Data("-----BEGIN CERTIFICATE-----\nMAMCAQE=\n-----END CERTIFICATE-----\n".utf8).write(to: URL(fileURLWithPath: file))
        let error = #expect(throws: UplinkError.self) { try UplinkTLS.configuration(BankTLSSettings(caFile: file)) }
        #expect(error?.code == .tls)
        #expect(error?.message.hasPrefix("[bank] ca_file \(file) does not load as PEM CA certificate(s)") == true)
    }

    @Test func anUndecodableKeyIsRefusedNamingClientKey() throws {
        let (dir, pki) = try Self.pki()
        defer { dir.remove() }
        let file = dir.path("bad.key")
        try Data("-----BEGIN PRIVATE KEY-----\nMAMCAQE=\n-----END PRIVATE KEY-----\n".utf8).write(to: URL(fileURLWithPath: file))
        let error = #expect(throws: UplinkError.self) {
            try UplinkTLS.configuration(BankTLSSettings(clientCertificate: pki.cert("client"), clientKey: file))
        }
        #expect(error?.message.hasPrefix("[bank] client_key \(file) does not load as an unencrypted PEM private key") == true)
    }

    @Test func tlsErrorsAreTransientAndOnlyTLSLibraryErrorsAreExplained() {
        #expect(!UplinkError(.tls, "x").isPermanent)
        #expect(UplinkError(.tls, "x").description == "E_UPLINK_TLS: x")
        struct Other: Error {}
        #expect(UplinkTLS.explain(Other(), bankURL: "https://bank.example", tls: BankTLSSettings()) == nil)
        #expect(UplinkTLS.explain(NIOSSLError.uncleanShutdown, bankURL: "https://bank.example", tls: BankTLSSettings()) == nil, "a reset is E_UPLINK_UNREACHABLE")
        let hostname = UplinkTLS.explain(NIOSSLExtraError.failedToValidateHostname, bankURL: "https://bank.example:8443", tls: BankTLSSettings())
        #expect(hostname?.hasPrefix("the bank's certificate does not name bank.example, the host in [bank] url https://bank.example:8443") == true)
    }
}
