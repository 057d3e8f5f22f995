/// The signed payload of one batch (evidence format v1).
///
/// Serialised as canonical JSON (see ``CanonicalJSON``):
/// `{"boot":{"id":…,"n":…},"bseq":…,"dev":…,"prev":…,"rcpt":…|null,"recs":[…],"root":…,"t":{"mono":…,"tq":…,"wall":…},"v":1}`
public struct BatchPayload: Sendable, Equatable {
    public static let version: Int64 = 1
    public static let jwsType = "vouch-batch+jws"

    public var device: String
    /// Batch sequence number, gap-free from 1 per device.
    public var bseq: Int64
    /// SHA-256 (hex) of the previous batch's JWS signing input; 64 zeros for batch 1.
    public var prev: String
    public var bootId: String
    public var bootCount: Int64
    /// Time anchor at sealing: wall ms, monotonic ms, wall-clock quality.
    public var sealedWallMs: Int64
    public var sealedMonoMs: Int64
    public var timeQuality: TimeQuality
    /// The records, in `rseq` order, as their JSON values.
    public var records: [JSONValue]
    /// RFC 6962 Merkle tree hash (hex) over the canonical bytes of `records`.
    public var root: String
    /// SHA-256 (hex) of the signing input of the last bank receipt the device had stored, or nil.
    public var receipt: String?

    public init(
        device: String, bseq: Int64, prev: String, bootId: String, bootCount: Int64, sealedWallMs: Int64,
        sealedMonoMs: Int64, timeQuality: TimeQuality, records: [EvidenceRecord], receipt: String?
    ) {
        self.device = device
        self.bseq = bseq
        self.prev = prev
        self.bootId = bootId
        self.bootCount = bootCount
        self.sealedWallMs = sealedWallMs
        self.sealedMonoMs = sealedMonoMs
        self.timeQuality = timeQuality
        self.records = records.map(\.json)
        self.root = Hex.encode(Merkle.root(leaves: records.map(\.canonicalBytes)))
        self.receipt = receipt
    }

    public var json: JSONValue {
        [
            "v": .int(Self.version), "dev": .string(device), "bseq": .int(bseq), "prev": .string(prev),
            "boot": ["id": .string(bootId), "n": .int(bootCount)],
            "t": ["wall": .int(sealedWallMs), "mono": .int(sealedMonoMs), "tq": .string(timeQuality.rawValue)],
            "recs": .array(records), "root": .string(root), "rcpt": receipt.map(JSONValue.string) ?? .null,
        ]
    }

    /// Parses a payload and checks everything that does not need the chain: version, field types,
    /// hash formats, and that `root` is the Merkle root of `recs`.
    public init(bytes: [UInt8]) throws(EvidenceError) {
        guard let o = try CanonicalJSON.decode(bytes).objectValue else {
            throw EvidenceError(.malformedPayload, "payload is not a JSON object")
        }
        func field(_ name: String) throws(EvidenceError) -> JSONValue {
            guard let v = o[name] else { throw EvidenceError(.malformedPayload, "payload has no \"\(name)\"") }
            return v
        }
        func bad(_ name: String, _ expected: String) -> EvidenceError {
            EvidenceError(.malformedPayload, "payload \"\(name)\" must be \(expected)")
        }
        guard let v = try field("v").intValue else { throw bad("v", "an integer") }
        guard v == Self.version else { throw EvidenceError(.unsupportedVersion, "payload version \(v) is not supported (this verifier knows 1)") }
        guard let dev = try field("dev").stringValue, !dev.isEmpty else { throw bad("dev", "a non-empty string") }
        guard let bseq = try field("bseq").intValue, bseq >= 1 else { throw bad("bseq", "an integer ≥ 1") }
        guard let prev = try field("prev").stringValue, Self.isHash(prev) else { throw bad("prev", "64 lowercase hex digits") }
        guard let boot = try field("boot").objectValue, let bootIdValue = boot["id"]?.stringValue, let bootN = boot["n"]?.intValue else {
            throw bad("boot", "{\"id\": string, \"n\": integer}")
        }
        guard let t = try field("t").objectValue, let wall = t["wall"]?.intValue, let mono = t["mono"]?.intValue,
            let tqRaw = t["tq"]?.stringValue, let tq = TimeQuality(rawValue: tqRaw)
        else { throw bad("t", "{\"wall\": integer, \"mono\": integer, \"tq\": \"sync\"|\"unsync\"}") }
        guard let recs = try field("recs").arrayValue else { throw bad("recs", "an array") }
        guard let root = try field("root").stringValue, Self.isHash(root) else { throw bad("root", "64 lowercase hex digits") }
        let rcpt = try field("rcpt")
        guard rcpt.isNull || rcpt.stringValue.map(Self.isHash) == true else { throw bad("rcpt", "null or 64 lowercase hex digits") }
        let expected = Hex.encode(Merkle.root(leaves: recs.map { CanonicalJSON.encode($0) }))
        guard expected == root else {
            throw EvidenceError(.merkleMismatch, "root \(root) is not the Merkle root of the records (\(expected))")
        }
        device = dev
        self.bseq = bseq
        self.prev = prev
        bootId = bootIdValue
        bootCount = bootN
        sealedWallMs = wall
        sealedMonoMs = mono
        timeQuality = tq
        records = recs
        self.root = root
        receipt = rcpt.stringValue
    }

    /// The records as typed values; throws on a record this version does not define.
    public func typedRecords() throws(EvidenceError) -> [EvidenceRecord] {
        var out: [EvidenceRecord] = []
        out.reserveCapacity(records.count)
        for r in records { out.append(try EvidenceRecord(json: r)) }
        return out
    }

    static func isHash(_ s: String) -> Bool {
        s.utf8.count == 64 && s.utf8.allSatisfy { Hex.nibble($0) != nil }
    }
}

/// A batch as the device stores and sends it: the exact token bytes never change after sealing.
public struct SealedBatch: Sendable, Equatable {
    public let bseq: Int64
    public let token: String
    public let signingInputHash: String

    public init(bseq: Int64, token: String, signingInputHash: String) {
        self.bseq = bseq
        self.token = token
        self.signingInputHash = signingInputHash
    }

    public static func seal(_ payload: BatchPayload, key: SigningKey) -> SealedBatch {
        let signed = JWS.sign(payload: CanonicalJSON.encode(payload.json), key: key, typ: BatchPayload.jwsType)
        return SealedBatch(bseq: payload.bseq, token: signed.token, signingInputHash: signed.signingInputHash)
    }
}

/// A batch whose signature, format and Merkle root have been checked against an enrolled key.
public struct VerifiedBatch: Sendable {
    public let payload: BatchPayload
    public let signingInputHash: String
    public let token: String

    public static func verify(_ token: String, key: PublicJWK) throws(EvidenceError) -> VerifiedBatch {
        let verified = try JWS.verify(token, key: key, typ: BatchPayload.jwsType)
        let payload = try BatchPayload(bytes: verified.payload)
        return VerifiedBatch(payload: payload, signingInputHash: verified.signingInputHash, token: token)
    }
}
