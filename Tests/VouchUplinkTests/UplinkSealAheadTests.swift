import Foundation
import Testing
import VouchBank
import VouchCore
import VouchEvidence
import VouchStore
@testable import VouchUplink

/// Sealing stays a few batches ahead of the bank: records beyond them wait unsealed (so a disk budget
/// can still coarsen them), and one round drains everything once the bank answers.
@Suite("Uplink seals ahead of the bank, not further", .serialized)
struct UplinkSealAheadTests {
    @Test("bank down: a round seals only sealAhead batches and leaves the rest stored, unsealed")
    func bankDownSealsOnlyAhead() async throws {
        let dir = try TempDir()
        defer { dir.remove() }
        let port = try Net.freePort()  // nothing listens there
        let gateway = try Gateway(dir: dir, bankURL: "http://127.0.0.1:\(port)", maxBatchRecords: 2, requestTimeout: .milliseconds(300))
        try gateway.outbox.append(Fixture.summaries(20))
        var failures = 0
        let retry = await gateway.uplink.round(failures: &failures)
        #expect(retry != nil, "a failed round says when to try again")
        #expect(failures == 1)
        #expect(try gateway.outbox.undeliveredCount() == gateway.settings.sealAhead)
        #expect(try gateway.outbox.status().unsealedRecords == Int64(20 - 2 * gateway.settings.sealAhead))
        // A second failed round seals nothing more.
        _ = await gateway.uplink.round(failures: &failures)
        #expect(try gateway.outbox.status().batches == Int64(gateway.settings.sealAhead))
    }

    @Test("bank up: one round seals and delivers everything, in bseq order, sealing more as receipts come")
    func oneRoundDrainsTheBacklog() async throws {
        let dir = try TempDir()
        defer { dir.remove() }
        let bank = try Bank(dir: dir)
        try await bank.serving { url in
            let gateway = try Gateway(dir: dir, bankURL: url, maxBatchRecords: 2)
            try bank.store.enroll(gateway.enrollment)
            try gateway.outbox.append(Fixture.summaries(21))
            var failures = 0
            let retry = await gateway.uplink.round(failures: &failures)
            #expect(retry == nil)
            #expect(try gateway.outbox.status().unsealedRecords == 0)
            #expect(try gateway.outbox.undeliveredCount() == 0)
            #expect(try bank.store.batches(device: gateway.deviceID).map(\.bseq) == Array(1...11))
        }
    }
}
