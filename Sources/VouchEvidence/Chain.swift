/// The chain rule: where a verified batch stands relative to what the bank already accepted from
/// the same device. Pure, so the bank and the tests apply the very same rule.
public enum ChainVerdict: Sendable, Equatable {
    /// `bseq` is the next one and `prev` links to the head: accept.
    case extends
    /// Byte-identical in effect (same signing input hash) to an accepted batch: accept again, store nothing.
    case duplicate
    /// `bseq` is beyond the next one: batches in between are missing (deleted or not yet sent).
    case gap(expected: Int64)
    /// `bseq` is the next one but `prev` is not the head's hash: the history was rewritten.
    case prevMismatch(expected: String)
    /// An accepted `bseq` signed again with different content: the device equivocates.
    case fork(bseq: Int64)
}

public struct ChainHead: Sendable, Equatable {
    public let bseq: Int64
    public let signingInputHash: String
    public init(bseq: Int64, signingInputHash: String) {
        self.bseq = bseq
        self.signingInputHash = signingInputHash
    }
}

public enum ChainRule {
    /// - Parameters:
    ///   - head: the last accepted batch of this device, nil before the first.
    ///   - acceptedHash: the signing input hash accepted at `batch.bseq`, when `bseq` ≤ head.
    public static func classify(bseq: Int64, prev: String, signingInputHash: String, head: ChainHead?, acceptedHash: String?) -> ChainVerdict {
        let headSeq = head?.bseq ?? 0
        if bseq <= headSeq {
            return acceptedHash == signingInputHash ? .duplicate : .fork(bseq: bseq)
        }
        if bseq > headSeq + 1 { return .gap(expected: headSeq + 1) }
        let expectedPrev = head?.signingInputHash ?? Digest256.zeroHex
        return prev == expectedPrev ? .extends : .prevMismatch(expected: expectedPrev)
    }
}
