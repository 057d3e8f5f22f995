import Foundation
import Testing
import VouchBank
import VouchEvidence
import VouchStore
@testable import VouchUplink

/// With the bank's key configured, the gateway counts a batch delivered only on a receipt the bank signed.
@Suite(.serialized) struct ReceiptCheckTests {
    @Test func receiptSignedByTheConfiguredBankKeyIsAccepted() async throws {
        let dir = try TempDir()
        defer { dir.remove() }
        let bank = try Bank(dir: dir)
        try await bank.serving { url in
            let gateway = try Gateway(dir: dir, bankURL: url, maxBatchRecords: 10, bankKey: bank.key.publicJWK)
            try bank.store.enroll(gateway.enrollment)
            try gateway.outbox.append(Fixture.summaries(2))
            try gateway.uplink.sealPending()
            #expect(await gateway.uplink.sendPending() == .delivered(count: 1))
        }
    }

    @Test func receiptFromAnotherKeyIsRefusedAndTheBatchStaysUndelivered() async throws {
        let dir = try TempDir()
        defer { dir.remove() }
        let bank = try Bank(dir: dir)
        try await bank.serving { url in
            // The gateway was told a different bank key than the one this receiver signs with.
            let gateway = try Gateway(dir: dir, bankURL: url, maxBatchRecords: 10, bankKey: SigningKey.generate().publicJWK)
            try bank.store.enroll(gateway.enrollment)
            try gateway.outbox.append(Fixture.summaries(2))
            let sealed = try gateway.uplink.sealPending()
            let outcome = await gateway.uplink.sendPending()
            guard case .failed(0, let reason) = outcome else {
                Issue.record("a receipt the configured bank key did not sign must not deliver the batch, got \(outcome)")
                return
            }
            #expect(reason.contains("E_UPLINK_RECEIPT") && reason.contains("does not verify with the bank key"), "\(reason)")
            #expect(try gateway.outbox.undelivered() == sealed)
        }
    }
}
