import Foundation
import Testing
import VouchBank
import VouchCore
import VouchEvidence
import VouchStore
import VouchUplink

/// The uplink against the real bank (`buildBankApplication`) over real HTTP on 127.0.0.1, both on
/// real SQLite files.
@Suite("Uplink delivery to a real bank", .serialized)
struct UplinkDeliveryTests {
    /// Checks what the bank holds for `deviceID` is exactly `sealed`, verified and chained. `keys`:
    /// the key each batch must be signed with (the gateway's key for all of them when nil).
    static func expectBankHolds(_ bank: Bank, _ gateway: Gateway, _ sealed: [SealedBatch], records: Int, keys: [PublicJWK]? = nil) throws {
        let stored = try bank.store.batches(device: gateway.deviceID)
        #expect(stored.map(\.bseq) == sealed.map(\.bseq))
        #expect(stored.map(\.hash) == sealed.map(\.signingInputHash))
        #expect(stored.map { Array($0.token.utf8) } == sealed.map { Array($0.token.utf8) })
        #expect(stored.map(\.file) == sealed.map(\.file), "the bank holds the very bytes the gateway sealed")
        #expect(try bank.store.recordCount(device: gateway.deviceID) == records)
        let keys = keys ?? Array(repeating: gateway.key.publicJWK, count: stored.count)
        try #require(keys.count == stored.count)
        // The chain verifies from scratch with the device's public key(s) alone.
        var head: ChainHead?
        var nextRseq: Int64 = 1
        for (batch, key) in zip(stored, keys) {
            let verified = try VerifiedBatch.verify(token: batch.token, records: batch.records, key: key)
            #expect(verified.payload.device == gateway.deviceID)
            #expect(verified.signingInputHash == batch.hash)
            let verdict = ChainRule.classify(
                bseq: verified.payload.bseq, prev: verified.payload.prev, signingInputHash: verified.signingInputHash, head: head,
                acceptedHash: nil)
            #expect(verdict == .extends, "batch \(batch.bseq)")
            for record in try verified.typedRecords() {
                #expect(record.stamp.rseq == nextRseq)
                nextRseq += 1
            }
            head = ChainHead(bseq: verified.payload.bseq, signingInputHash: verified.signingInputHash)
        }
        #expect(nextRseq - 1 == Int64(records))
    }

    /// The receipt the bank holds for a batch (a resend is answered with the stored receipt).
    static func bankReceipt(_ bank: Bank, for batch: SealedBatch) throws -> (token: String, receipt: Receipt, hash: String) {
        let answer = try bank.ingest.ingest(batch)
        #expect(answer.verdict == .duplicate)
        let (receipt, hash) = try Receipt.verify(answer.receipt, bankKey: bank.key.publicJWK)
        return (answer.receipt, receipt, hash)
    }

    @Test("sealPending makes batches 1, 2, 3 and sendPending delivers them all, in order, with receipts")
    func sealAndDeliver() async throws {
        let dir = try TempDir()
        defer { dir.remove() }
        let bank = try Bank(dir: dir)
        try await bank.serving { url in
            let gateway = try Gateway(dir: dir, bankURL: url, maxBatchRecords: 3)
            try bank.store.enroll(gateway.enrollment)

            var records = Fixture.summaries(3, from: 1)
            records.append(Fixture.event(4, phase: .start))
            records += Fixture.summaries(2, from: 5)
            records.append(Fixture.event(7, phase: .end))
            let appended = try gateway.outbox.append(records)
            #expect(appended.map(\.stamp.rseq) == Array(1...7))

            let sealed = try gateway.uplink.sealPending()
            #expect(sealed.map(\.bseq) == [1, 2, 3])
            #expect(try gateway.uplink.sealPending().isEmpty, "nothing left to seal")
            #expect(try gateway.outbox.undelivered() == sealed)
            let payloads = try sealed.map { try Fixture.payload($0.token) }
            #expect(payloads.map(\.recordCount) == [3, 3, 1])
            #expect(sealed.map(\.records.count) == [3, 3, 1])
            #expect(payloads.map(\.prev) == [Digest256.zeroHex, sealed[0].signingInputHash, sealed[1].signingInputHash])
            #expect(payloads.allSatisfy { $0.receipt == nil }, "sealed before any receipt came back")
            #expect(payloads.allSatisfy { $0.device == gateway.deviceID && $0.bootCount == 1 })

            let outcome = await gateway.uplink.sendPending()
            #expect(outcome == .delivered(count: 3))

            try Self.expectBankHolds(bank, gateway, sealed, records: 7)
            #expect(try gateway.outbox.undelivered().isEmpty)
            let status = try gateway.outbox.status()
            #expect(status.undeliveredBatches == 0)
            #expect(status.batches == 3)
            #expect(status.unsealedRecords == 0)
            let events = try bank.store.events(device: gateway.deviceID)
            #expect(events.count == 1)
            #expect(events.first?.status == "ended")
            #expect(events.first?.durationMs == 60_000)

            // Nothing left: a second round sends nothing.
            #expect(await gateway.uplink.sendPending() == .delivered(count: 0))

            // The receipts the bank signed, as the device must have stored them.
            var lastReceiptHash = ""
            for (i, batch) in sealed.enumerated() {
                let (_, receipt, hash) = try Self.bankReceipt(bank, for: batch)
                #expect(receipt.device == gateway.deviceID)
                #expect(receipt.bseq == batch.bseq)
                #expect(receipt.batch == batch.signingInputHash)
                #expect(receipt.deviceLogSize == Int64(i + 1))
                lastReceiptHash = hash
            }

            // The next batch names the last receipt the device stored, and links to batch 3.
            try gateway.outbox.append(Fixture.summaries(2, from: 8))
            let next = try gateway.uplink.sealPending()
            #expect(next.map(\.bseq) == [4])
            let payload = try Fixture.payload(try #require(next.first).token)
            #expect(payload.receipt == lastReceiptHash)
            #expect(payload.prev == sealed[2].signingInputHash)
            #expect(payload.recordCount == 2)

            #expect(await gateway.uplink.sendPending() == .delivered(count: 1))
            try Self.expectBankHolds(bank, gateway, sealed + next, records: 9)
            #expect(try gateway.outbox.undelivered().isEmpty)
        }
    }

    @Test("with the bank down nothing is lost; once it is up the very same bytes are delivered")
    func bankDownThenUp() async throws {
        let dir = try TempDir()
        defer { dir.remove() }
        let bank = try Bank(dir: dir)
        let port = try Net.freePort()
        #expect(!Net.isListening(port: port))
        // AsyncHTTPClient keeps retrying a refused connection until the request times out: keep that short.
        let gateway = try Gateway(dir: dir, bankURL: "http://127.0.0.1:\(port)", maxBatchRecords: 2, requestTimeout: .seconds(2))
        try bank.store.enroll(gateway.enrollment)

        try gateway.outbox.append(Fixture.summaries(5))
        let sealed = try gateway.uplink.sealPending()
        #expect(sealed.map(\.bseq) == [1, 2, 3])

        for _ in 0..<2 {
            let outcome = await gateway.uplink.sendPending()
            guard case .failed(let delivered, let reason) = outcome else {
                Issue.record("expected .failed with the bank down, got \(outcome)")
                return
            }
            #expect(delivered == 0)
            #expect(reason.contains("E_UPLINK_UNREACHABLE"), "\(reason)")
            let waiting = try gateway.outbox.undelivered()
            #expect(waiting.map(\.bseq) == [1, 2, 3])
            #expect(waiting.map { Array($0.token.utf8) } == sealed.map { Array($0.token.utf8) })
            #expect(waiting.map(\.signingInputHash) == sealed.map(\.signingInputHash))
            #expect(try gateway.uplink.sealPending().isEmpty, "a failed send does not reseal")
        }
        #expect(try bank.store.batches(device: gateway.deviceID).isEmpty)

        let outcome = try await bank.serving(port: port) { await gateway.uplink.sendPending() }
        #expect(outcome == .delivered(count: 3))
        try Self.expectBankHolds(bank, gateway, sealed, records: 5)
        #expect(try gateway.outbox.undelivered().isEmpty)
        #expect(try gateway.outbox.status().undeliveredBatches == 0)
    }

    @Test("a batch the bank refuses (device not enrolled) fails with the bank's code and stays undelivered")
    func refusedByBank() async throws {
        let dir = try TempDir()
        defer { dir.remove() }
        let bank = try Bank(dir: dir)
        try await bank.serving { url in
            let gateway = try Gateway(dir: dir, bankURL: url, maxBatchRecords: 10)  // never enrolled
            try gateway.outbox.append(Fixture.summaries(3))
            let sealed = try gateway.uplink.sealPending()
            #expect(sealed.map(\.bseq) == [1])

            let outcome = await gateway.uplink.sendPending()
            guard case .failed(let delivered, let reason) = outcome else {
                Issue.record("expected .failed for an unenrolled device, got \(outcome)")
                return
            }
            #expect(delivered == 0)
            #expect(reason.contains("E_DEVICE_UNKNOWN"), "\(reason)")
            #expect(reason.contains("HTTP 401"), "\(reason)")
            #expect(reason.contains("E_UPLINK_REJECTED"), "\(reason)")
            #expect(try gateway.outbox.undelivered() == sealed)
            #expect(try gateway.outbox.status().undeliveredBatches == 1)
            #expect(try bank.store.batches(device: gateway.deviceID).isEmpty)

            // Enrolled afterwards, the same batch goes through.
            try bank.store.enroll(gateway.enrollment)
            #expect(await gateway.uplink.sendPending() == .delivered(count: 1))
            try Self.expectBankHolds(bank, gateway, sealed, records: 3)
        }
    }

    @Test("a refused batch stops the round: later batches are not sent past it")
    func refusalStopsTheRound() async throws {
        let dir = try TempDir()
        defer { dir.remove() }
        let bank = try Bank(dir: dir)
        // A bank that takes small uploads only: batch 2 (many records) is refused with 413.
        let port = try Net.freePort()
        try await bank.serving(port: port, settings: BankServerSettings(maxBodyBytes: 2_000)) {
            let gateway = try Gateway(dir: dir, bankURL: "http://127.0.0.1:\(port)", maxBatchRecords: 20)
            try bank.store.enroll(gateway.enrollment)
            try gateway.outbox.append(Fixture.summaries(1, from: 1))
            let one = try gateway.uplink.sealPending()
            try gateway.outbox.append(Fixture.summaries(20, from: 2))
            let two = try gateway.uplink.sealPending()
            try gateway.outbox.append(Fixture.summaries(1, from: 22))
            let three = try gateway.uplink.sealPending()
            #expect((one + two + three).map(\.bseq) == [1, 2, 3])
            try #require(one[0].file.count <= 2_000 && three[0].file.count <= 2_000)
            try #require(two[0].file.count > 2_000)

            let outcome = await gateway.uplink.sendPending()
            guard case .failed(let delivered, let reason) = outcome else {
                Issue.record("expected .failed, got \(outcome)")
                return
            }
            #expect(delivered == 1)
            #expect(reason.contains("HTTP 413") && reason.contains("E_TOO_LARGE"), "\(reason)")
            #expect(try gateway.outbox.undelivered().map(\.bseq) == [2, 3])
            #expect(try bank.store.batches(device: gateway.deviceID).map(\.bseq) == [1])
        }
    }
}
