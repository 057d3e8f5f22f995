import Testing
import VouchEvidence

@Suite struct BatchTests {
    let key = TestKeys.device

    func payload(bseq: Int64 = 1, prev: String = Digest256.zeroHex, records: [EvidenceRecord] = Fixtures.all, receipt: String? = nil) -> BatchPayload {
        BatchPayload(
            device: "acme-press-1", bseq: bseq, prev: prev, bootId: "7c1e0b2a", bootCount: 3, sealedWallMs: 1_700_000_200_000,
            sealedMonoMs: 201_000, timeQuality: .synchronized, records: records, receipt: receipt)
    }

    @Test func sealThenVerifyRoundTrips() throws {
        let original = payload(receipt: RefSHA256.hex("receipt"))
        let sealed = SealedBatch.seal(original, key: key)
        #expect(sealed.bseq == 1)
        let verified = try VerifiedBatch.verify(sealed.token, key: key.publicJWK)
        #expect(verified.payload == original)
        #expect(verified.token == sealed.token)
        #expect(verified.signingInputHash == sealed.signingInputHash)
        #expect(try verified.payload.typedRecords() == Fixtures.all)
        #expect(verified.payload.receipt == RefSHA256.hex("receipt"))
    }

    @Test func signingInputHashIsSHA256OfHeaderDotPayload() throws {
        let sealed = SealedBatch.seal(payload(), key: key)
        let lastDot = try #require(sealed.token.lastIndex(of: "."))
        #expect(sealed.signingInputHash == RefSHA256.hex(String(sealed.token[..<lastDot])))
    }

    @Test func rootIsMerkleRootOfCanonicalRecordBytes() {
        let p = payload()
        let leaves = Fixtures.all.map { CanonicalJSON.encode($0.json) }
        #expect(p.root == refHex(referenceMTH(leaves[...])))
        #expect(p.records == Fixtures.all.map(\.json))
    }

    @Test func emptyBatchHasEmptyTreeRootAndCanonicalLayout() throws {
        let p = payload(records: [])
        #expect(p.root == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        let zeros = String(repeating: "0", count: 64)
        #expect(
            CanonicalJSON.string(p.json)
                == #"{"boot":{"id":"7c1e0b2a","n":3},"bseq":1,"dev":"acme-press-1","prev":"\#(zeros)","rcpt":null,"recs":[],"root":"\#(p.root)","t":{"mono":201000,"tq":"sync","wall":1700000200000},"v":1}"#)
        #expect(try BatchPayload(bytes: CanonicalJSON.encode(p.json)) == p)
    }

    @Test func firstBatchLinksToZeroHash() {
        #expect(Digest256.zeroHex == String(repeating: "0", count: 64))
        #expect(payload().prev == Digest256.zeroHex)
    }

    @Test func secondBatchChainsToFirstSigningInputHash() throws {
        let first = SealedBatch.seal(payload(), key: key)
        let second = SealedBatch.seal(payload(bseq: 2, prev: first.signingInputHash, records: [Fixtures.summary]), key: key)
        let verified = try VerifiedBatch.verify(second.token, key: key.publicJWK)
        #expect(verified.payload.prev == first.signingInputHash)
        #expect(verified.payload.bseq == 2)
    }

    // MARK: tampering (payloads re-signed with the genuine key, so only the content checks can refuse them)

    func resigned(_ json: JSONValue) -> String {
        JWS.sign(payload: CanonicalJSON.encode(json), key: key, typ: BatchPayload.jwsType).token
    }

    func edited(_ edit: (inout [String: JSONValue]) -> Void) -> String {
        var o = payload().json.objectValue!
        edit(&o)
        return resigned(.object(o))
    }

    func code(_ token: String) -> EvidenceError.Code? {
        evidenceError { try VerifiedBatch.verify(token, key: key.publicJWK) }?.code
    }

    @Test func rootThatDoesNotMatchRecordsIsMerkleMismatch() {
        #expect(code(edited { $0["root"] = .string(RefSHA256.hex("other")) }) == .merkleMismatch)
        // A record changed after the root was computed.
        #expect(code(edited { o in
            var recs = o["recs"]!.arrayValue!
            var first = recs[0].arrayValue!
            first[10] = 61  // count
            recs[0] = .array(first)
            o["recs"] = .array(recs)
        }) == .merkleMismatch)
        // A record dropped.
        #expect(code(edited { $0["recs"] = .array(Array($0["recs"]!.arrayValue!.dropLast())) }) == .merkleMismatch)
        // Records reordered.
        #expect(code(edited { $0["recs"] = .array($0["recs"]!.arrayValue!.reversed()) }) == .merkleMismatch)
    }

    @Test func versionTwoIsUnsupported() {
        #expect(code(edited { $0["v"] = 2 }) == .unsupportedVersion)
        #expect(code(edited { $0["v"] = 0 }) == .unsupportedVersion)
    }

    static let malformedEdits: [(String, @Sendable (inout [String: JSONValue]) -> Void)] = [
        ("missing v", { $0["v"] = nil }),
        ("v a string", { $0["v"] = "1" }),
        ("missing dev", { $0["dev"] = nil }),
        ("empty dev", { $0["dev"] = "" }),
        ("missing bseq", { $0["bseq"] = nil }),
        ("bseq 0", { $0["bseq"] = 0 }),
        ("bseq negative", { $0["bseq"] = -1 }),
        ("missing prev", { $0["prev"] = nil }),
        ("prev not hex", { $0["prev"] = .string(String(repeating: "g", count: 64)) }),
        ("prev upper-case hex", { $0["prev"] = .string(String(repeating: "A", count: 64)) }),
        ("prev 63 digits", { $0["prev"] = .string(String(repeating: "0", count: 63)) }),
        ("prev 65 digits", { $0["prev"] = .string(String(repeating: "0", count: 65)) }),
        ("prev null", { $0["prev"] = nil; $0["prev"] = .null }),
        ("missing boot", { $0["boot"] = nil }),
        ("boot without n", { $0["boot"] = ["id": "x"] }),
        ("missing t", { $0["t"] = nil }),
        ("t with unknown tq", { $0["t"] = ["wall": 1, "mono": 2, "tq": "gps"] }),
        ("t without wall", { $0["t"] = ["mono": 2, "tq": "sync"] }),
        ("missing recs", { $0["recs"] = nil }),
        ("recs an object", { $0["recs"] = [:] }),
        ("missing root", { $0["root"] = nil }),
        ("root not hex", { $0["root"] = "root" }),
        ("missing rcpt", { $0["rcpt"] = nil }),
        ("rcpt not a hash", { $0["rcpt"] = "abc" }),
        ("rcpt an integer", { $0["rcpt"] = 1 }),
    ]

    @Test(arguments: malformedEdits.indices)
    func malformedPayloadFieldsAreRefused(_ index: Int) {
        let (name, edit) = Self.malformedEdits[index]
        #expect(code(edited(edit)) == .malformedPayload, "\(name)")
    }

    @Test func payloadThatIsNotAnObjectIsMalformed() {
        #expect(code(resigned(["v", 1])) == .malformedPayload)
    }

    @Test func payloadWithAFloatIsMalformedJSON() {
        let bytes = Array(#"{"v":1.0}"#.utf8)
        let token = JWS.sign(payload: bytes, key: key, typ: BatchPayload.jwsType).token
        #expect(code(token) == .malformedJSON)
    }

    @Test func payloadSignedAsAnotherTypeIsRefused() {
        let token = JWS.sign(payload: CanonicalJSON.encode(payload().json), key: key, typ: Receipt.jwsType).token
        #expect(code(token) == .malformedJWS)
    }

    @Test func batchFromAnotherDeviceKeyIsRefused() {
        let sealed = SealedBatch.seal(payload(), key: TestKeys.other)
        #expect(code(sealed.token) == .wrongKey)
    }

    @Test func typedRecordsRefusesUndefinedRecordsThatTheRootCovers() throws {
        // The root is right, so the payload parses; the record itself is not a v1 record.
        var o = payload(records: []).json.objectValue!
        let recs: [JSONValue] = [["gps", 1, 3, 0, 0, "sync"]]
        o["recs"] = .array(recs)
        o["root"] = .string(refHex(referenceMTH(recs.map { CanonicalJSON.encode($0) }[...])))
        let verified = try VerifiedBatch.verify(resigned(.object(o)), key: key.publicJWK)
        #expect(evidenceError { try verified.payload.typedRecords() }?.code == .malformedRecord)
    }
}
