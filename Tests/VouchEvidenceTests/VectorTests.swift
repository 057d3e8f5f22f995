import Foundation
import Testing
import VouchEvidence

/// The spec's test vectors (VouchEvidence.docc/Resources/vectors.json) are what this code produces:
/// every deterministic byte is rebuilt and compared, and every stored signature verifies. When the
/// format changes on purpose, regenerate with `vouch-bench vectors` and say so in the spec.
@Suite struct VectorTests {
    static let path = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Sources/VouchEvidence/VouchEvidence.docc/Resources/vectors.json").path

    func stored() throws -> [String: JSONValue] {
        let data = try #require(FileManager.default.contents(atPath: Self.path), "vectors.json missing at \(Self.path)")
        return try #require(try CanonicalJSON.decode(Array(data)).objectValue)
    }

    @Test func keysAreTheFixedOnes() throws {
        let keys = try #require(try stored()["keys"]?.objectValue)
        for (name, key) in [("device", TestVectors.deviceKey), ("rotated_device", TestVectors.rotatedKey), ("bank", TestVectors.bankKey)] {
            let doc = try #require(keys[name]?.objectValue)
            #expect(doc["d"]?.stringValue == key.jwkD, "\(name)")
            #expect(doc["kid"]?.stringValue == key.kid, "\(name)")
            #expect(try PublicJWK(json: try #require(doc["jwk"])) == key.publicJWK, "\(name)")
        }
    }

    @Test func everyRecordLineAndLeafHashIsWhatTheEncoderWrites() throws {
        let records = try #require(try stored()["records"]?.arrayValue)
        let built = TestVectors.records
        #expect(records.count == built.count)
        #expect(Set(built.map(\.kind)) == Set(EvidenceRecord.kinds), "one record of every kind")
        for (doc, record) in zip(records, built) {
            let line = try #require(doc.objectValue?["line"]?.stringValue)
            #expect(line == String(decoding: record.canonicalBytes, as: UTF8.self))
            #expect(try EvidenceRecord(json: try CanonicalJSON.decode(Array(line.utf8))) == record)
            #expect(doc.objectValue?["leaf_hash"]?.stringValue == Hex.encode(Merkle.leafHash(Array(line.utf8))))
        }
    }

    @Test func batchesMatchByteForByteExceptSignaturesAndVerify() throws {
        let docs = try #require(try stored()["batches"]?.arrayValue)
        let built = TestVectors.batches
        #expect(docs.count == 3)
        var prev = Digest256.zeroHex
        var key = TestVectors.deviceKey.publicJWK
        for (doc, batch) in zip(docs, built) {
            let o = try #require(doc.objectValue)
            let token = try #require(o["token"]?.stringValue)
            let signingInput = String(token[..<(try #require(token.lastIndex(of: ".")))])
            let rebuilt = String(batch.sealed.token[..<(try #require(batch.sealed.token.lastIndex(of: ".")))])
            #expect(signingInput == rebuilt, "batch \(batch.payload.bseq): header and manifest are deterministic")
            #expect(o["signing_input"]?.stringValue == signingInput)
            #expect(o["signing_input_sha256"]?.stringValue == Digest256.sha256Hex(Array(signingInput.utf8)))
            #expect(o["manifest"]?.stringValue == String(decoding: CanonicalJSON.encode(batch.payload.json), as: UTF8.self))
            #expect(o["merkle_root"]?.stringValue == batch.payload.root)
            #expect(batch.payload.prev == prev)
            let file = try #require(o["file"]?.stringValue)
            let verified = try VerifiedBatch.verify(file: Array(file.utf8), key: key)
            #expect(verified.payload == batch.payload)
            #expect(try verified.typedRecords() == batch.records)
            prev = verified.signingInputHash
            for case .keyRotation(let rotation) in batch.records {
                try rotation.verifyProof(device: TestVectors.device, oldKid: key.thumbprint)
                key = rotation.newKey
            }
            // The receipt: deterministic payload, verifying signature, named in the next manifest.
            let receipt = try #require(o["receipt"]?.objectValue)
            #expect(receipt["payload"]?.stringValue == String(decoding: CanonicalJSON.encode(batch.receiptBody.json), as: UTF8.self))
            let (parsed, hash) = try Receipt.verify(try #require(receipt["token"]?.stringValue), bankKey: TestVectors.bankKey.publicJWK)
            #expect(parsed == batch.receiptBody)
            #expect(receipt["signing_input_sha256"]?.stringValue == hash)
        }
        #expect(key == TestVectors.rotatedKey.publicJWK, "batch 3 verified with the rotated key")
        #expect(built[1].payload.receipt == built[0].receipt.signingInputHash)
    }

    @Test func streamAndInclusionProofVerify() throws {
        let doc = try stored()
        let stream = try #require(doc["stream"]?.stringValue)
        let entries = try BatchFile.decodeStream(Array(stream.utf8))
        #expect(entries.map(\.records.count) == [7, 3, 1])
        let proof = try InclusionProof(json: try #require(doc["inclusion_proof"]))
        let (payload, record) = try proof.verify(key: TestVectors.deviceKey.publicJWK)
        #expect(payload.bseq == 1)
        #expect(record == TestVectors.records[3])
        #expect(doc["empty_tree_root"]?.stringValue == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    }
}
