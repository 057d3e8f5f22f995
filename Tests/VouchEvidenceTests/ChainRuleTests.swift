import Testing
import VouchEvidence

@Suite struct ChainRuleTests {
    static let h1 = RefSHA256.hex("batch 1")
    static let h2 = RefSHA256.hex("batch 2")
    static let h3 = RefSHA256.hex("batch 3")
    static let other = RefSHA256.hex("something else")
    static let zeros = String(repeating: "0", count: 64)
    static let head3 = ChainHead(bseq: 3, signingInputHash: h3)

    struct Case: Sendable, CustomTestStringConvertible {
        let name: String
        let bseq: Int64
        let prev: String
        let hash: String
        let head: ChainHead?
        let accepted: String?
        let verdict: ChainVerdict
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(name: "first batch linking to zeros extends", bseq: 1, prev: zeros, hash: h1, head: nil, accepted: nil, verdict: .extends),
        Case(name: "first batch with another prev", bseq: 1, prev: other, hash: h1, head: nil, accepted: nil, verdict: .prevMismatch(expected: zeros)),
        Case(name: "first batch received as bseq 2", bseq: 2, prev: h1, hash: h2, head: nil, accepted: nil, verdict: .gap(expected: 1)),
        Case(name: "next batch extends", bseq: 4, prev: h3, hash: other, head: head3, accepted: nil, verdict: .extends),
        Case(name: "next batch linking to an older batch", bseq: 4, prev: h2, hash: other, head: head3, accepted: nil, verdict: .prevMismatch(expected: h3)),
        Case(name: "next batch linking to zeros", bseq: 4, prev: zeros, hash: other, head: head3, accepted: nil, verdict: .prevMismatch(expected: h3)),
        Case(name: "head resent is a duplicate", bseq: 3, prev: h2, hash: h3, head: head3, accepted: h3, verdict: .duplicate),
        Case(name: "older batch resent is a duplicate", bseq: 2, prev: h1, hash: h2, head: head3, accepted: h2, verdict: .duplicate),
        Case(name: "different content at an accepted bseq is a fork", bseq: 2, prev: h1, hash: other, head: head3, accepted: h2, verdict: .fork(bseq: 2)),
        Case(name: "different content at the head's bseq is a fork", bseq: 3, prev: h2, hash: other, head: head3, accepted: h3, verdict: .fork(bseq: 3)),
        Case(name: "bseq 1 again with other content is a fork", bseq: 1, prev: zeros, hash: other, head: head3, accepted: h1, verdict: .fork(bseq: 1)),
        Case(name: "old bseq the bank has no hash for is a fork", bseq: 2, prev: h1, hash: h2, head: head3, accepted: nil, verdict: .fork(bseq: 2)),
        Case(name: "skipping one bseq is a gap", bseq: 5, prev: other, hash: other, head: head3, accepted: nil, verdict: .gap(expected: 4)),
        Case(name: "far ahead is a gap", bseq: 100, prev: h3, hash: other, head: head3, accepted: nil, verdict: .gap(expected: 4)),
    ]

    @Test(arguments: cases)
    func classify(_ c: Case) {
        let verdict = ChainRule.classify(bseq: c.bseq, prev: c.prev, signingInputHash: c.hash, head: c.head, acceptedHash: c.accepted)
        #expect(verdict == c.verdict)
    }

    @Test func sealedBatchesChainEndToEnd() throws {
        let key = TestKeys.device
        func make(_ bseq: Int64, _ prev: String) -> BatchPayload {
            BatchPayload(
                device: "d", bseq: bseq, prev: prev, bootId: "b", bootCount: 1, sealedWallMs: bseq, sealedMonoMs: bseq,
                timeQuality: .synchronized, records: [Fixtures.summary], receipt: nil)
        }
        func sealed(_ payload: BatchPayload) -> SealedBatch { SealedBatch.seal(payload, records: [Fixtures.summary], key: key) }
        let first = try VerifiedBatch.verify(sealed(make(1, Digest256.zeroHex)), key: key.publicJWK)
        #expect(ChainRule.classify(bseq: 1, prev: first.payload.prev, signingInputHash: first.signingInputHash, head: nil, acceptedHash: nil) == .extends)
        let head = ChainHead(bseq: 1, signingInputHash: first.signingInputHash)
        let second = try VerifiedBatch.verify(sealed(make(2, first.signingInputHash)), key: key.publicJWK)
        #expect(ChainRule.classify(bseq: 2, prev: second.payload.prev, signingInputHash: second.signingInputHash, head: head, acceptedHash: nil) == .extends)
        // The same batch 1 re-signed (new ECDSA signature, same signing input) is still a duplicate.
        let again = try VerifiedBatch.verify(sealed(make(1, Digest256.zeroHex)), key: key.publicJWK)
        #expect(again.token != first.token)
        let head2 = ChainHead(bseq: 2, signingInputHash: second.signingInputHash)
        #expect(ChainRule.classify(bseq: 1, prev: again.payload.prev, signingInputHash: again.signingInputHash, head: head2, acceptedHash: first.signingInputHash) == .duplicate)
    }
}
