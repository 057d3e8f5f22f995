/// The signed manifest of one batch (evidence format v1): the JWS payload.
///
/// The records travel beside it, one per line (see ``BatchFile``), committed to by `root` and `n`.
/// Keeping them out of the signed payload is what lets one record be disclosed with the manifest and
/// an inclusion proof, without the rest of the batch, and it keeps records out of base64, which
/// compresses badly.
///
/// Serialised as canonical JSON (see ``CanonicalJSON``):
/// `{"boot":{"id":…,"n":…},"bseq":…,"dev":…,"n":…,"prev":…,"rcpt":…|null,"root":…,"t":{"mono":…,"tq":…,"wall":…},"v":1}`
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
    /// Number of records in the batch.
    public var recordCount: Int64
    /// RFC 6962 Merkle tree hash (hex) over the canonical bytes of the records, in order.
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
        self.recordCount = Int64(records.count)
        self.root = Hex.encode(Merkle.root(leaves: records.map(\.canonicalBytes)))
        self.receipt = receipt
    }

    public var json: JSONValue {
        [
            "v": .int(Self.version), "dev": .string(device), "bseq": .int(bseq), "prev": .string(prev),
            "boot": ["id": .string(bootId), "n": .int(bootCount)],
            "t": ["wall": .int(sealedWallMs), "mono": .int(sealedMonoMs), "tq": .string(timeQuality.rawValue)],
            "n": .int(recordCount), "root": .string(root), "rcpt": .optionalString(receipt),
        ]
    }

    /// Parses a manifest and checks its fields. The records are checked against it by ``VerifiedBatch``.
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
        let known: Set = ["v", "dev", "bseq", "prev", "boot", "t", "n", "root", "rcpt"]
        if let extra = o.keys.sorted().first(where: { !known.contains($0) }) {
            throw EvidenceError(.malformedPayload, "payload has a member \"\(extra)\" that version 1 does not define")
        }
        guard let dev = try field("dev").stringValue, !dev.isEmpty else { throw bad("dev", "a non-empty string") }
        guard let bseq = try field("bseq").intValue, bseq >= 1 else { throw bad("bseq", "an integer ≥ 1") }
        guard let prev = try field("prev").stringValue, Self.isHash(prev) else { throw bad("prev", "64 lowercase hex digits") }
        guard let boot = try field("boot").objectValue, Set(boot.keys) == ["id", "n"], let bootIdValue = boot["id"]?.stringValue,
            let bootN = boot["n"]?.intValue
        else {
            throw bad("boot", "{\"id\": string, \"n\": integer}")
        }
        guard let t = try field("t").objectValue, Set(t.keys) == ["mono", "tq", "wall"], let wall = t["wall"]?.intValue, let mono = t["mono"]?.intValue,
            let tqRaw = t["tq"]?.stringValue, let tq = TimeQuality(rawValue: tqRaw)
        else { throw bad("t", "{\"wall\": integer, \"mono\": integer, \"tq\": \"sync\"|\"unsync\"|\"step\"}") }
        guard let n = try field("n").intValue, n >= 0 else { throw bad("n", "an integer ≥ 0") }
        guard let root = try field("root").stringValue, Self.isHash(root) else { throw bad("root", "64 lowercase hex digits") }
        let rcpt = try field("rcpt")
        guard rcpt.isNull || rcpt.stringValue.map(Self.isHash) == true else { throw bad("rcpt", "null or 64 lowercase hex digits") }
        device = dev
        self.bseq = bseq
        self.prev = prev
        bootId = bootIdValue
        bootCount = bootN
        sealedWallMs = wall
        sealedMonoMs = mono
        timeQuality = tq
        recordCount = n
        self.root = root
        receipt = rcpt.stringValue
    }

    static func isHash(_ s: String) -> Bool {
        s.utf8.count == 64 && s.utf8.allSatisfy { Hex.nibble($0) != nil }
    }
}

/// A batch as the device stores and sends it: the exact bytes never change after sealing.
public struct SealedBatch: Sendable, Equatable {
    public let bseq: Int64
    /// The signed manifest, JWS compact serialisation.
    public let token: String
    public let signingInputHash: String
    /// Each record's canonical JSON bytes, in order: the Merkle leaves.
    public let records: [[UInt8]]

    public init(bseq: Int64, token: String, signingInputHash: String, records: [[UInt8]]) {
        self.bseq = bseq
        self.token = token
        self.signingInputHash = signingInputHash
        self.records = records
    }

    /// Signs `payload` and binds `records` to it. The payload should have been built from the same
    /// records; if not, the batch is inconsistent and every verifier refuses it (tests use that).
    public static func seal(_ payload: BatchPayload, records: [EvidenceRecord], key: SigningKey) -> SealedBatch {
        let signed = JWS.sign(payload: CanonicalJSON.encode(payload.json), key: key, typ: BatchPayload.jwsType)
        return SealedBatch(bseq: payload.bseq, token: signed.token, signingInputHash: signed.signingInputHash, records: records.map(\.canonicalBytes))
    }

    /// The batch file: what is uploaded and exported (see ``BatchFile``).
    public var file: [UInt8] { BatchFile.encode(token: token, records: records) }
    public var fileText: String { String(decoding: file, as: UTF8.self) }
}

/// The batch file, media type `application/vouch-batch`: the manifest token on the first line, then
/// one record per line, each line ending in LF:
///
///     <JWS compact>\n
///     <record 1 canonical JSON>\n
///     …
///
/// Several batch files concatenated form an export stream; a line that starts with `[` is a record
/// of the token above it.
public enum BatchFile {
    public static let mediaType = "application/vouch-batch"

    public static func encode(token: String, records: [[UInt8]]) -> [UInt8] {
        var out = Array(token.utf8)
        out.reserveCapacity(out.count + 1 + records.reduce(0) { $0 + $1.count + 1 })
        out.append(0x0A)
        for r in records {
            out += r
            out.append(0x0A)
        }
        return out
    }

    /// One batch found in a file or stream. `line` is the 1-based line of its token.
    public struct Entry: Sendable, Equatable {
        public var line: Int
        public var token: String
        public var records: [[UInt8]]
    }

    /// Splits one uploaded batch file. Strict: exactly one token line, then record lines; the last LF
    /// may be missing; no CR, no empty line.
    public static func decodeOne(_ bytes: some Collection<UInt8>) throws(EvidenceError) -> Entry {
        let entries = try decodeStream(bytes)
        guard entries.count == 1, let entry = entries.first else {
            throw EvidenceError(.malformedBatch, entries.isEmpty ? "the batch file is empty" : "one upload holds one batch, this holds \(entries.count)")
        }
        return entry
    }

    /// Splits an export stream into its batches.
    public static func decodeStream(_ bytes: some Collection<UInt8>) throws(EvidenceError) -> [Entry] {
        var entries: [Entry] = []
        var lineNumber = 0
        var lines = Array(bytes).split(separator: 0x0A, omittingEmptySubsequences: false)
        if lines.last?.isEmpty == true { lines.removeLast() }
        for line in lines {
            lineNumber += 1
            guard !line.isEmpty else { throw EvidenceError(.malformedBatch, "line \(lineNumber) is empty") }
            if line.last == 0x0D { throw EvidenceError(.malformedBatch, "line \(lineNumber) ends in CR: batch files use LF only") }
            if line.first == UInt8(ascii: "[") {
                guard !entries.isEmpty else {
                    throw EvidenceError(.malformedBatch, "line \(lineNumber) is a record, but no batch token came before it")
                }
                entries[entries.count - 1].records.append(Array(line))
            } else {
                guard line.allSatisfy({ $0 == UInt8(ascii: ".") || Base64URL.isAlphabet($0) }) else {
                    throw EvidenceError(.malformedBatch, "line \(lineNumber) is neither a JWS token nor a record (a record line starts with '[')")
                }
                entries.append(Entry(line: lineNumber, token: String(decoding: line, as: UTF8.self), records: []))
            }
        }
        return entries
    }
}

/// A batch whose signature, manifest, records and Merkle root have been checked against a key.
public struct VerifiedBatch: Sendable {
    public let payload: BatchPayload
    public let signingInputHash: String
    public let token: String
    /// Record lines exactly as received (each is canonical JSON) and their parsed values.
    public let recordBytes: [[UInt8]]
    public let records: [JSONValue]
    /// The `kid` of the key that signed it.
    public let kid: String

    /// Checks, in order: the signature (typ, kid, ES256), the manifest, that there are `n` records,
    /// that each record line is canonical JSON, and that `root` is their Merkle root.
    public static func verify(token: String, records lines: [[UInt8]], key: PublicJWK) throws(EvidenceError) -> VerifiedBatch {
        let verified = try JWS.verify(token, key: key, typ: BatchPayload.jwsType)
        let payload = try BatchPayload(bytes: verified.payload)
        guard payload.recordCount == lines.count else {
            throw EvidenceError(.malformedBatch, "the manifest of batch \(payload.bseq) promises \(payload.recordCount) records, the file holds \(lines.count)")
        }
        var values: [JSONValue] = []
        values.reserveCapacity(lines.count)
        for (i, line) in lines.enumerated() {
            let value: JSONValue
            do { value = try CanonicalJSON.decode(line) } catch {
                throw EvidenceError(.malformedRecord, "record \(i + 1) of batch \(payload.bseq) is not JSON: \(error.message)")
            }
            guard CanonicalJSON.encode(value) == line else {
                throw EvidenceError(.nonCanonicalRecord, "record \(i + 1) of batch \(payload.bseq) is not in canonical form (RFC 8785)")
            }
            values.append(value)
        }
        let expected = Hex.encode(Merkle.root(leaves: lines))
        guard expected == payload.root else {
            throw EvidenceError(.merkleMismatch, "the records of batch \(payload.bseq) do not hash to the signed root \(payload.root.prefix(16))… (they give \(expected.prefix(16))…): a record was altered, added, removed or reordered")
        }
        return VerifiedBatch(payload: payload, signingInputHash: verified.signingInputHash, token: token, recordBytes: lines, records: values, kid: key.thumbprint)
    }

    public static func verify(file: some Collection<UInt8>, key: PublicJWK) throws(EvidenceError) -> VerifiedBatch {
        let entry = try BatchFile.decodeOne(file)
        return try verify(token: entry.token, records: entry.records, key: key)
    }

    public static func verify(_ batch: SealedBatch, key: PublicJWK) throws(EvidenceError) -> VerifiedBatch {
        try verify(token: batch.token, records: batch.records, key: key)
    }

    /// The records as typed values; throws on a record this version does not define.
    public func typedRecords() throws(EvidenceError) -> [EvidenceRecord] {
        var out: [EvidenceRecord] = []
        out.reserveCapacity(records.count)
        for (i, r) in records.enumerated() {
            do { out.append(try EvidenceRecord(json: r)) } catch {
                throw EvidenceError(error.code, "record \(i + 1) of batch \(payload.bseq): \(error.message)")
            }
        }
        return out
    }
}
