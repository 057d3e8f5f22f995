import Testing
import VouchEvidence

@Suite struct ReceiptTests {
    static let logRoot = RefSHA256.hex("log root")
    let receipt = Receipt(
        device: "acme-press-1", bseq: 7, batch: RefSHA256.hex("batch 7"), deviceLogSize: 7, logIndex: 41, logSize: 42, logRoot: logRoot,
        acceptedWallMs: 1_700_000_300_000)

    @Test func signThenVerifyWithBankKeyGivesSameFields() throws {
        let signed = receipt.sign(with: TestKeys.bank)
        let (verified, hash) = try Receipt.verify(signed.token, bankKey: TestKeys.bank.publicJWK)
        #expect(verified == receipt)
        #expect(verified.device == "acme-press-1")
        #expect(verified.bseq == 7)
        #expect(verified.batch == RefSHA256.hex("batch 7"))
        #expect(verified.deviceLogSize == 7)
        #expect(verified.logIndex == 41)
        #expect(verified.logSize == 42)
        #expect(verified.logRoot == Self.logRoot)
        #expect(verified.acceptedWallMs == 1_700_000_300_000)
        #expect(hash == signed.signingInputHash)
    }

    @Test func parseUnverifiedGivesSameReceiptAndSigningInputHash() throws {
        let signed = receipt.sign(with: TestKeys.bank)
        let (parsed, hash) = try Receipt.parseUnverified(signed.token)
        #expect(parsed == receipt)
        #expect(hash == signed.signingInputHash)
        let lastDot = try #require(signed.token.lastIndex(of: "."))
        #expect(hash == RefSHA256.hex(String(signed.token[..<lastDot])))
    }

    @Test func parseUnverifiedRefusesAnotherTyp() {
        let token = JWS.sign(payload: CanonicalJSON.encode(receipt.json), key: TestKeys.bank, typ: BatchPayload.jwsType).token
        #expect(evidenceError { try Receipt.parseUnverified(token) }?.code == .malformedJWS)
    }

    @Test func verifyWithAnotherKeyFails() {
        let signed = receipt.sign(with: TestKeys.bank)
        #expect(evidenceError { try Receipt.verify(signed.token, bankKey: TestKeys.device.publicJWK) }?.code == .wrongKey)
    }

    @Test func batchTokenIsNotAReceipt() {
        let token = JWS.sign(payload: CanonicalJSON.encode(receipt.json), key: TestKeys.bank, typ: BatchPayload.jwsType).token
        #expect(evidenceError { try Receipt.verify(token, bankKey: TestKeys.bank.publicJWK) }?.code == .malformedJWS)
    }

    @Test func jsonLayoutIsStable() throws {
        #expect(
            CanonicalJSON.string(receipt.json)
                == #"{"at":1700000300000,"batch":"\#(RefSHA256.hex("batch 7"))","bseq":7,"dev":"acme-press-1","log":{"idx":41,"root":"\#(Self.logRoot)","size":42},"n":7,"v":1}"#)
        #expect(try Receipt(json: receipt.json) == receipt)
        #expect(try Receipt(json: CanonicalJSON.decode(CanonicalJSON.encode(receipt.json))) == receipt)
    }

    @Test func firstEntryOfTheLogRoundTrips() throws {
        let first = Receipt(device: "d", bseq: 1, batch: RefSHA256.hex("b1"), deviceLogSize: 1, logIndex: 0, logSize: 1, logRoot: RefSHA256.hex("r"), acceptedWallMs: 0)
        #expect(try Receipt(json: first.json) == first)
    }

    func edited(_ edit: (inout [String: JSONValue]) -> Void) -> JSONValue {
        var o = receipt.json.objectValue!
        edit(&o)
        return .object(o)
    }

    func editedLog(_ edit: (inout [String: JSONValue]) -> Void) -> JSONValue {
        edited { o in
            var log = o["log"]!.objectValue!
            edit(&log)
            o["log"] = .object(log)
        }
    }

    @Test func receiptWithWrongVersionOrMissingFieldIsMalformed() {
        #expect(evidenceError { try Receipt(json: edited { $0["v"] = 2 }) }?.code == .malformedPayload)
        let noLog = edited { $0["log"] = nil }
        #expect(evidenceError { try Receipt(json: noLog) }?.code == .malformedPayload)
        let signed = JWS.sign(payload: CanonicalJSON.encode(noLog), key: TestKeys.bank, typ: Receipt.jwsType)
        #expect(evidenceError { try Receipt.verify(signed.token, bankKey: TestKeys.bank.publicJWK) }?.code == .malformedPayload)
    }

    static let refusedEdits: [(String, @Sendable (inout [String: JSONValue]) -> Void)] = [
        ("missing dev", { $0["dev"] = nil }),
        ("missing bseq", { $0["bseq"] = nil }),
        ("missing n", { $0["n"] = nil }),
        ("missing at", { $0["at"] = nil }),
        ("batch not a hash", { $0["batch"] = "abc" }),
        ("batch upper-case", { $0["batch"] = .string(RefSHA256.hex("batch 7").uppercased()) }),
        ("log an integer (the old layout)", { $0["log"] = 7 }),
    ]

    @Test(arguments: refusedEdits.indices)
    func receiptFieldsAreChecked(_ index: Int) {
        let (name, edit) = Self.refusedEdits[index]
        #expect(evidenceError { try Receipt(json: edited(edit)) }?.code == .malformedPayload, "\(name)")
    }

    static let refusedLogEdits: [(String, @Sendable (inout [String: JSONValue]) -> Void)] = [
        ("idx equal to size", { $0["idx"] = 42 }),
        ("idx beyond size", { $0["idx"] = 43 }),
        ("idx negative", { $0["idx"] = -1 }),
        ("size 0", { $0["idx"] = 0; $0["size"] = 0 }),
        ("missing idx", { $0["idx"] = nil }),
        ("missing size", { $0["size"] = nil }),
        ("missing root", { $0["root"] = nil }),
        ("root not hex", { $0["root"] = .string(String(repeating: "z", count: 64)) }),
        ("root 63 digits", { $0["root"] = .string(String(RefSHA256.hex("x").dropLast())) }),
        ("idx a string", { $0["idx"] = "41" }),
    ]

    @Test(arguments: refusedLogEdits.indices)
    func logFieldsAreChecked(_ index: Int) {
        let (name, edit) = Self.refusedLogEdits[index]
        let error = evidenceError { try Receipt(json: editedLog(edit)) }
        #expect(error?.code == .malformedPayload, "\(name)")
        #expect(error?.message.contains("idx < size") == true, "\(name)")
    }

    @Test func idxJustBelowSizeIsAccepted() throws {
        let json = editedLog { $0["idx"] = 0 }
        #expect(try Receipt(json: json).logIndex == 0)
        // The control for the table above: idx = size − 1 is the last valid position.
        #expect(try Receipt(json: editedLog { $0["idx"] = 41 }).logIndex == 41)
    }
}
