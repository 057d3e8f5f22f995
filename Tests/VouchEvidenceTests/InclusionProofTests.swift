import Testing
import VouchEvidence

@Suite struct InclusionProofTests {
    static let key = TestKeys.device
    static let records = Fixtures.everyKind

    static func verifiedBatch(_ records: [EvidenceRecord] = records) throws -> VerifiedBatch {
        let payload = BatchPayload(
            device: "acme-press-1", bseq: 9, prev: RefSHA256.hex("batch 8"), bootId: "b", bootCount: 4, sealedWallMs: 1_700_004_300_000,
            sealedMonoMs: 50_000, timeQuality: .synchronized, records: records, receipt: nil)
        return try VerifiedBatch.verify(SealedBatch.seal(payload, records: records, key: key), key: key.publicJWK)
    }

    @Test func everyRecordOfABatchIsProvenByItsProof() throws {
        let batch = try Self.verifiedBatch()
        for index in Self.records.indices {
            let proof = try InclusionProof.make(for: batch, index: index, deviceKey: Self.key.publicJWK, receipt: "rcpt.token.x")
            #expect(proof.batch == batch.token)
            #expect(proof.index == index)
            #expect(proof.record == Self.records[index].canonicalBytes)
            #expect(proof.path == referencePath(index, batch.recordBytes[...]))
            #expect(proof.receipt == "rcpt.token.x")
            let (payload, record) = try proof.verify(key: Self.key.publicJWK)
            #expect(payload == batch.payload)
            #expect(record == Self.records[index])
        }
    }

    @Test func aBatchOfOneRecordHasAnEmptyPath() throws {
        let batch = try Self.verifiedBatch([Fixtures.heartbeat])
        let proof = try InclusionProof.make(for: batch, index: 0, deviceKey: Self.key.publicJWK, receipt: nil)
        #expect(proof.path.isEmpty)
        #expect(try proof.verify(key: Self.key.publicJWK).record == Fixtures.heartbeat)
    }

    @Test func jsonRoundTripsAndHasAStableLayout() throws {
        let batch = try Self.verifiedBatch()
        let proof = try InclusionProof.make(for: batch, index: 5, deviceKey: Self.key.publicJWK, receipt: nil)
        #expect(try InclusionProof(json: proof.json) == proof)
        let bytes = CanonicalJSON.encode(proof.json)
        #expect(try InclusionProof(json: CanonicalJSON.decode(bytes)) == proof)
        let o = try #require(proof.json.objectValue)
        #expect(Set(o.keys) == ["batch", "index", "jwk", "path", "receipt", "record", "type", "v"])
        #expect(o["v"] == 1)
        #expect(o["type"] == "vouch-inclusion-proof")
        #expect(InclusionProof.type == "vouch-inclusion-proof")
        #expect(o["index"] == 5)
        #expect(o["receipt"] == .null)
        #expect(o["record"] == .string(CanonicalJSON.string(Self.records[5].json)))
        #expect(o["path"] == .array(proof.path.map { .string(refHex($0)) }))
        #expect(o["jwk"] == Self.key.publicJWK.json)
        let text = CanonicalJSON.string(proof.json)
        #expect(text.hasPrefix(#"{"batch":"\#(batch.token)","index":5,"jwk":{"crv":"P-256""#))
        #expect(text.hasSuffix(#","type":"vouch-inclusion-proof","v":1}"#))

        let withReceipt = try InclusionProof.make(for: batch, index: 0, deviceKey: Self.key.publicJWK, receipt: "a.b.c")
        #expect(try InclusionProof(json: withReceipt.json) == withReceipt)
        #expect(withReceipt.json.objectValue?["receipt"] == "a.b.c")
    }

    @Test func proofMadeByTheBankVerifiesWithTheEnrolledKeyOnly() throws {
        let proof = try InclusionProof.make(for: try Self.verifiedBatch(), index: 2, deviceKey: Self.key.publicJWK, receipt: nil)
        #expect(evidenceError { try proof.verify(key: TestKeys.other.publicJWK) }?.code == .wrongKey)
        // The key inside the document does not matter: the relying party brings its own.
        var swapped = proof
        swapped.deviceKey = TestKeys.other.publicJWK
        #expect(try swapped.verify(key: Self.key.publicJWK).record == Self.records[2])
    }

    @Test func indexOutOfRangeCannotBeMade() throws {
        let batch = try Self.verifiedBatch()
        for index in [-1, Self.records.count, Self.records.count + 5] {
            let error = evidenceError { try InclusionProof.make(for: batch, index: index, deviceKey: Self.key.publicJWK, receipt: nil) }
            #expect(error?.code == .inclusionProof, "index \(index)")
        }
    }

    // MARK: tampering

    static func proof(_ index: Int = 3) throws -> InclusionProof {
        try InclusionProof.make(for: try verifiedBatch(), index: index, deviceKey: key.publicJWK, receipt: nil)
    }

    func code(_ proof: InclusionProof) -> EvidenceError.Code? {
        evidenceError { try proof.verify(key: Self.key.publicJWK) }?.code
    }

    @Test func untamperedProofVerifies() throws {
        #expect(code(try Self.proof()) == nil)
    }

    @Test func anotherIndexIsRefused() throws {
        for index in [0, 2, 4, 13, 14, 100, -1] {
            var p = try Self.proof()
            p.index = index
            #expect(code(p) == .inclusionProof, "index \(index)")
        }
    }

    @Test func aTamperedPathIsRefused() throws {
        let genuine = try Self.proof()
        for i in genuine.path.indices {
            var p = genuine
            p.path[i][0] ^= 0x80
            #expect(code(p) == .inclusionProof, "sibling \(i)")
        }
        var short = genuine
        short.path.removeLast()
        #expect(code(short) == .inclusionProof)
        var long = genuine
        long.path.append(genuine.path[0])
        #expect(code(long) == .inclusionProof)
        var reversed = genuine
        reversed.path.reverse()
        #expect(code(reversed) == .inclusionProof)
    }

    @Test func anotherRecordAtThatPositionIsRefused() throws {
        var p = try Self.proof(3)
        p.record = Self.records[4].canonicalBytes
        #expect(code(p) == .inclusionProof)
        // The record edited in place (still canonical, still a valid record).
        var edited = try Self.proof(0)
        edited.record = Array(String(decoding: edited.record, as: UTF8.self).replacingOccurrences(of: ",60,0,", with: ",61,0,").utf8)
        #expect(edited.record != Self.records[0].canonicalBytes)
        #expect(code(edited) == .inclusionProof)
    }

    @Test func aNonCanonicalRecordIsAnInvalidProof() throws {
        var p = try Self.proof(0)
        p.record = Array(("[ " + String(decoding: p.record.dropFirst(), as: UTF8.self)).utf8)
        // The spec: a disclosed record that is not canonical JSON is E_PROOF_INVALID.
        #expect(code(p) == .inclusionProof)
    }

    @Test func aManifestFromAnotherBatchIsRefused() throws {
        var p = try Self.proof(1)
        p.batch = try Self.verifiedBatch(Array(Self.records.reversed())).token
        #expect(code(p) == .inclusionProof)
    }

    static let malformedDocuments: [(String, @Sendable (inout [String: JSONValue]) -> Void)] = [
        ("version 2", { $0["v"] = 2 }),
        ("no version", { $0["v"] = nil }),
        ("another type", { $0["type"] = "vouch-receipt" }),
        ("no batch", { $0["batch"] = nil }),
        ("no index", { $0["index"] = nil }),
        ("index a string", { $0["index"] = "3" }),
        ("no record", { $0["record"] = nil }),
        ("record an array", { $0["record"] = ["sum"] }),
        ("no path", { $0["path"] = nil }),
        ("path element not hex", { $0["path"] = ["zz"] }),
        ("path element of 31 bytes", { $0["path"] = .array([.string(String(repeating: "ab", count: 31))]) }),
        ("path element upper-case", { $0["path"] = .array([.string(String(repeating: "AB", count: 32))]) }),
        ("path element a number", { $0["path"] = [1] }),
        ("no jwk", { $0["jwk"] = nil }),
        ("receipt a number", { $0["receipt"] = 1 }),
    ]

    @Test(arguments: malformedDocuments.indices)
    func malformedDocumentsAreRefused(_ index: Int) throws {
        let (name, edit) = Self.malformedDocuments[index]
        var o = try #require(try Self.proof().json.objectValue)
        edit(&o)
        #expect(evidenceError { try InclusionProof(json: .object(o)) }?.code == .inclusionProof, "\(name)")
    }

    @Test func aJWKThatIsNotAKeyIsMalformedKey() throws {
        var o = try #require(try Self.proof().json.objectValue)
        o["jwk"] = ["kty": "RSA"]
        #expect(evidenceError { try InclusionProof(json: .object(o)) }?.code == .malformedKey)
    }

    @Test func aMissingReceiptMemberReadsAsNull() throws {
        var o = try #require(try Self.proof().json.objectValue)
        o["receipt"] = nil
        #expect(try InclusionProof(json: .object(o)).receipt == nil)
    }
}
