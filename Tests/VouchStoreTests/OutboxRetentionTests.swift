import Foundation
import Testing
import VouchCore
import VouchEvidence
@testable import VouchStore

/// Pruning delivered batches after the retention, and the quarantine marks: what goes, what must stay.
struct OutboxRetentionTests {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("vouch-outbox-retention-\(UUID().uuidString)")
    var path: String { directory.appendingPathComponent("outbox.sqlite").path }
    let key = SigningKey.generate()

    /// Seals `count` batches of two records each; the first `delivered` get a receipt at `deliveredAtMs`.
    func chain(_ outbox: Outbox, count: Int, delivered: Int) throws -> [SealedBatch] {
        var sealed: [SealedBatch] = []
        for i in 0..<count {
            try outbox.append([OutboxTests().summary(Int64(2 * i)), OutboxTests().summary(Int64(2 * i + 1))])
            sealed.append(try #require(try outbox.sealNext(maxRecords: 10, seal: OutboxTests().sealer(key))))
        }
        for batch in sealed.prefix(delivered) {
            try outbox.markDelivered(bseq: batch.bseq, receiptToken: "receipt-\(batch.bseq)", receiptHash: Digest256.sha256Hex(Array("r\(batch.bseq)".utf8)))
        }
        return sealed
    }

    @Test func prunesOnlyDeliveredBatchesPastTheRetentionAndKeepsTheChainGoing() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let outbox = try Outbox(path: path)
        let sealed = try chain(outbox, count: 5, delivered: 3)
        let now = Int64(Date().timeIntervalSince1970 * 1000)

        // Nothing delivered before the cutoff: nothing goes.
        #expect(try outbox.prune(deliveredBeforeMs: now - 3_600_000) == Outbox.Pruned(batches: 0, records: 0, throughBseq: nil))
        // Batches 1 and 2 go; batch 3 is the newest delivered one (its receipt hash feeds rcpt) and stays,
        // batches 4 and 5 are undelivered and stay.
        let pruned = try outbox.prune(deliveredBeforeMs: now + 60_000)
        #expect(pruned == Outbox.Pruned(batches: 2, records: 4, throughBseq: 2))
        #expect(try outbox.sealedBatches().map(\.batch.bseq) == [3, 4, 5])
        #expect(try outbox.undelivered() == Array(sealed[3...]), "undelivered batches are untouched, byte for byte")

        // The chain goes on: rseq after the highest ever, bseq 6 linking to batch 5, rcpt the last receipt.
        let appended = try outbox.append([OutboxTests().summary(99)])
        #expect(appended.map(\.stamp.rseq) == [11])
        let next = try #require(try outbox.sealNext(maxRecords: 10, seal: OutboxTests().sealer(key)))
        let verified = try VerifiedBatch.verify(next, key: key.publicJWK)
        #expect(verified.payload.bseq == 6)
        #expect(verified.payload.prev == sealed[4].signingInputHash)
        #expect(verified.payload.receipt == Digest256.sha256Hex(Array("r3".utf8)))
    }

    @Test func anRseqIsNeverReusedAfterPruning() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let outbox = try Outbox(path: path)
        _ = try chain(outbox, count: 3, delivered: 3)
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        #expect(try outbox.prune(deliveredBeforeMs: now + 60_000).throughBseq == 2)
        // Batch 3 (the newest) stays with its records 5 and 6; rseq goes on after the highest ever given.
        #expect(try outbox.append([OutboxTests().summary(7)]).map(\.stamp.rseq) == [7])
        // Reopened (an agent restart), the same holds.
        let reopened = try Outbox(path: path)
        #expect(try reopened.append([OutboxTests().summary(8)]).map(\.stamp.rseq) == [8])
    }

    @Test func aQuarantinedBatchIsNeverPrunedNorAnythingAfterIt() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let outbox = try Outbox(path: path)
        _ = try chain(outbox, count: 4, delivered: 1)
        #expect(try outbox.quarantine(bseq: 2, code: "E_DEVICE_REVOKED", reason: "revoked", atMs: 5))
        #expect(try !outbox.quarantine(bseq: 2, code: "E_DEVICE_REVOKED", reason: "again", atMs: 6), "marked once")
        #expect(try outbox.quarantined().map(\.bseq) == [2])
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        // Batch 1 is the newest delivered batch: it stays too.
        #expect(try outbox.prune(deliveredBeforeMs: now + 60_000).batches == 0)
        #expect(try outbox.sealedBatches().count == 4)

        // Delivered at last: the mark is released once, and it becomes prunable like any other.
        try outbox.markDelivered(bseq: 2, receiptToken: "receipt-2", receiptHash: Digest256.sha256Hex(Array("r2".utf8)))
        #expect(try outbox.releaseQuarantines().map(\.bseq) == [2])
        #expect(try outbox.releaseQuarantines().isEmpty)
        #expect(try outbox.prune(deliveredBeforeMs: now + 60_000).throughBseq == 1)
    }
}
