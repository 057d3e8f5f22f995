import Foundation
import VouchEvidence

/// Verifies a device's exported batches without a server or database: what `vouch-bank verify` runs.
///
/// Each batch gets a verdict. The checks are the receiver's, minus storage: signature against the
/// enrolled key, format and Merkle root, the payload's device, then the chain rule against the batches
/// before it in the file, and record sequence continuity. A file that does not start at `bseq` 1 is
/// verified from where it starts, and says so.
public struct OfflineVerifier: Sendable {
    public struct Verdict: Sendable, Equatable {
        public var line: Int
        public var bseq: Int64?
        /// nil: the batch is good.
        public var problem: BankError?
        public var note: String?
        public var records: Int
        public var ok: Bool { problem == nil }
    }

    public let device: EnrolledDevice
    private var head: ChainHead?
    private var seen: [Int64: String] = [:]
    private var lastRseq: Int64?

    public init(device: EnrolledDevice) { self.device = device }

    /// Verifies the next batch of the file (line numbers are 1-based, for messages).
    public mutating func verify(token: String, line: Int) -> Verdict {
        let batch: VerifiedBatch
        let records: [EvidenceRecord]
        do {
            batch = try VerifiedBatch.verify(token, key: device.key)
            records = try batch.payload.typedRecords()
        } catch {
            return Verdict(line: line, bseq: nil, problem: BankError.from(error), note: nil, records: 0)
        }
        let p = batch.payload
        func fail(_ code: String, _ message: String) -> Verdict {
            Verdict(line: line, bseq: p.bseq, problem: BankError(code, status: 409, message), note: nil, records: records.count)
        }
        guard p.device == device.id else {
            return fail(BankError.deviceMismatch, "payload names device \(p.device), the key is \(device.id)'s")
        }
        var note: String?
        if head == nil && p.bseq != 1 {
            // The export starts mid-chain: trust its first batch as the starting point, and say so.
            note = "file starts at bseq \(p.bseq): batches before it were not checked"
            head = ChainHead(bseq: p.bseq - 1, signingInputHash: p.prev)
        }
        let verdict = ChainRule.classify(bseq: p.bseq, prev: p.prev, signingInputHash: batch.signingInputHash, head: head, acceptedHash: seen[p.bseq])
        if verdict == .duplicate {
            return Verdict(line: line, bseq: p.bseq, problem: nil, note: "identical copy of bseq \(p.bseq)", records: records.count)
        }
        if let refusal = BankError.chain(verdict, device: device.id, bseq: p.bseq, prev: p.prev) {
            return Verdict(line: line, bseq: p.bseq, problem: refusal, note: nil, records: records.count)
        }
        for r in records {
            if let last = lastRseq, r.stamp.rseq <= last {
                return fail(BankError.recordOrder, "record rseq \(r.stamp.rseq) does not follow \(last)")
            }
            if let last = lastRseq, r.stamp.rseq > last + 1 {
                note = [note, "records \(last + 1)…\(r.stamp.rseq - 1) missing before rseq \(r.stamp.rseq)"].compactMap { $0 }.joined(separator: "; ")
            }
            lastRseq = r.stamp.rseq
        }
        head = ChainHead(bseq: p.bseq, signingInputHash: batch.signingInputHash)
        seen[p.bseq] = batch.signingInputHash
        return Verdict(line: line, bseq: p.bseq, problem: nil, note: note, records: records.count)
    }

    /// Reads one line of an export: `{"bseq":…,"token":…}` (as `vouch-bank export` writes) or a bare token.
    public static func token(fromLine line: String) -> String? {
        let trimmed = line.trimmingCharacters(in: .whitespaces)
        if trimmed.isEmpty { return nil }
        if trimmed.hasPrefix("{") {
            return (try? CanonicalJSON.decode(Array(trimmed.utf8)))?.objectValue?["token"]?.stringValue ?? ""
        }
        return trimmed
    }
}
