import Foundation
import Logging
import ServiceLifecycle
import Testing
import VouchBank
import VouchCore
import VouchEvidence
import VouchStore
@testable import VouchUplink

/// The uplink over HTTPS to the real bank (`buildBankApplication` with `--tls-cert`/`--tls-key`/`--client-ca`
/// as `vouch-bank serve` builds it) on 127.0.0.1, with certificates made by `openssl` for each test: the
/// pinned CA, a certificate from an unrelated CA, a wrong name, and client certificates for mTLS.
@Suite("Uplink over HTTPS with a pinned CA and mTLS", .serialized)
struct UplinkTLSTests {
    /// A bank, its PKI and a gateway that pins `tls`, run against the bank serving `bankTLS`; the gateway's
    /// own HTTP client is shut down afterwards whatever happens.
    static func run(
        bankTLS: (TestPKI) -> BankTLSFiles, gatewayTLS: (TestPKI) -> BankTLSSettings, enroll: Bool = true,
        _ body: (Bank, Gateway, TestPKI, String) async throws -> Void
    ) async throws {
        let dir = try TempDir()
        defer { dir.remove() }
        let pki = try TestPKI(in: dir.path("pki"))
        let bank = try Bank(dir: dir)
        try await bank.serving(tls: bankTLS(pki)) { url in
            var gateway = try Gateway(dir: dir, bankURL: url, maxBatchRecords: 2, requestTimeout: .seconds(5), bankKey: bank.key.publicJWK)
            if enroll { try bank.store.enroll(gateway.enrollment) }
            try gateway.useOwnHTTPClient(tls: gatewayTLS(pki))
            do {
                try await body(bank, gateway, pki, url)
            } catch {
                await gateway.uplink.shutdownHTTPClient()
                throw error
            }
            await gateway.uplink.shutdownHTTPClient()
        }
    }

    /// What a TLS refusal must leave: code E_UPLINK_TLS, the batch sealed and undelivered, nothing parked,
    /// no quarantine event, a retry after the ordinary backoff, nothing at the bank.
    static func expectRefusedAndKept(_ bank: Bank, _ gateway: Gateway, messageContains: [String], sourceLocation: SourceLocation = #_sourceLocation) async throws
        -> UplinkError
    {
        try gateway.outbox.append(Fixture.summaries(3))
        let sealed = try gateway.uplink.sealPending()
        #expect(sealed.map(\.bseq) == [1, 2], sourceLocation: sourceLocation)
        let failure = try #require(await gateway.uplink.deliver().failure, sourceLocation: sourceLocation)
        #expect(failure.bseq == 1, sourceLocation: sourceLocation)
        #expect(failure.error.code == .tls, "\(failure.error)", sourceLocation: sourceLocation)
        #expect(failure.error.code.rawValue == "E_UPLINK_TLS", sourceLocation: sourceLocation)
        #expect(!failure.error.isPermanent, sourceLocation: sourceLocation)
        for text in messageContains {
            #expect(failure.error.message.contains(text), "\(failure.error.message) lacks \(text)", sourceLocation: sourceLocation)
        }

        // A whole round, as the service runs it: backoff (at most the 1 s of the first failure), never the park.
        var failures = 0
        let before = ContinuousClock.now
        let retryAt = try #require(await gateway.uplink.round(failures: &failures), sourceLocation: sourceLocation)
        #expect(failures == 1, sourceLocation: sourceLocation)
        #expect(retryAt - before <= .seconds(2), "retried after the backoff, not parked for an hour", sourceLocation: sourceLocation)
        #expect(try gateway.outbox.quarantined().isEmpty, "a TLS problem never quarantines a batch", sourceLocation: sourceLocation)
        #expect(try gateway.outbox.undelivered() == sealed, "both batches still sealed, byte for byte, undelivered", sourceLocation: sourceLocation)
        #expect(try BankRefusalTests.quarantineEvents(gateway).isEmpty, "no uplink-quarantine event recorded", sourceLocation: sourceLocation)
        #expect(try bank.store.batches(device: gateway.deviceID).isEmpty, "the bank received nothing", sourceLocation: sourceLocation)
        return failure.error
    }

    static func pinned(_ pki: TestPKI) -> BankTLSSettings { BankTLSSettings(caFile: pki.cert("ca")) }

    @Test("(a) pinned CA: batches delivered over HTTPS, receipts verified and stored, by IP and by DNS name")
    func pinnedCADelivers() async throws {
        try await Self.run(bankTLS: { BankTLSFiles(certificate: $0.cert("server"), privateKey: $0.key("server")) }, gatewayTLS: Self.pinned) {
            bank, gateway, pki, url in
            #expect(url.hasPrefix("https://127.0.0.1:"))
            try gateway.outbox.append(Fixture.summaries(3))
            let sealed = try gateway.uplink.sealPending()
            #expect(sealed.map(\.bseq) == [1, 2])
            #expect(await gateway.uplink.sendPending() == .delivered(count: 2))
            try UplinkDeliveryTests.expectBankHolds(bank, gateway, sealed, records: 3)
            #expect(try gateway.outbox.undelivered().isEmpty)

            // The receipts the outbox stored are the bank's, signed by its key: the next batch names the last one.
            let (_, _, lastReceiptHash) = try UplinkDeliveryTests.bankReceipt(bank, for: sealed[1])
            try gateway.outbox.append(Fixture.summaries(1, from: 4))
            let next = try gateway.uplink.sealPending()
            #expect(try Fixture.payload(try #require(next.first).token).receipt == lastReceiptHash)

            // The same bank by its DNS name (the certificate's DNS:localhost).
            let port = try #require(URL(string: url)?.port)
            var byName = gateway.withSettings { $0.bankURL = "https://localhost:\(port)" }
            try byName.useOwnHTTPClient(tls: Self.pinned(pki))
            let outcome = await byName.uplink.sendPending()
            await byName.uplink.shutdownHTTPClient()
            #expect(outcome == .delivered(count: 1))
            try UplinkDeliveryTests.expectBankHolds(bank, gateway, sealed + next, records: 4)
        }
    }

    @Test("(b) the bank's certificate from another CA: E_UPLINK_TLS naming ca_file; sealed, undelivered, not quarantined")
    func untrustedCertificateIsRefused() async throws {
        try await Self.run(bankTLS: { BankTLSFiles(certificate: $0.cert("otherServer"), privateKey: $0.key("otherServer")) }, gatewayTLS: Self.pinned) {
            bank, gateway, pki, _ in
            let error = try await Self.expectRefusedAndKept(bank, gateway, messageContains: ["is not signed by a CA in [bank] ca_file \(pki.cert("ca"))", "CERTIFICATE_VERIFY_FAILED"])
            #expect(error.description.hasPrefix("E_UPLINK_TLS: batch 1: TLS with the bank failed:"))
        }
    }

    @Test("(c) hostname mismatch: a certificate from the pinned CA for wrong.example is refused for 127.0.0.1")
    func hostnameMismatchIsRefused() async throws {
        try await Self.run(bankTLS: { BankTLSFiles(certificate: $0.cert("wrongName"), privateKey: $0.key("wrongName")) }, gatewayTLS: Self.pinned) {
            bank, gateway, _, url in
            _ = try await Self.expectRefusedAndKept(bank, gateway, messageContains: ["does not name 127.0.0.1", "[bank] url \(url)", "subjectAltName"])
        }
    }

    @Test("(d) the bank requires client certificates: without one the gateway is refused")
    func mtlsWithoutClientCertificateIsRefused() async throws {
        try await Self.run(
            bankTLS: { BankTLSFiles(certificate: $0.cert("server"), privateKey: $0.key("server"), clientCA: $0.cert("clientCA")) }, gatewayTLS: Self.pinned
        ) { bank, gateway, _, _ in
            _ = try await Self.expectRefusedAndKept(bank, gateway, messageContains: ["requires a client certificate", "set [bank] client_cert and client_key"])
        }
    }

    @Test("(d) the bank requires client certificates: with one signed by its client CA the batches are delivered")
    func mtlsWithClientCertificateDelivers() async throws {
        try await Self.run(
            bankTLS: { BankTLSFiles(certificate: $0.cert("server"), privateKey: $0.key("server"), clientCA: $0.cert("clientCA")) },
            gatewayTLS: { BankTLSSettings(caFile: $0.cert("ca"), clientCertificate: $0.cert("client"), clientKey: $0.key("client")) }
        ) { bank, gateway, _, _ in
            try gateway.outbox.append(Fixture.summaries(3))
            let sealed = try gateway.uplink.sealPending()
            #expect(await gateway.uplink.sendPending() == .delivered(count: 2))
            try UplinkDeliveryTests.expectBankHolds(bank, gateway, sealed, records: 3)
            #expect(try gateway.outbox.status().undeliveredBatches == 0)
        }
    }

    @Test("(d) a client certificate from the wrong CA is refused, naming client_cert")
    func mtlsWithClientCertificateFromTheWrongCAIsRefused() async throws {
        try await Self.run(
            bankTLS: { BankTLSFiles(certificate: $0.cert("server"), privateKey: $0.key("server"), clientCA: $0.cert("clientCA")) },
            gatewayTLS: { BankTLSSettings(caFile: $0.cert("ca"), clientCertificate: $0.cert("rogueClient"), clientKey: $0.key("rogueClient")) }
        ) { bank, gateway, pki, _ in
            _ = try await Self.expectRefusedAndKept(bank, gateway, messageContains: ["refused the client certificate in [bank] client_cert \(pki.cert("rogueClient"))"])
        }
    }

    @Test("a TLS failure is retried: once the bank serves a certificate from the pinned CA, the same sealed batches go out")
    func deliveredAfterTheBankCertificateIsFixed() async throws {
        let dir = try TempDir()
        defer { dir.remove() }
        let pki = try TestPKI(in: dir.path("pki"))
        let bank = try Bank(dir: dir)
        let port = try Net.freePort()
        var gateway = try Gateway(dir: dir, bankURL: "https://127.0.0.1:\(port)", maxBatchRecords: 2, requestTimeout: .seconds(5), bankKey: bank.key.publicJWK)
        try bank.store.enroll(gateway.enrollment)
        try gateway.useOwnHTTPClient(tls: Self.pinned(pki))
        try gateway.outbox.append(Fixture.summaries(3))
        let sealed = try gateway.uplink.sealPending()

        var wrong = BankServerSettings()
        wrong.tls = try BankTLSFiles(certificate: pki.cert("otherServer"), privateKey: pki.key("otherServer")).configuration()
        let first = try await bank.serving(port: port, settings: wrong) { await gateway.uplink.deliver() }
        #expect(first.failure?.error.code == .tls)

        var right = BankServerSettings()
        right.tls = try BankTLSFiles(certificate: pki.cert("server"), privateKey: pki.key("server")).configuration()
        let second = try await bank.serving(port: port, settings: right) { await gateway.uplink.deliver() }
        await gateway.uplink.shutdownHTTPClient()
        #expect(second.failure == nil && second.delivered == 2)
        try UplinkDeliveryTests.expectBankHolds(bank, gateway, sealed, records: 3)
    }

    @Test("the uplink service shuts its own HTTP client down when it stops, after its last delivery")
    func ownClientIsShutDownWhenTheServiceStops() async throws {
        try await Self.run(bankTLS: { BankTLSFiles(certificate: $0.cert("server"), privateKey: $0.key("server")) }, gatewayTLS: Self.pinned) {
            bank, gateway, _, _ in
            #expect(gateway.uplink.ownsHTTPClient)
            try gateway.outbox.append(Fixture.summaries(3))
            let group = ServiceGroup(configuration: .init(services: [.init(service: gateway.uplink)], logger: Fixture.quietLogger))
            let running = Task { try await group.run() }
            // The service's first round is a batch interval away (60 s): shutting down makes its last round now.
            try await Task.sleep(for: .milliseconds(300))
            await group.triggerGracefulShutdown()
            try await running.value
            #expect(gateway.uplink.isHTTPClientShutDown)
            #expect(try gateway.outbox.status().undeliveredBatches == 0, "the last round delivered over TLS before the client closed")
            #expect(try bank.store.batches(device: gateway.deviceID).map(\.bseq) == [1, 2])
        }
    }

    @Test("without TLS files the uplink still owns its client (system trust store, no hidden connection retries)")
    func noTLSFilesStillOwnAClient() async throws {
        let dir = try TempDir()
        defer { dir.remove() }
        var gateway = try Gateway(dir: dir, bankURL: "https://bank.example:8443", maxBatchRecords: 2)
        try gateway.useOwnHTTPClient(tls: BankTLSSettings())
        #expect(gateway.uplink.ownsHTTPClient)
        let configuration = try UplinkTLS.clientConfiguration(BankTLSSettings(), bankURL: "https://bank.example:8443")
        #expect(configuration.connectionPool.retryConnectionEstablishment == false)
        #expect(configuration.tlsConfiguration?.trustRoots == .default)
        #expect(configuration.tlsConfiguration?.certificateVerification == .fullVerification)
        // A plain http:// bank needs no TLS, and so no trust store on the gateway.
        let plain = try UplinkTLS.clientConfiguration(BankTLSSettings(), bankURL: "http://127.0.0.1:8080")
        #expect(plain.tlsConfiguration == nil)
        #expect(plain.connectionPool.retryConnectionEstablishment == false)
        await gateway.uplink.shutdownHTTPClient()
    }
}
