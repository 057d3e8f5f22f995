import Foundation
import Testing
import VouchEvidence
@testable import VouchBank

/// The bank's own append-only log (receipts name its index, size and root) and the inclusion proofs
/// that disclose one record without the rest of its batch.
@Suite("Bank log and inclusion proofs")
struct BankLogAndProofTests {
    /// The RFC 6962 root over `hashes` (hex signing input hashes), recomputed from scratch.
    static func logRoot(_ hashes: [String]) -> String {
        Hex.encode(Merkle.root(leaves: hashes.map { Hex.decode($0) ?? [] }))
    }

    @Test("receipts' log index, size and root match the log recomputed over accepted batches, across two devices")
    func receiptsFollowTheLog() async throws {
        try await TestBank.with { bank in
            let a = TestDevice()
            let b = TestDevice()
            try bank.enroll(a)
            try bank.enroll(b)
            let chainA = ChainBuilder.chain(a, batches: 4, perBatch: 2)
            let chainB = ChainBuilder.chain(b, batches: 3, perBatch: 1)
            // Acceptance order interleaves the devices; refusals and duplicates in between add nothing.
            let order: [SealedBatch] = [chainA[0], chainB[0], chainA[1], chainA[1], chainB[2], chainB[1], chainA[2], chainB[0], chainB[2], chainA[3]]
            var accepted: [(batch: SealedBatch, receipt: Receipt, device: String)] = []
            var log = MerkleLog()
            for batch in order {
                let device = chainA.contains(batch) ? a.id : b.id
                let result: IngestResult
                do { result = try bank.ingest.ingest(batch, nowMs: Fixture.t0 + Int64(accepted.count)) } catch let error as BankError {
                    #expect(error.code == "E_CHAIN_GAP" && batch == chainB[2] && accepted.count == 3, "only batch 3 of b comes too early")
                    continue
                }
                let (receipt, _) = try Receipt.verify(result.receipt, bankKey: bank.bankKey.publicJWK)
                if result.verdict == .duplicate {
                    let original = try #require(accepted.first { $0.batch.signingInputHash == batch.signingInputHash })
                    #expect(receipt == original.receipt, "a duplicate is answered with the receipt of its acceptance")
                    continue
                }
                let index = log.append(leaf: try #require(Hex.decode(batch.signingInputHash)))
                accepted.append((batch, receipt, device))
                #expect(receipt.device == device)
                #expect(receipt.bseq == batch.bseq)
                #expect(receipt.batch == batch.signingInputHash)
                #expect(receipt.logIndex == index)
                #expect(receipt.logSize == log.size)
                #expect(receipt.logRoot == Hex.encode(log.root))
                #expect(receipt.logRoot == Self.logRoot(accepted.map(\.batch.signingInputHash)), "MerkleLog and the RFC 6962 root agree")
                #expect(receipt.deviceLogSize == batch.bseq)
                #expect(receipt.acceptedWallMs == Fixture.t0 + Int64(accepted.count - 1))
            }
            #expect(accepted.map(\.device) == [a.id, b.id, a.id, b.id, a.id, b.id, a.id])
            #expect(accepted.map(\.receipt.logIndex) == Array(0..<7))
            #expect(accepted.map(\.receipt.bseq) == [1, 1, 2, 2, 3, 3, 4])
            // Every root is distinct: the log only grows.
            #expect(Set(accepted.map(\.receipt.logRoot)).count == 7)

            let head = try bank.store.logHead()
            #expect(head.size == 7)
            #expect(head.root == Self.logRoot(accepted.map(\.batch.signingInputHash)))

            // The log survives reopening the database and goes on from where it was.
            let reopened = try SQLiteBankStore(path: bank.path)
            let reopenedHead = try reopened.logHead()
            #expect(reopenedHead.size == head.size && reopenedHead.root == head.root)
            let ingest = BankIngest(store: reopened, bankKey: bank.bankKey, logger: bank.ingest.logger)
            var moreB = ChainBuilder(b)
            for _ in 0..<4 { moreB.next(count: 1) }
            let next = try ingest.ingest(moreB.batches[3], nowMs: Fixture.t0 + 100)
            let receipt = try Receipt.verify(next.receipt, bankKey: bank.bankKey.publicJWK).0
            #expect(receipt.logIndex == 7 && receipt.logSize == 8)
            #expect(receipt.logRoot == Self.logRoot(accepted.map(\.batch.signingInputHash) + [moreB.batches[3].signingInputHash]))
        }
    }

    @Test("a receipt verifies with the bank key only, and not once edited")
    func receiptVerifiesWithTheBankKey() async throws {
        try await TestBank.with { bank in
            let device = TestDevice()
            try bank.enroll(device)
            let batch = ChainBuilder.chain(device, batches: 1)[0]
            let token = try bank.ingest.ingest(batch, nowMs: Fixture.t0).receipt
            let (receipt, hash) = try Receipt.verify(token, bankKey: bank.bankKey.publicJWK)
            #expect(receipt == Receipt(device: device.id, bseq: 1, batch: batch.signingInputHash, deviceLogSize: 1, logIndex: 0, logSize: 1,
                logRoot: Self.logRoot([batch.signingInputHash]), acceptedWallMs: Fixture.t0))
            #expect(hash == Digest256.sha256Hex(Array(Fixture.parts(token).prefix(2).joined(separator: ".").utf8)))
            let unverified = try Receipt.parseUnverified(token)
            #expect(unverified.0 == receipt && unverified.signingInputHash == hash)
            #expect(evidenceCode { _ = try Receipt.verify(token, bankKey: device.key.publicJWK) } == .wrongKey)
            // Claiming a smaller log afterwards breaks the bank's own signature.
            let edited = try HandToken.editingManifest(of: token) { $0["log"] = ["idx": 0, "root": .string(receipt.logRoot), "size": 1_000] }
            #expect(evidenceCode { _ = try Receipt.verify(edited, bankKey: bank.bankKey.publicJWK) } == .badSignature)
        }
    }

    /// A chain of batches of 1, 2, 3, 5 and 8 records: every shape of tree up to depth 3.
    static func chain(_ device: TestDevice) -> [SealedBatch] {
        var b = ChainBuilder(device)
        for n in [1, 2, 3, 5, 8] { b.next(count: n) }
        return b.batches
    }

    @Test("store.inclusionProof verifies for every record of a multi-batch chain")
    func everyRecordHasAProof() async throws {
        try await TestBank.with { bank in
            let device = TestDevice()
            try bank.enroll(device)
            let chain = Self.chain(device)
            try TamperMatrixTests.accept(bank, chain)
            let stored = try bank.store.batches(device: device.id)
            var rseq: Int64 = 1
            for batch in chain {
                for (index, line) in batch.records.enumerated() {
                    let proof = try bank.store.inclusionProof(device: device.id, rseq: rseq)
                    #expect(proof.batch == batch.token)
                    #expect(proof.index == index)
                    #expect(proof.record == line)
                    #expect(proof.deviceKey == device.key.publicJWK)
                    #expect(proof.receipt == stored.first { $0.bseq == batch.bseq }?.receipt)
                    #expect(proof.path == Merkle.auditPath(index: index, leaves: batch.records))
                    let (payload, record) = try proof.verify(key: device.key.publicJWK)
                    #expect(payload.bseq == batch.bseq)
                    #expect(payload.device == device.id)
                    #expect(payload.recordCount == Int64(batch.records.count))
                    #expect(record.stamp.rseq == rseq)
                    #expect(record.canonicalBytes == line)
                    // Through its JSON form, as it is handed out.
                    let reread = try InclusionProof(json: try CanonicalJSON.decode(CanonicalJSON.encode(proof.json)))
                    #expect(reread == proof)
                    #expect(try reread.verify(key: device.key.publicJWK).record == record)
                    rseq += 1
                }
            }
            #expect(rseq == 20)
            let missing = bankError { _ = try bank.store.inclusionProof(device: device.id, rseq: 20) }
            #expect(missing?.code == "E_NOT_FOUND")
            #expect(missing?.status == 404)
            #expect(bankError { _ = try bank.store.inclusionProof(device: "nobody", rseq: 1) }?.code == "E_NOT_FOUND")
        }
    }

    @Test("a tampered inclusion proof fails with the right code")
    func tamperedProofsFail() async throws {
        try await TestBank.with { bank in
            let device = TestDevice()
            try bank.enroll(device)
            let chain = Self.chain(device)
            try TamperMatrixTests.accept(bank, chain)
            let key = device.key.publicJWK
            // Record 3 of the 5-record batch 4 (rseq 7 + 2 = 9).
            let proof = try bank.store.inclusionProof(device: device.id, rseq: 9)
            try #require(proof.index == 2 && proof.path.count == 3)
            #expect(throws: Never.self) { try proof.verify(key: key) }

            for element in proof.path.indices {
                var flipped = proof
                flipped.path[element][7] ^= 0x40
                #expect(evidenceCode { _ = try flipped.verify(key: key) } == .inclusionProof, "path element \(element)")
            }
            for index in [0, 1, 3, 4, 5, -1, 1_000] {
                var moved = proof
                moved.index = index
                #expect(evidenceCode { _ = try moved.verify(key: key) } == .inclusionProof, "index \(index)")
            }
            var shorter = proof
            shorter.path.removeLast()
            #expect(evidenceCode { _ = try shorter.verify(key: key) } == .inclusionProof)
            var longer = proof
            longer.path.append(proof.path[0])
            #expect(evidenceCode { _ = try longer.verify(key: key) } == .inclusionProof)

            var edited = proof
            edited.record = try Fixture.editRecord(proof.record) { $0[15] = .int(0) }
            #expect(evidenceCode { _ = try edited.verify(key: key) } == .inclusionProof)
            var spaced = proof
            spaced.record = Array(String(decoding: proof.record, as: UTF8.self).replacingOccurrences(of: "\"sum\",", with: "\"sum\", ").utf8)
            #expect(evidenceCode { _ = try spaced.verify(key: key) } == .inclusionProof, "the spec: a non-canonical disclosed record is E_PROOF_INVALID")

            // The record of another batch under this manifest, with its own (honest) path.
            let elsewhere = try bank.store.inclusionProof(device: device.id, rseq: 12)
            var mixed = proof
            mixed.record = elsewhere.record
            mixed.path = elsewhere.path
            mixed.index = elsewhere.index
            #expect(evidenceCode { _ = try mixed.verify(key: key) } == .inclusionProof)

            // The manifest is the device's signed statement: another key, or an edit, fails.
            #expect(evidenceCode { _ = try proof.verify(key: SigningKey.generate().publicJWK) } == .wrongKey)
            var manifest = proof
            manifest.batch = try HandToken.editingManifest(of: proof.batch) { $0["n"] = 6 }
            #expect(evidenceCode { _ = try manifest.verify(key: key) } == .badSignature)

            // A document whose path is not hashes is refused as it is read.
            guard case .object(var json) = proof.json else { throw FixtureError("proof JSON") }
            json["path"] = ["not hex"]
            #expect(evidenceCode { _ = try InclusionProof(json: .object(json)) } == .inclusionProof)
        }
    }

    @Test("after a key rotation, a record's proof names and verifies with the key that signed its batch")
    func proofAfterRotation() async throws {
        try await TestBank.with { bank in
            let device = TestDevice()
            let newKey = SigningKey.generate()
            try bank.enroll(device)
            let chain = KeyRotationTests.rotatingChain(device, to: newKey).batches
            try TamperMatrixTests.accept(bank, chain)
            let before = try bank.store.inclusionProof(device: device.id, rseq: 1)
            let after = try bank.store.inclusionProof(device: device.id, rseq: 6)
            #expect(before.deviceKey == device.key.publicJWK)
            #expect(after.deviceKey == newKey.publicJWK)
            #expect(try before.verify(key: device.key.publicJWK).payload.bseq == 1)
            #expect(try after.verify(key: newKey.publicJWK).payload.bseq == 3)
            #expect(evidenceCode { _ = try after.verify(key: device.key.publicJWK) } == .wrongKey)
            // The rotation record itself is provable, with the old key that vouched for the new one.
            let rotation = try bank.store.inclusionProof(device: device.id, rseq: 4)
            guard case .keyRotation(let k) = try rotation.verify(key: device.key.publicJWK).record else {
                Issue.record("rseq 4 is the rotation record")
                return
            }
            #expect(k.newKey == newKey.publicJWK)
        }
    }
}
