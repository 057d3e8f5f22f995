import Testing
import VouchEvidence

@Suite struct ReceiptTests {
    let receipt = Receipt(device: "acme-press-1", bseq: 7, batch: RefSHA256.hex("batch 7"), deviceLogSize: 7, acceptedWallMs: 1_700_000_300_000)

    @Test func signThenVerifyWithBankKeyGivesSameFields() throws {
        let signed = receipt.sign(with: TestKeys.bank)
        let (verified, hash) = try Receipt.verify(signed.token, bankKey: TestKeys.bank.publicJWK)
        #expect(verified == receipt)
        #expect(verified.device == "acme-press-1")
        #expect(verified.bseq == 7)
        #expect(verified.deviceLogSize == 7)
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
                == #"{"at":1700000300000,"batch":"\#(RefSHA256.hex("batch 7"))","bseq":7,"dev":"acme-press-1","log":7,"v":1}"#)
        #expect(try Receipt(json: receipt.json) == receipt)
    }

    @Test func receiptWithWrongVersionOrMissingFieldIsMalformed() {
        var o = receipt.json.objectValue!
        o["v"] = 2
        #expect(evidenceError { try Receipt(json: .object(o)) }?.code == .malformedPayload)
        o = receipt.json.objectValue!
        o["log"] = nil
        #expect(evidenceError { try Receipt(json: .object(o)) }?.code == .malformedPayload)
        let signed = JWS.sign(payload: CanonicalJSON.encode(.object(o)), key: TestKeys.bank, typ: Receipt.jwsType)
        #expect(evidenceError { try Receipt.verify(signed.token, bankKey: TestKeys.bank.publicJWK) }?.code == .malformedPayload)
    }
}
