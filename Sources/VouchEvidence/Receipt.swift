/// The bank's signed acknowledgement of an accepted batch (JWS ES256 with the bank's key).
/// The device stores it and names its hash in the next batch (`rcpt`), so that neither side can
/// later rewrite what was delivered without the other's copy showing it.
public struct Receipt: Sendable, Equatable {
    public static let jwsType = "vouch-receipt+jws"

    public var device: String
    public var bseq: Int64
    /// The accepted batch's signing input hash.
    public var batch: String
    /// How many batches of this device the bank holds after accepting this one.
    public var deviceLogSize: Int64
    public var acceptedWallMs: Int64

    public init(device: String, bseq: Int64, batch: String, deviceLogSize: Int64, acceptedWallMs: Int64) {
        self.device = device
        self.bseq = bseq
        self.batch = batch
        self.deviceLogSize = deviceLogSize
        self.acceptedWallMs = acceptedWallMs
    }

    public var json: JSONValue {
        ["v": 1, "dev": .string(device), "bseq": .int(bseq), "batch": .string(batch), "log": .int(deviceLogSize), "at": .int(acceptedWallMs)]
    }

    public init(json: JSONValue) throws(EvidenceError) {
        guard let o = json.objectValue, o["v"]?.intValue == 1, let dev = o["dev"]?.stringValue, let bseq = o["bseq"]?.intValue,
            let batch = o["batch"]?.stringValue, let log = o["log"]?.intValue, let at = o["at"]?.intValue
        else { throw EvidenceError(.malformedPayload, "receipt must be {v:1, dev, bseq, batch, log, at}") }
        self.init(device: dev, bseq: bseq, batch: batch, deviceLogSize: log, acceptedWallMs: at)
    }

    public func sign(with key: SigningKey) -> JWS.Signed {
        JWS.sign(payload: CanonicalJSON.encode(json), key: key, typ: Self.jwsType)
    }

    public static func verify(_ token: String, bankKey: PublicJWK) throws(EvidenceError) -> (Receipt, signingInputHash: String) {
        let v = try JWS.verify(token, key: bankKey, typ: jwsType)
        return (try Receipt(json: try CanonicalJSON.decode(v.payload)), v.signingInputHash)
    }

    /// Reads a receipt without the bank's key (the device keeps it as evidence; verifying it needs the
    /// bank's public key, which a later issue puts into the device config).
    public static func parseUnverified(_ token: String) throws(EvidenceError) -> (Receipt, signingInputHash: String) {
        let parsed = try JWS.parse(token)
        return (try Receipt(json: try CanonicalJSON.decode(parsed.payload)), Digest256.sha256Hex(Array(parsed.signingInput.utf8)))
    }
}
