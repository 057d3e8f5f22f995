import Foundation
import Testing
import VouchCore
import VouchEvidence
@testable import VouchStore

/// A database that cannot be used at start is moved aside, never read again as evidence, and a fresh
/// outbox carries the chain on from the mirrored head (the last batch the bank acknowledged).
struct OutboxRecoveryTests {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("vouch-outbox-recovery-\(UUID().uuidString)")
    var path: String { directory.appendingPathComponent("outbox.sqlite").path }
    let key = SigningKey.generate()

    /// Boot 1: three batches sealed, the first two acknowledged by the bank.
    func siteWithHistory() throws -> [SealedBatch] {
        let outbox = try Outbox(path: path)
        _ = try outbox.beginBoot(bootID: "boot-a")
        var sealed: [SealedBatch] = []
        for i in 0..<3 {
            try outbox.append([OutboxTests().summary(Int64(i)), OutboxTests().summary(Int64(i + 10))])
            sealed.append(try #require(try outbox.sealNext(maxRecords: 10, seal: OutboxTests().sealer(key))))
        }
        for batch in sealed.prefix(2) {
            try outbox.markDelivered(bseq: batch.bseq, receiptToken: "receipt-\(batch.bseq)", receiptHash: Digest256.sha256Hex(Array("r\(batch.bseq)".utf8)))
        }
        try outbox.append([OutboxTests().summary(99)])  // rseq 7, never sealed
        return sealed
    }

    @Test func theHeadMirrorsTheLastAcknowledgedBatch() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let sealed = try siteWithHistory()
        let head = try #require(OutboxHead.read(outbox: path))
        #expect(head.bseq == 2)
        #expect(head.hash == sealed[1].signingInputHash)
        #expect(head.receiptHash == Digest256.sha256Hex(Array("r2".utf8)))
        #expect(head.lastRseq == 6, "the highest rseq assigned when batch 2 was acknowledged (batch 3 was sealed by then)")
        #expect(head.bootCount == 1)
    }

    @Test func aHealthyOutboxOpensAsItIs() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        _ = try siteWithHistory()
        let (outbox, recovery) = try Outbox.openOrRecover(path: path)
        #expect(recovery == nil)
        #expect(try outbox.status().records == 7)
    }

    @Test(arguments: ["garbage", "truncated"])
    func aCorruptOutboxIsMovedAsideAndTheChainGoesOnAfterTheLastAcknowledgedBatch(_ damage: String) throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let sealed = try siteWithHistory()
        // Damage the file the way a failing SD card does: overwrite its header, or cut it short.
        let handle = try #require(FileHandle(forUpdatingAtPath: path))
        if damage == "garbage" {
            try handle.write(contentsOf: Data(repeating: 0x5A, count: 4096))
        } else {
            try handle.truncate(atOffset: 1000)
        }
        try handle.close()
        try? FileManager.default.removeItem(atPath: path + "-wal")

        let (outbox, recovery) = try Outbox.openOrRecover(path: path)
        let moved = try #require(recovery)
        #expect(FileManager.default.fileExists(atPath: moved.movedTo), "kept for inspection")
        #expect(!moved.reason.isEmpty)
        #expect(moved.head?.bseq == 2)
        // Nothing from the damaged file is read: the fresh outbox holds nothing yet.
        #expect(try outbox.status().records == 0)
        #expect(try outbox.undelivered().isEmpty)
        // Boot count, rseq and the chain go on.
        #expect(try outbox.beginBoot(bootID: "boot-b") == 2)
        // rseq goes on after the highest the head knows: records 5 and 6 (in the lost batch 3) show at the
        // bank as missing records, which is what they are.
        #expect(try outbox.append([OutboxTests().summary(1)]).map(\.stamp.rseq) == [7])
        let next = try #require(try outbox.sealNext(maxRecords: 10, seal: OutboxTests().sealer(key)))
        let verified = try VerifiedBatch.verify(next, key: key.publicJWK)
        #expect(verified.payload.bseq == 3, "batch 3 was sealed but never acknowledged: the bank never saw it")
        #expect(verified.payload.prev == sealed[1].signingInputHash)
        #expect(verified.payload.receipt == Digest256.sha256Hex(Array("r2".utf8)))
    }

    @Test func withoutAHeadAFreshChainStartsAtOne() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        #expect(FileManager.default.createFile(atPath: path, contents: Data("not a database at all".utf8)))
        let (outbox, recovery) = try Outbox.openOrRecover(path: path)
        #expect(recovery?.head == nil)
        try outbox.append([OutboxTests().summary(1)])
        let first = try #require(try outbox.sealNext(maxRecords: 10, seal: OutboxTests().sealer(key)))
        #expect(first.bseq == 1)
        #expect(try VerifiedBatch.verify(first, key: key.publicJWK).payload.prev == Digest256.zeroHex)
    }
}
