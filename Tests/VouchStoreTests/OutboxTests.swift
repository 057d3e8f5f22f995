import Foundation
import Testing
import VouchCore
import VouchEvidence
@testable import VouchStore

/// The outbox on real SQLite files.
struct OutboxTests {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("vouch-outbox-\(UUID().uuidString)")
    var path: String { directory.appendingPathComponent("outbox.sqlite").path }

    func summary(_ value: Int64) -> EvidenceRecord {
        .summary(
            ReadingSummary(
                stamp: RecordStamp(rseq: 0, boot: 1, monoMs: 1000, wallMs: 1_700_000_000_000, timeQuality: .synchronized), channel: "meter.power",
                intervalMs: 60_000, unit: "W", scale: 0, count: 60, errors: 0, min: value, max: value, mean: value, last: value, lastError: nil))
    }

    func sealer(_ key: SigningKey) -> (Outbox.SealInput) -> SealedBatch { testSealer(key) }

    @Test func durabilitySettingsAreInForce() throws {
        let outbox = try Outbox(path: path)
        defer { try? FileManager.default.removeItem(at: directory) }
        #expect(try outbox.synchronousLevel() == 2, "synchronous must be FULL (2)")
        #expect(try outbox.journalMode() == "wal")
    }

    @Test func rseqIsGapFreeAcrossReopen() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        do {
            let outbox = try Outbox(path: path)
            let stored = try outbox.append([summary(1), summary(2)])
            #expect(stored.map(\.stamp.rseq) == [1, 2])
        }
        let reopened = try Outbox(path: path)
        #expect(try reopened.append([summary(3)]).map(\.stamp.rseq) == [3])
        #expect(try reopened.status().records == 3)
    }

    @Test func bootCountIncrementsPerStart() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        #expect(try Outbox(path: path).beginBoot(bootID: "a") == 1)
        #expect(try Outbox(path: path).beginBoot(bootID: "b") == 2)
    }

    @Test func sealingChainsBatchesAndClaimsEachRecordOnce() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let outbox = try Outbox(path: path)
        let key = SigningKey.generate()
        try outbox.append((1...5).map { summary($0) })
        let first = try #require(try outbox.sealNext(maxRecords: 2, seal: sealer(key)))
        let second = try #require(try outbox.sealNext(maxRecords: 2, seal: sealer(key)))
        let third = try #require(try outbox.sealNext(maxRecords: 2, seal: sealer(key)))
        #expect(try outbox.sealNext(maxRecords: 2, seal: sealer(key)) == nil)
        #expect([first.bseq, second.bseq, third.bseq] == [1, 2, 3])
        let payloads = try [first, second, third].map { try VerifiedBatch.verify($0, key: key.publicJWK) }
        #expect(payloads[0].payload.prev == Digest256.zeroHex)
        #expect(payloads[1].payload.prev == first.signingInputHash)
        #expect(payloads[2].payload.prev == second.signingInputHash)
        let rseqs = try payloads.flatMap { try $0.typedRecords().map { $0.stamp.rseq } }
        #expect(rseqs == [1, 2, 3, 4, 5])
        #expect(try outbox.status().unsealedRecords == 0)
    }

    @Test func undeliveredBatchesAreResentByteIdenticalUntilReceipted() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let key = SigningKey.generate()
        var sealed: [SealedBatch] = []
        do {
            let outbox = try Outbox(path: path)
            try outbox.append([summary(1)])
            sealed.append(try #require(try outbox.sealNext(maxRecords: 10, seal: sealer(key))))
            try outbox.append([summary(2)])
            sealed.append(try #require(try outbox.sealNext(maxRecords: 10, seal: sealer(key))))
        }
        // After a restart the same bytes come back, in bseq order.
        let outbox = try Outbox(path: path)
        #expect(try outbox.undelivered() == sealed)
        try outbox.markDelivered(bseq: 1, receiptToken: "receipt-1", receiptHash: String(repeating: "a", count: 64))
        #expect(try outbox.undelivered() == [sealed[1]])
        // The next batch names the latest receipt it holds.
        try outbox.append([summary(3)])
        let next = try #require(try outbox.sealNext(maxRecords: 10, seal: sealer(key)))
        #expect(try VerifiedBatch.verify(next, key: key.publicJWK).payload.receipt == String(repeating: "a", count: 64))
    }

    @Test func receiptForABatchNeverSealedIsAnInvariantError() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let outbox = try Outbox(path: path)
        #expect(throws: StoreError.self) { try outbox.markDelivered(bseq: 7, receiptToken: "r", receiptHash: "h") }
    }

    @Test func sealerReturningTheWrongBseqChangesNothing() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let outbox = try Outbox(path: path)
        try outbox.append([summary(1)])
        #expect(throws: StoreError.self) {
            _ = try outbox.sealNext(maxRecords: 10) { _ in SealedBatch(bseq: 9, token: "x", signingInputHash: "y", records: []) }
        }
        #expect(try outbox.status().unsealedRecords == 1)
        #expect(try outbox.status().batches == 0)
    }
}

/// The CLI's read-only view of the outbox, beside the agent's writer.
struct OutboxReadOnlyTests {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("vouch-outbox-ro-\(UUID().uuidString)")
    var path: String { directory.appendingPathComponent("outbox.sqlite").path }

    @Test func readerSeesSealedBatchesWhileTheWriterIsOpenAndCannotWrite() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let writer = try Outbox(path: path)
        let key = SigningKey.generate()
        try writer.append([OutboxTests().summary(1)])
        let sealed = try #require(try writer.sealNext(maxRecords: 10, seal: OutboxTests().sealer(key)))
        try writer.markDelivered(bseq: 1, receiptToken: "r", receiptHash: String(repeating: "b", count: 64))
        try writer.append([OutboxTests().summary(2)])
        let second = try #require(try writer.sealNext(maxRecords: 10, seal: OutboxTests().sealer(key)))

        let reader = try Outbox(path: path, readOnly: true)
        let listed = try reader.sealedBatches()
        #expect(listed.map(\.batch) == [sealed, second])
        #expect(listed.map(\.receipt) == ["r", nil])
        #expect(throws: StoreError.self) { try reader.append([OutboxTests().summary(3)]) }
        // The writer is unaffected by the reader.
        #expect(try writer.append([OutboxTests().summary(3)]).map(\.stamp.rseq) == [3])
    }

    @Test func readOnlyOpenOfAMissingOutboxSaysSoAndCreatesNothing() {
        let error = #expect(throws: StoreError.self) { _ = try Outbox(path: path, readOnly: true) }
        #expect(error?.message.contains("no outbox at") == true)
        #expect(!FileManager.default.fileExists(atPath: directory.path))
    }
}

/// What the agent start reads and the key rotation bookkeeping.
struct OutboxRunTests {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("vouch-outbox-run-\(UUID().uuidString)")
    var path: String { directory.appendingPathComponent("outbox.sqlite").path }

    @Test func previousRunReportsLastRecordCleanStopAndConfig() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let outbox = try Outbox(path: path)
        #expect(try outbox.previousRun() == nil, "a fresh outbox has no previous run")
        _ = try outbox.beginBoot(bootID: "boot-a")
        try outbox.append([OutboxTests().summary(1), OutboxTests().summary(2)])
        try outbox.noteConfig(sha256: String(repeating: "c", count: 64))
        // Killed: no clean stop noted.
        let crashed = try #require(try outbox.previousRun())
        #expect(crashed.bootCount == 1)
        #expect(crashed.bootID == "boot-a")
        #expect(crashed.lastRecord?.stamp.rseq == 2)
        #expect(crashed.cleanStopWallMs == nil)
        #expect(crashed.configSha256 == String(repeating: "c", count: 64))
        // A clean stop is seen by the next start, and forgotten by beginBoot.
        try outbox.noteCleanStop(wallMs: 1234)
        #expect(try outbox.previousRun()?.cleanStopWallMs == 1234)
        _ = try outbox.beginBoot(bootID: "boot-b")
        #expect(try outbox.previousRun()?.cleanStopWallMs == nil)
    }

    @Test func keyRotationStateFollowsTheRecordFromStoredToSealed() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let outbox = try Outbox(path: path)
        let old = SigningKey.generate()
        let new = SigningKey.generate()
        #expect(try outbox.keyRotationState(newKid: new.kid) == .notRecorded)
        try outbox.append([OutboxTests().summary(1)])
        let stamp = RecordStamp(rseq: 0, boot: 1, monoMs: 5, wallMs: 5, timeQuality: .synchronized)
        let rotation = EvidenceRecord.keyRotation(
            KeyRotation(stamp: stamp, newKey: new.publicJWK, proof: KeyRotation.proof(device: "dev-1", oldKid: old.kid, newKey: new)))
        try outbox.append([rotation, OutboxTests().summary(3)])
        #expect(try outbox.keyRotationState(newKid: new.kid) == .recorded(rseq: 2))
        #expect(try outbox.keyRotationState(newKid: old.kid) == .notRecorded, "another key's rotation is not this one")
        // Sealing stops at the rotation record when asked to.
        let first = try #require(try outbox.sealNext(maxRecords: 10, throughRseq: 2, seal: OutboxTests().sealer(old)))
        #expect(first.records.count == 2)
        #expect(try outbox.keyRotationState(newKid: new.kid) == .sealed(rseq: 2, bseq: 1))
        let second = try #require(try outbox.sealNext(maxRecords: 10, seal: OutboxTests().sealer(new)))
        #expect(second.records.count == 1)
    }

    @Test func sealedBatchRecordsAreTheStoredBytesAndVerify() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let outbox = try Outbox(path: path)
        let key = SigningKey.generate()
        try outbox.append([OutboxTests().summary(1), OutboxTests().summary(2)])
        let sealed = try #require(try outbox.sealNext(maxRecords: 10, seal: OutboxTests().sealer(key)))
        let listed = try #require(try outbox.undelivered().first)
        #expect(listed == sealed, "what is resent is byte-identical to what was sealed")
        #expect(try VerifiedBatch.verify(file: listed.file, key: key.publicJWK).records.count == 2)
    }
}
