import Foundation
import VouchEvidence

/// Verifies a device's exported batches without a server or database: what `vouch-bank verify` runs.
///
/// Each batch gets a verdict. The checks are the receiver's, minus storage: signature against the
/// device's key in force (the enrolled one, then each key rotated in by a verified rotation record),
/// manifest, records and Merkle root, the manifest's device, then the chain rule against the batches
/// before it, and record sequence continuity. A file that does not start at `bseq` 1 is verified from
/// where it starts, and says so. A batch that comes before one it should follow is a reorder; a
/// stream that ends before `expectedLast` is a truncated tail.
public struct OfflineVerifier: Sendable {
    public struct Verdict: Sendable, Equatable {
        /// Where the batch is: "file:line".
        public var location: String
        public var bseq: Int64?
        /// nil: the batch is good.
        public var problem: BankError?
        public var note: String?
        public var records: Int
        public var ok: Bool { problem == nil }
    }

    public let device: EnrolledDevice
    /// The device's keys as the stream reveals them: each in force from `from` through `until`.
    private var keys: [(key: PublicJWK, from: Int64, until: Int64?)]
    private var head: ChainHead?
    private var seen: [Int64: String] = [:]
    private var lastRseq: Int64?

    public init(device: EnrolledDevice) {
        self.device = device
        keys = [(device.key, 1, nil)]
    }

    /// The key the header's `kid` names, when the device has one by that name.
    private func key(for token: String) -> (key: PublicJWK, from: Int64, until: Int64?)? {
        guard let kid = (try? JWS.parse(token))?.header["kid"]?.stringValue else { return nil }
        return keys.first { $0.key.thumbprint == kid }
    }

    /// Verifies every batch of the given streams, in order. `expectedLast`: the `bseq` the streams
    /// must reach (from the bank's latest receipt, say); ending before it is a truncated tail.
    public mutating func verify(_ streams: [(name: String, entries: [BatchFile.Entry])], expectedLast: Int64? = nil) -> [Verdict] {
        let all = streams.flatMap { s in s.entries.map { (location: "\(s.name):\($0.line)", entry: $0) } }
        // Which bseqs appear where, to tell a reorder (the missing batch comes later) from a gap.
        var laterBseqs: [Int64: Int] = [:]
        for (i, item) in all.enumerated() {
            if let bseq = Self.peekBseq(item.entry.token) { laterBseqs[bseq] = max(laterBseqs[bseq] ?? 0, i) }
        }
        var verdicts: [Verdict] = []
        // A batch found ahead of its predecessor is reported as a reorder, then verified in its place
        // once the predecessor has extended the chain, so one swap does not cascade into gaps.
        var deferred: [(location: String, entry: BatchFile.Entry)] = []
        let lowest = all.compactMap { Self.peekBseq($0.entry.token) }.min()
        for (i, item) in all.enumerated() {
            // The stream's first batch sets where checking starts; if a lower bseq comes later, this one
            // is out of order (not a mid-chain start, and what follows is not a fork).
            if head == nil, let bseq = Self.peekBseq(item.entry.token), let lowest, bseq > lowest, let at = laterBseqs[lowest], at > i {
                verdicts.append(
                    Verdict(
                        location: item.location, bseq: bseq,
                        problem: BankError(
                            BankError.chainReorder, status: 409,
                            "batch \(bseq) comes before batch \(lowest) in the file (\(all[at].location)): batches are out of order"),
                        note: nil, records: item.entry.records.count))
                deferred.append((item.location, item.entry))
                continue
            }
            var v = verify(token: item.entry.token, records: item.entry.records, location: item.location)
            if let problem = v.problem, problem.code == BankError.chainGap, let bseq = v.bseq {
                let expected = (head?.bseq ?? 0) + 1
                if let at = laterBseqs[expected], at > i {
                    v.problem = BankError(
                        BankError.chainReorder, status: 409,
                        "batch \(bseq) comes before batch \(expected) in the file (\(all[at].location)): batches are out of order")
                    deferred.append((item.location, item.entry))
                }
            }
            verdicts.append(v)
            while v.ok, let next = deferred.firstIndex(where: { Self.peekBseq($0.entry.token) == (head?.bseq ?? 0) + 1 }) {
                let item = deferred.remove(at: next)
                v = verify(token: item.entry.token, records: item.entry.records, location: item.location)
                if v.ok { v.note = [v.note, "out of order in the file; verified after its predecessor"].compactMap { $0 }.joined(separator: "; ") }
                verdicts.append(v)
            }
        }
        if let expectedLast, (head?.bseq ?? 0) < expectedLast {
            let have = head?.bseq ?? 0
            verdicts.append(
                Verdict(
                    location: streams.last.map { "\($0.name):end" } ?? "end", bseq: nil,
                    problem: BankError(BankError.chainTruncated, status: 409, "the batches end at bseq \(have), but the chain runs to \(expectedLast): batches \(have + 1)…\(expectedLast) were cut off"),
                    note: nil, records: 0))
        }
        return verdicts
    }

    static func peekBseq(_ token: String) -> Int64? {
        guard let parsed = try? JWS.parse(token), let o = try? CanonicalJSON.decode(parsed.payload).objectValue else { return nil }
        return o["bseq"]?.intValue
    }

    /// Verifies the next batch.
    public mutating func verify(token: String, records lines: [[UInt8]], location: String) -> Verdict {
        let batch: VerifiedBatch
        let records: [EvidenceRecord]
        let signer = key(for: token) ?? keys[keys.count - 1]
        do {
            batch = try VerifiedBatch.verify(token: token, records: lines, key: signer.key)
            records = try batch.typedRecords()
        } catch {
            var problem = BankError.from(error)
            if error.code == .wrongKey, keys.count > 1 {
                problem = BankError(problem.code, status: problem.status, problem.message + " (nor any key the device rotated to earlier in the file)")
            }
            return Verdict(location: location, bseq: Self.peekBseq(token), problem: problem, note: nil, records: 0)
        }
        let p = batch.payload
        func fail(_ code: String, _ message: String) -> Verdict {
            Verdict(location: location, bseq: p.bseq, problem: BankError(code, status: 409, message), note: nil, records: records.count)
        }
        guard p.device == device.id else {
            return fail(BankError.deviceMismatch, "payload names device \(p.device), the key is \(device.id)'s")
        }
        if p.bseq < signer.from || signer.until.map({ p.bseq > $0 }) == true {
            let range = "\(signer.from)…\(signer.until.map(String.init) ?? "")"
            return fail(BankError.keyRetired, "batch \(p.bseq) is signed by key \(signer.key.thumbprint), which is in force for batches \(range) only")
        }
        var note: String?
        if head == nil && p.bseq != 1 {
            // The export starts mid-chain: trust its first batch as the starting point, and say so.
            note = "file starts at bseq \(p.bseq): batches before it were not checked"
            head = ChainHead(bseq: p.bseq - 1, signingInputHash: p.prev)
        }
        let verdict = ChainRule.classify(bseq: p.bseq, prev: p.prev, signingInputHash: batch.signingInputHash, head: head, acceptedHash: seen[p.bseq])
        if verdict == .duplicate {
            return Verdict(location: location, bseq: p.bseq, problem: nil, note: "identical copy of bseq \(p.bseq)", records: records.count)
        }
        if let refusal = BankError.chain(verdict, device: device.id, bseq: p.bseq, prev: p.prev) {
            return Verdict(location: location, bseq: p.bseq, problem: refusal, note: nil, records: records.count)
        }
        var rotation: KeyRotation?
        for r in records {
            if let last = lastRseq, r.stamp.rseq <= last {
                return fail(BankError.recordOrder, "record rseq \(r.stamp.rseq) does not follow \(last)")
            }
            if let last = lastRseq, r.stamp.rseq > last + 1 {
                note = [note, "records \(last + 1)…\(r.stamp.rseq - 1) missing before rseq \(r.stamp.rseq)"].compactMap { $0 }.joined(separator: "; ")
            }
            lastRseq = r.stamp.rseq
            if case .keyRotation(let k) = r {
                guard rotation == nil else { return fail(BankError.keyRotation, "batch \(p.bseq) holds two key rotations; one batch may rotate once") }
                if keys.contains(where: { $0.key == k.newKey }) {
                    return fail(BankError.keyRotation, "batch \(p.bseq) rotates to key \(k.newKey.thumbprint), which this device already had")
                }
                do { try k.verifyProof(device: device.id, oldKid: signer.key.thumbprint) } catch {
                    return fail(BankError.keyRotation, error.message)
                }
                rotation = k
            }
        }
        head = ChainHead(bseq: p.bseq, signingInputHash: batch.signingInputHash)
        seen[p.bseq] = batch.signingInputHash
        if let rotation {
            if let i = keys.firstIndex(where: { $0.key == signer.key }) { keys[i].until = p.bseq }
            keys.append((rotation.newKey, p.bseq + 1, nil))
            note = [note, "rotates to key \(rotation.newKey.thumbprint) from batch \(p.bseq + 1)"].compactMap { $0 }.joined(separator: "; ")
        }
        return Verdict(location: location, bseq: p.bseq, problem: nil, note: note, records: records.count)
    }
}
