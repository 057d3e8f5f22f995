/// The bank's signed acknowledgement of an accepted batch (JWS ES256 with the bank's key).
///
/// Besides the batch it names the bank's own log: every batch the bank ever accepted, from every
/// device, as an append-only RFC 6962 Merkle tree whose leaves are the batches' signing input hashes
/// (32 bytes). The device stores the receipt and names its hash in the next batch (`rcpt`): the
/// device cannot later deny what it delivered, and the bank cannot later drop or rewrite an accepted
/// batch without its own signed log root showing it.
///
/// JSON: `{"at":ms,"batch":hex,"bseq":n,"dev":id,"log":{"idx":i,"root":hex,"size":n},"n":n,"v":1}`
public struct Receipt: Sendable, Equatable {
    public static let jwsType = "vouch-receipt+jws"

    public var device: String
    public var bseq: Int64
    /// The accepted batch's signing input hash.
    public var batch: String
    /// How many batches of this device the bank holds after accepting this one.
    public var deviceLogSize: Int64
    /// The batch's 0-based position in the bank's log.
    public var logIndex: Int64
    /// The bank's log size and root right after appending this batch.
    public var logSize: Int64
    public var logRoot: String
    public var acceptedWallMs: Int64

    public init(device: String, bseq: Int64, batch: String, deviceLogSize: Int64, logIndex: Int64, logSize: Int64, logRoot: String, acceptedWallMs: Int64) {
        self.device = device
        self.bseq = bseq
        self.batch = batch
        self.deviceLogSize = deviceLogSize
        self.logIndex = logIndex
        self.logSize = logSize
        self.logRoot = logRoot
        self.acceptedWallMs = acceptedWallMs
    }

    public var json: JSONValue {
        [
            "v": 1, "dev": .string(device), "bseq": .int(bseq), "batch": .string(batch), "n": .int(deviceLogSize),
            "log": ["idx": .int(logIndex), "size": .int(logSize), "root": .string(logRoot)], "at": .int(acceptedWallMs),
        ]
    }

    public init(json: JSONValue) throws(EvidenceError) {
        guard let o = json.objectValue, o["v"]?.intValue == 1, let dev = o["dev"]?.stringValue, let bseq = o["bseq"]?.intValue,
            let batch = o["batch"]?.stringValue, BatchPayload.isHash(batch), let n = o["n"]?.intValue, let at = o["at"]?.intValue,
            let log = o["log"]?.objectValue, let idx = log["idx"]?.intValue, let size = log["size"]?.intValue,
            let root = log["root"]?.stringValue, BatchPayload.isHash(root), idx >= 0, idx < size
        else { throw EvidenceError(.malformedPayload, "a receipt is {v:1, dev, bseq, batch, n, log:{idx, size, root}, at} with idx < size") }
        self.init(device: dev, bseq: bseq, batch: batch, deviceLogSize: n, logIndex: idx, logSize: size, logRoot: root, acceptedWallMs: at)
    }

    /// Checks that the receipt answers this batch of this device.
    public func check(device: String, bseq: Int64, batch: String) throws(EvidenceError) {
        guard self.device == device, self.bseq == bseq, self.batch == batch else {
            throw EvidenceError(
                .receiptMismatch,
                "receipt names \(self.device) batch \(self.bseq) \(self.batch.prefix(12))…, not \(device) batch \(bseq) \(batch.prefix(12))…")
        }
    }

    public func sign(with key: SigningKey) -> JWS.Signed {
        JWS.sign(payload: CanonicalJSON.encode(json), key: key, typ: Self.jwsType)
    }

    public static func verify(_ token: String, bankKey: PublicJWK) throws(EvidenceError) -> (Receipt, signingInputHash: String) {
        let v = try JWS.verify(token, key: bankKey, typ: jwsType)
        return (try Receipt(json: try CanonicalJSON.decode(v.payload)), v.signingInputHash)
    }

    /// Reads a receipt without the bank's key (a device without `[bank] receipt_key` keeps it as is;
    /// whoever holds the bank's key can verify it later).
    public static func parseUnverified(_ token: String) throws(EvidenceError) -> (Receipt, signingInputHash: String) {
        let parsed = try JWS.parse(token)
        guard parsed.header["typ"]?.stringValue == jwsType else { throw EvidenceError(.malformedJWS, "typ must be \(jwsType)") }
        return (try Receipt(json: try CanonicalJSON.decode(parsed.payload)), Digest256.sha256Hex(Array(parsed.signingInput.utf8)))
    }
}
