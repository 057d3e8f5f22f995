/// Discloses one record of a batch without the others: the batch's signed manifest, the record, its
/// position and the RFC 6962 audit path to the manifest's `root`. Anyone holding the device's public
/// key can check it; nothing else of the batch is revealed (the manifest carries hashes and counts only).
///
/// JSON: `{"batch":<manifest JWS>,"index":i,"jwk":{…},"path":[hex…],"receipt":<JWS>|null,"record":"<record JSON text>","type":"vouch-inclusion-proof","v":1}`
public struct InclusionProof: Sendable, Equatable {
    public static let type = "vouch-inclusion-proof"

    /// The batch's manifest token (JWS compact).
    public var batch: String
    /// 0-based position of the record in the batch.
    public var index: Int
    /// The record's canonical JSON bytes (the Merkle leaf).
    public var record: [UInt8]
    /// Sibling hashes, leaf side first.
    public var path: [[UInt8]]
    /// The signing device's public key, for convenience: check its thumbprint against the enrolment.
    public var deviceKey: PublicJWK
    /// The bank's receipt for the batch, when the bank issued the proof.
    public var receipt: String?

    public init(batch: String, index: Int, record: [UInt8], path: [[UInt8]], deviceKey: PublicJWK, receipt: String?) {
        self.batch = batch
        self.index = index
        self.record = record
        self.path = path
        self.deviceKey = deviceKey
        self.receipt = receipt
    }

    /// The proof for record `index` of a verified batch.
    public static func make(for batch: VerifiedBatch, index: Int, deviceKey: PublicJWK, receipt: String?) throws(EvidenceError) -> InclusionProof {
        guard index >= 0, index < batch.recordBytes.count else {
            throw EvidenceError(.inclusionProof, "batch \(batch.payload.bseq) has \(batch.recordBytes.count) records, no record at index \(index)")
        }
        return InclusionProof(
            batch: batch.token, index: index, record: batch.recordBytes[index], path: Merkle.auditPath(index: index, leaves: batch.recordBytes),
            deviceKey: deviceKey, receipt: receipt)
    }

    public var json: JSONValue {
        [
            "v": 1, "type": .string(Self.type), "batch": .string(batch), "index": .int(Int64(index)),
            "record": .string(String(decoding: record, as: UTF8.self)), "path": .array(path.map { .string(Hex.encode($0)) }),
            "jwk": deviceKey.json, "receipt": .optionalString(receipt),
        ]
    }

    public init(json: JSONValue) throws(EvidenceError) {
        guard let o = json.objectValue, o["v"]?.intValue == 1, o["type"]?.stringValue == Self.type else {
            throw EvidenceError(.inclusionProof, "not a \(Self.type) document of version 1")
        }
        guard let batch = o["batch"]?.stringValue, let index = o["index"]?.intValue, let record = o["record"]?.stringValue,
            let pathItems = o["path"]?.arrayValue, let jwk = o["jwk"]
        else { throw EvidenceError(.inclusionProof, "an inclusion proof needs batch, index, record, path and jwk") }
        var path: [[UInt8]] = []
        for item in pathItems {
            guard let hex = item.stringValue, let bytes = Hex.decode(hex), bytes.count == 32 else {
                throw EvidenceError(.inclusionProof, "each path element must be 64 hex digits")
            }
            path.append(bytes)
        }
        let receipt = o["receipt"] ?? .null
        guard receipt.isNull || receipt.stringValue != nil else { throw EvidenceError(.inclusionProof, "receipt must be a JWS or null") }
        self.init(
            batch: batch, index: Int(clamping: index), record: Array(record.utf8), path: path, deviceKey: try PublicJWK(json: jwk),
            receipt: receipt.stringValue)
    }

    /// Verifies the manifest's signature with `key` (which the relying party got from the enrolment,
    /// not from this document) and that the record hashes up to its root. Returns the manifest and
    /// the record.
    public func verify(key: PublicJWK) throws(EvidenceError) -> (payload: BatchPayload, record: EvidenceRecord) {
        let verified = try JWS.verify(batch, key: key, typ: BatchPayload.jwsType)
        let payload = try BatchPayload(bytes: verified.payload)
        let value: JSONValue
        do { value = try CanonicalJSON.decode(record) } catch {
            throw EvidenceError(.inclusionProof, "the disclosed record is not JSON: \(error.message)")
        }
        guard CanonicalJSON.encode(value) == record else {
            throw EvidenceError(.inclusionProof, "the disclosed record is not in canonical form")
        }
        guard payload.recordCount <= Int64(Int.max),
            let root = Merkle.rootFromPath(leaf: record, index: index, size: Int(payload.recordCount), path: path)
        else {
            throw EvidenceError(.inclusionProof, "the path does not fit record \(index) of a batch of \(payload.recordCount)")
        }
        guard Hex.encode(root) == payload.root else {
            throw EvidenceError(.inclusionProof, "the record and path lead to \(Hex.encode(root).prefix(16))…, not the signed root \(payload.root.prefix(16))…")
        }
        return (payload, try EvidenceRecord(json: value))
    }
}
