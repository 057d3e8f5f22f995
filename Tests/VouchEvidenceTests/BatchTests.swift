import Testing
import VouchEvidence

@Suite struct BatchTests {
    let key = TestKeys.device

    func payload(bseq: Int64 = 1, prev: String = Digest256.zeroHex, records: [EvidenceRecord] = Fixtures.all, receipt: String? = nil) -> BatchPayload {
        BatchPayload(
            device: "acme-press-1", bseq: bseq, prev: prev, bootId: "7c1e0b2a", bootCount: 3, sealedWallMs: 1_700_000_200_000,
            sealedMonoMs: 201_000, timeQuality: .synchronized, records: records, receipt: receipt)
    }

    func seal(_ records: [EvidenceRecord] = Fixtures.all, receipt: String? = nil) -> SealedBatch {
        SealedBatch.seal(payload(records: records, receipt: receipt), records: records, key: key)
    }

    @Test func sealThenVerifyRoundTrips() throws {
        let original = payload(receipt: RefSHA256.hex("receipt"))
        let sealed = SealedBatch.seal(original, records: Fixtures.all, key: key)
        #expect(sealed.bseq == 1)
        #expect(sealed.records == Fixtures.all.map(\.canonicalBytes))
        let verified = try VerifiedBatch.verify(sealed, key: key.publicJWK)
        #expect(verified.payload == original)
        #expect(verified.payload.recordCount == 4)
        #expect(verified.token == sealed.token)
        #expect(verified.signingInputHash == sealed.signingInputHash)
        #expect(verified.kid == key.kid)
        #expect(verified.recordBytes == Fixtures.all.map(\.canonicalBytes))
        #expect(verified.records == Fixtures.all.map(\.json))
        #expect(try verified.typedRecords() == Fixtures.all)
        #expect(verified.payload.receipt == RefSHA256.hex("receipt"))
    }

    @Test func everyKindSealsAndVerifiesThroughTheBatchFile() throws {
        let sealed = seal(Fixtures.everyKind)
        let fromFile = try VerifiedBatch.verify(file: sealed.file, key: key.publicJWK)
        #expect(try fromFile.typedRecords() == Fixtures.everyKind)
        #expect(fromFile.payload.recordCount == Int64(Fixtures.everyKind.count))
        let fromParts = try VerifiedBatch.verify(token: sealed.token, records: sealed.records, key: key.publicJWK)
        #expect(fromParts.payload == fromFile.payload)
        #expect(fromParts.signingInputHash == sealed.signingInputHash)
    }

    @Test func batchFileIsTokenThenOneRecordPerLine() throws {
        let sealed = seal()
        let expected = sealed.token + "\n" + Fixtures.all.map { CanonicalJSON.string($0.json) + "\n" }.joined()
        #expect(sealed.fileText == expected)
        #expect(sealed.file == Array(expected.utf8))
        #expect(BatchFile.encode(token: sealed.token, records: sealed.records) == sealed.file)
        #expect(BatchFile.mediaType == "application/vouch-batch")
        // The token line carries only the manifest: no record text inside the signed payload.
        let payloadPart = sealed.token.split(separator: ".")[1]
        let manifest = String(decoding: refBase64URLDecode(payloadPart), as: UTF8.self)
        #expect(!manifest.contains("meter.power"))
        #expect(manifest.contains(#""n":4"#))
    }

    @Test func emptyBatchIsJustTheTokenLine() throws {
        let sealed = seal([])
        #expect(sealed.fileText == sealed.token + "\n")
        let verified = try VerifiedBatch.verify(file: sealed.file, key: key.publicJWK)
        #expect(verified.payload.recordCount == 0)
        #expect(verified.records.isEmpty)
        #expect(try verified.typedRecords().isEmpty)
    }

    @Test func signingInputHashIsSHA256OfHeaderDotPayload() throws {
        let sealed = seal()
        let lastDot = try #require(sealed.token.lastIndex(of: "."))
        #expect(sealed.signingInputHash == RefSHA256.hex(String(sealed.token[..<lastDot])))
    }

    @Test func rootIsMerkleRootOfCanonicalRecordBytes() {
        let p = payload()
        let leaves = Fixtures.all.map { CanonicalJSON.encode($0.json) }
        #expect(p.root == refHex(referenceMTH(leaves[...])))
        #expect(p.recordCount == 4)
    }

    @Test func emptyBatchHasEmptyTreeRootAndCanonicalLayout() throws {
        let p = payload(records: [])
        #expect(p.root == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(p.recordCount == 0)
        let zeros = String(repeating: "0", count: 64)
        #expect(
            CanonicalJSON.string(p.json)
                == #"{"boot":{"id":"7c1e0b2a","n":3},"bseq":1,"dev":"acme-press-1","n":0,"prev":"\#(zeros)","rcpt":null,"root":"\#(p.root)","t":{"mono":201000,"tq":"sync","wall":1700000200000},"v":1}"#)
        #expect(try BatchPayload(bytes: CanonicalJSON.encode(p.json)) == p)
    }

    @Test func manifestLayoutWithRecordsAndReceipt() throws {
        let rcpt = RefSHA256.hex("receipt")
        var p = payload(bseq: 7, prev: RefSHA256.hex("batch 6"), receipt: rcpt)
        p.timeQuality = .stepped
        let root = refHex(referenceMTH(Fixtures.all.map(\.canonicalBytes)[...]))
        #expect(
            CanonicalJSON.string(p.json)
                == #"{"boot":{"id":"7c1e0b2a","n":3},"bseq":7,"dev":"acme-press-1","n":4,"prev":"\#(RefSHA256.hex("batch 6"))","rcpt":"\#(rcpt)","root":"\#(root)","t":{"mono":201000,"tq":"step","wall":1700000200000},"v":1}"#)
        #expect(try BatchPayload(bytes: CanonicalJSON.encode(p.json)) == p)
    }

    @Test func firstBatchLinksToZeroHash() {
        #expect(Digest256.zeroHex == String(repeating: "0", count: 64))
        #expect(payload().prev == Digest256.zeroHex)
    }

    @Test func secondBatchChainsToFirstSigningInputHash() throws {
        let first = seal()
        let second = SealedBatch.seal(payload(bseq: 2, prev: first.signingInputHash, records: [Fixtures.summary]), records: [Fixtures.summary], key: key)
        let verified = try VerifiedBatch.verify(second, key: key.publicJWK)
        #expect(verified.payload.prev == first.signingInputHash)
        #expect(verified.payload.bseq == 2)
    }

    // MARK: tampering with the records (the signed manifest is genuine, so only the record checks can refuse)

    func code(file: [UInt8]) -> EvidenceError.Code? {
        evidenceError { try VerifiedBatch.verify(file: file, key: key.publicJWK) }?.code
    }

    /// The batch file with its record lines changed by `edit` (the token line is kept as it is).
    func editedLines(_ edit: (inout [String]) -> Void) -> [UInt8] {
        let sealed = seal()
        var lines = sealed.records.map { String(decoding: $0, as: UTF8.self) }
        edit(&lines)
        return Array((sealed.token + "\n" + lines.map { $0 + "\n" }.joined()).utf8)
    }

    @Test func untouchedFileVerifies() {
        #expect(code(file: editedLines { _ in }) == nil)
    }

    @Test func recordLineEditedIsMerkleMismatch() {
        // The first summary's count, 60 → 61: still canonical JSON, still a valid record.
        let file = editedLines { lines in lines[0] = lines[0].replacingOccurrences(of: ",60,0,", with: ",61,0,") }
        #expect(String(decoding: file, as: UTF8.self).contains(",61,0,"))
        let error = evidenceError { try VerifiedBatch.verify(file: file, key: key.publicJWK) }
        #expect(error?.code == .merkleMismatch)
        #expect(error?.message.contains("batch 1") == true)
    }

    @Test func recordLinesReorderedIsMerkleMismatch() {
        #expect(code(file: editedLines { $0.reverse() }) == .merkleMismatch)
        #expect(code(file: editedLines { $0.swapAt(0, 1) }) == .merkleMismatch)
    }

    @Test func recordReplacedByAnotherValidRecordIsMerkleMismatch() {
        #expect(code(file: editedLines { $0[3] = CanonicalJSON.string(Fixtures.heartbeat.json) }) == .merkleMismatch)
    }

    @Test func recordLineDroppedOrAddedIsACountMismatch() {
        let dropped = evidenceError { try VerifiedBatch.verify(file: editedLines { $0.removeLast() }, key: key.publicJWK) }
        #expect(dropped?.code == .malformedBatch)
        #expect(dropped?.message.contains("promises 4 records, the file holds 3") == true, "\(String(describing: dropped))")
        #expect(code(file: editedLines { $0.removeFirst() }) == .malformedBatch)
        #expect(code(file: editedLines { $0.append($0[0]) }) == .malformedBatch)
        #expect(code(file: editedLines { $0.removeAll() }) == .malformedBatch)
    }

    @Test func recordDroppedWithAManifestThatAgreesOnTheCountIsMerkleMismatch() {
        // A manifest re-signed to promise 3 records, still over the root of the 4.
        var o = payload().json.objectValue!
        o["n"] = 3
        let token = resigned(.object(o))
        let records = Array(Fixtures.all.map(\.canonicalBytes).dropLast())
        #expect(evidenceError { try VerifiedBatch.verify(token: token, records: records, key: key.publicJWK) }?.code == .merkleMismatch)
    }

    @Test func recordLineThatIsNotJSONIsMalformedRecord() {
        let error = evidenceError { try VerifiedBatch.verify(file: editedLines { $0[1] = "[1," }, key: key.publicJWK) }
        #expect(error?.code == .malformedRecord)
        #expect(error?.message.contains("record 2 of batch 1") == true, "\(String(describing: error))")
    }

    // MARK: non-canonical record lines (signed over their exact bytes, so only canonical form can refuse them)

    /// A batch whose manifest commits (root and n) to exactly `lines`.
    func batchCommitting(to lines: [String]) -> (token: String, records: [[UInt8]]) {
        let records = lines.map { Array($0.utf8) }
        var o = payload(records: []).json.objectValue!
        o["n"] = .int(Int64(records.count))
        o["root"] = .string(refHex(referenceMTH(records[...])))
        return (resigned(.object(o)), records)
    }

    static let nonCanonical: [(String, String)] = [
        ("space after the bracket", #"[ "sum",1,3,1000,1700000000000,"sync","meter.power",60000,"W",-1,60,0,10,20,15,18,null]"#),
        ("space after a comma", #"["sum", 1,3,1000,1700000000000,"sync","meter.power",60000,"W",-1,60,0,10,20,15,18,null]"#),
        ("trailing space", #"["sum",1,3,1000,1700000000000,"sync","meter.power",60000,"W",-1,60,0,10,20,15,18,null] "#),
        ("escaped solidus", #"["act",9,4,20000,1700003608000,"sync","release_open","j.doe",{"minutes":30,"reason":"maintenance"},"release window opened\/30 min"]"#),
        ("upper-case hex in a control escape", #"["act",9,4,20000,1700003608000,"sync","release_open","j.doe",{"minutes":30,"reason":"maintenance"},"a\u001Fb"]"#),
        ("carriage return between values", "[\"hb\",5,3,300000,1700000299000,\"sync\",300000,299000,\r2]"),
        ("tab between values", "[\"hb\",5,3,300000,1700000299000,\"sync\",300000,299000,\t2]"),
        ("unicode escape of a plain letter", #"["sum",1,3,1000,1700000000000,"sync","meter.\u0070ower",60000,"W",-1,60,0,10,20,15,18,null]"#),
        ("members out of order", #"["act",9,4,20000,1700003608000,"sync","release_open","j.doe",{"reason":"maintenance","minutes":30},"release window opened for 30 min"]"#),
        ("negative zero", #"["hb",5,3,300000,1700000299000,"sync",300000,299000,-0]"#),
    ]

    @Test(arguments: nonCanonical.indices)
    func nonCanonicalRecordLineIsRefused(_ index: Int) {
        let (name, line) = Self.nonCanonical[index]
        let batch = batchCommitting(to: [CanonicalJSON.string(Fixtures.summary.json), line])
        let error = evidenceError { try VerifiedBatch.verify(token: batch.token, records: batch.records, key: key.publicJWK) }
        #expect(error?.code == .nonCanonicalRecord, "\(name)")
        #expect(error?.message.contains("record 2 of batch 1") == true, "\(name): \(String(describing: error))")
    }

    @Test func theSameRecordsCanonicallyWrittenVerify() throws {
        // The control for the table above: the canonical forms of those records are accepted.
        let lines = [Fixtures.summary, Fixtures.action].map { CanonicalJSON.string($0.json) }
        let batch = batchCommitting(to: lines)
        let verified = try VerifiedBatch.verify(token: batch.token, records: batch.records, key: key.publicJWK)
        #expect(try verified.typedRecords() == [Fixtures.summary, Fixtures.action])
    }

    // MARK: tampering with the manifest (re-signed with the genuine key, so only the content checks can refuse)

    func resigned(_ json: JSONValue) -> String {
        JWS.sign(payload: CanonicalJSON.encode(json), key: key, typ: BatchPayload.jwsType).token
    }

    func edited(_ edit: (inout [String: JSONValue]) -> Void) -> String {
        var o = payload().json.objectValue!
        edit(&o)
        return resigned(.object(o))
    }

    /// Verifies a manifest token with the genuine records beside it.
    func code(_ token: String) -> EvidenceError.Code? {
        evidenceError { try VerifiedBatch.verify(token: token, records: Fixtures.all.map(\.canonicalBytes), key: key.publicJWK) }?.code
    }

    @Test func rootThatDoesNotMatchRecordsIsMerkleMismatch() {
        #expect(code(edited { $0["root"] = .string(RefSHA256.hex("other")) }) == .merkleMismatch)
        // The root of the records in another order.
        let reversed = Fixtures.all.reversed().map(\.canonicalBytes)
        #expect(code(edited { $0["root"] = .string(refHex(referenceMTH(reversed[...]))) }) == .merkleMismatch)
        // The control: the genuine root passes.
        #expect(code(edited { _ in }) == nil)
    }

    @Test func countThatDoesNotMatchTheRecordsIsMalformedBatch() {
        #expect(code(edited { $0["n"] = 5 }) == .malformedBatch)
        #expect(code(edited { $0["n"] = 3 }) == .malformedBatch)
        #expect(code(edited { $0["n"] = 0 }) == .malformedBatch)
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
        ("missing n", { $0["n"] = nil }),
        ("n negative", { $0["n"] = -1 }),
        ("n a string", { $0["n"] = "4" }),
        ("n null", { $0["n"] = .null }),
        ("n an array", { $0["n"] = [4] }),
        ("missing root", { $0["root"] = nil }),
        ("root not hex", { $0["root"] = "root" }),
        ("missing rcpt", { $0["rcpt"] = nil }),
        ("rcpt not a hash", { $0["rcpt"] = "abc" }),
        ("rcpt an integer", { $0["rcpt"] = 1 }),
        ("unknown member", { $0["x"] = 1 }),
        ("the old recs member", { $0["recs"] = [] }),
        ("unknown member that is null", { $0["note"] = nil; $0["note"] = .null }),
    ]

    @Test(arguments: malformedEdits.indices)
    func malformedPayloadFieldsAreRefused(_ index: Int) {
        let (name, edit) = Self.malformedEdits[index]
        #expect(code(edited(edit)) == .malformedPayload, "\(name)")
    }

    @Test func unknownMemberIsNamed() {
        var o = payload().json.objectValue!
        o["recs"] = []
        let bytes = CanonicalJSON.encode(.object(o))
        let error = evidenceError { try BatchPayload(bytes: bytes) }
        #expect(error?.code == .malformedPayload)
        #expect(error?.message.contains("\"recs\"") == true, "\(String(describing: error))")
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
        let sealed = SealedBatch.seal(payload(), records: Fixtures.all, key: TestKeys.other)
        #expect(code(sealed.token) == .wrongKey)
        #expect(code(file: sealed.file) == .wrongKey)
    }

    @Test func sealingRecordsOtherThanThePayloadsMakesABatchEveryVerifierRefuses() {
        // `seal` binds whatever records it is given; a payload built from others cannot verify.
        let sealed = SealedBatch.seal(payload(records: Fixtures.all), records: Array(Fixtures.all.reversed()), key: key)
        #expect(evidenceError { try VerifiedBatch.verify(sealed, key: key.publicJWK) }?.code == .merkleMismatch)
        let short = SealedBatch.seal(payload(records: Fixtures.all), records: [Fixtures.summary], key: key)
        #expect(evidenceError { try VerifiedBatch.verify(short, key: key.publicJWK) }?.code == .malformedBatch)
    }

    @Test func typedRecordsRefusesUndefinedRecordsThatTheRootCovers() throws {
        // The root and count are right, so the batch verifies; the record itself is not a v1 record.
        let batch = batchCommitting(to: [#"["gps",1,3,0,0,"sync"]"#])
        let verified = try VerifiedBatch.verify(token: batch.token, records: batch.records, key: key.publicJWK)
        #expect(verified.records == [["gps", 1, 3, 0, 0, "sync"]])
        let error = evidenceError { try verified.typedRecords() }
        #expect(error?.code == .malformedRecord)
        #expect(error?.message.contains("record 1 of batch 1") == true, "\(String(describing: error))")
        #expect(error?.message.contains("\"gps\"") == true)
    }
}
