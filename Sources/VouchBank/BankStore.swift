import VouchEvidence

/// An enrolled gateway, seen through one of its keys.
public struct EnrolledDevice: Sendable, Equatable {
    public var id: String
    public var key: PublicJWK
    public var enrolledAtMs: Int64
    public var revokedAtMs: Int64?
    /// The batches this key may sign: from `keyFromBseq` (1 for the enrolled key, the batch after the
    /// rotation for a rotated-in key) through `keyUntilBseq` (the batch holding the rotation that
    /// retired it; nil while it is the device's current key).
    public var keyFromBseq: Int64
    public var keyUntilBseq: Int64?
    public var kid: String { key.thumbprint }

    public init(id: String, key: PublicJWK, enrolledAtMs: Int64, revokedAtMs: Int64? = nil, keyFromBseq: Int64 = 1, keyUntilBseq: Int64? = nil) {
        self.id = id
        self.key = key
        self.enrolledAtMs = enrolledAtMs
        self.revokedAtMs = revokedAtMs
        self.keyFromBseq = keyFromBseq
        self.keyUntilBseq = keyUntilBseq
    }
}

/// A device that has gone quiet: no batch for longer than twice its declared heartbeat interval.
public struct Silence: Sendable, Equatable {
    public var device: String
    public var lastBatchAtMs: Int64
    public var lastBseq: Int64
    public var heartbeatMs: Int64
    public var silentForMs: Int64

    public init(device: String, lastBatchAtMs: Int64, lastBseq: Int64, heartbeatMs: Int64, silentForMs: Int64) {
        self.device = device
        self.lastBatchAtMs = lastBatchAtMs
        self.lastBseq = lastBseq
        self.heartbeatMs = heartbeatMs
        self.silentForMs = silentForMs
    }
}

/// What became of an uploaded batch.
public struct IngestResult: Sendable, Equatable {
    public enum Verdict: String, Sendable { case accepted, duplicate }
    public var verdict: Verdict
    public var device: String
    public var bseq: Int64
    public var receipt: String
    /// rseq ranges missing before this batch's first record (a deleted or lost record shows up here).
    public var missingRecords: ClosedRange<Int64>?
    /// The device's new key, when this batch carried a key rotation.
    public var rotatedTo: String?

    public init(verdict: Verdict, device: String, bseq: Int64, receipt: String, missingRecords: ClosedRange<Int64>? = nil, rotatedTo: String? = nil) {
        self.verdict = verdict
        self.device = device
        self.bseq = bseq
        self.receipt = receipt
        self.missingRecords = missingRecords
        self.rotatedTo = rotatedTo
    }
}

/// A production stoppage or other finding, as the bank knows it.
public struct StoredEvent: Sendable, Equatable {
    public var device: String
    public var eventId: String
    public var rule: String
    public var channel: String
    public var severity: String
    public var startWallMs: Int64
    public var endWallMs: Int64?
    public var durationMs: Int64
    public var status: String  // "ongoing" | "ended"
    public var explanation: String
    public var bseq: Int64

    public init(
        device: String, eventId: String, rule: String, channel: String, severity: String, startWallMs: Int64, endWallMs: Int64?, durationMs: Int64, status: String,
        explanation: String, bseq: Int64
    ) {
        self.device = device
        self.eventId = eventId
        self.rule = rule
        self.channel = channel
        self.severity = severity
        self.startWallMs = startWallMs
        self.endWallMs = endWallMs
        self.durationMs = durationMs
        self.status = status
        self.explanation = explanation
        self.bseq = bseq
    }
}

/// Something the bank saw that a credit officer must know about: a fork (the device signed two
/// histories; `evidence` holds the second signed batch), records that never arrived, or a device gone
/// silent.
public struct Incident: Sendable, Equatable {
    public var device: String
    /// "fork" | "record-gap" | "silence"
    public var kind: String
    public var bseq: Int64
    public var detail: String
    public var evidence: String?
    public var atMs: Int64

    /// The stable code of the anomaly.
    public var code: String {
        switch kind {
        case "fork": BankError.chainFork
        case "silence": BankError.chainSilent
        default: BankError.recordGap
        }
    }

    public init(device: String, kind: String, bseq: Int64, detail: String, evidence: String?, atMs: Int64) {
        self.device = device
        self.kind = kind
        self.bseq = bseq
        self.detail = detail
        self.evidence = evidence
        self.atMs = atMs
    }
}

public struct StoredBatch: Sendable, Equatable {
    public var device: String
    public var bseq: Int64
    public var hash: String
    public var token: String
    /// The record lines, exactly as received.
    public var records: [[UInt8]]
    public var receivedAtMs: Int64
    public var receipt: String
    /// The batch file, as the device sent it.
    public var file: [UInt8] { BatchFile.encode(token: token, records: records) }

    public init(device: String, bseq: Int64, hash: String, token: String, records: [[UInt8]], receivedAtMs: Int64, receipt: String) {
        self.device = device
        self.bseq = bseq
        self.hash = hash
        self.token = token
        self.records = records
        self.receivedAtMs = receivedAtMs
        self.receipt = receipt
    }
}

/// Where a device's chain stands, as the query API reports it.
public struct ChainStatus: Sendable, Equatable {
    public var batches: Int64
    /// 0 before the first batch.
    public var lastBseq: Int64
    public var lastBatchAtMs: Int64?
    public var records: Int64
    /// Forks and record gaps on record for the device.
    public var incidents: Int64
    /// Set when the device is silent (no batch for more than twice its declared heartbeat).
    public var silentForMs: Int64?

    public init(batches: Int64 = 0, lastBseq: Int64 = 0, lastBatchAtMs: Int64? = nil, records: Int64 = 0, incidents: Int64 = 0, silentForMs: Int64? = nil) {
        self.batches = batches
        self.lastBseq = lastBseq
        self.lastBatchAtMs = lastBatchAtMs
        self.records = records
        self.incidents = incidents
        self.silentForMs = silentForMs
    }
}

/// The bank's storage: SQLite for a pilot on one box (``SQLiteBankStore``), PostgreSQL for several
/// receivers sharing one database (`PostgresBankStore` in VouchBankPostgres). Every request path of
/// `vouch-bank serve` goes through this protocol.
///
/// Implementations must apply ``ChainRule`` and store a batch inside one transaction, holding the
/// device's chain against every other writer (another receiver included) from the head it read to the
/// commit, so two receivers racing on the same device cannot both extend its chain, and a resend of a
/// stored batch is a duplicate, never a second copy. No receipt may leave before its batch is durable.
public protocol BankStore: Sendable {
    func enroll(_ device: EnrolledDevice) async throws(BankError)
    func device(kid: String) async throws(BankError) -> EnrolledDevice?
    func devices() async throws(BankError) -> [EnrolledDevice]
    /// Classifies and, when it extends the chain, stores the batch. `signReceipt` is called inside
    /// the transaction with the device's log size after acceptance.
    func accept(
        _ batch: VerifiedBatch, records: [EvidenceRecord], device: EnrolledDevice, nowMs: Int64, signReceipt: @escaping @Sendable (Receipt) -> String
    ) async throws(BankError) -> IngestResult
    func events(device: String?) async throws(BankError) -> [StoredEvent]
    func batches(device: String) async throws(BankError) -> [StoredBatch]
    /// Stored incidents, then devices silent at `nowMs` (as kind "silence").
    func incidents(device: String?, nowMs: Int64) async throws(BankError) -> [Incident]
    func silentDevices(nowMs: Int64) async throws(BankError) -> [Silence]
    /// The proof that record `rseq` of `device` is in a batch the device signed.
    func inclusionProof(device: String, rseq: Int64) async throws(BankError) -> InclusionProof
    /// Every key the device has had, oldest first.
    func keys(device: String) async throws(BankError) -> [EnrolledDevice]
    /// The device through its current key; nil when no device has that id.
    func device(id: String) async throws(BankError) -> EnrolledDevice?
    /// Revokes the device from `atMs` on (a second revocation keeps the first time); 404 `E_NOT_FOUND`
    /// for an unknown id.
    func revoke(device: String, atMs: Int64) async throws(BankError) -> EnrolledDevice
    func chainStatus(device: String, nowMs: Int64) async throws(BankError) -> ChainStatus
    /// The bank's log size and root now.
    func logHead() async throws(BankError) -> (size: Int64, root: String)
    /// A device's stored records of one kind (`sum`, `gap`…), by rseq: of one channel when given, with
    /// wall time from `fromMs` (inclusive) until `untilMs` (exclusive) when given, after `afterRseq` when
    /// given (the cursor of the next page), at most `limit`.
    func records(device: String, kind: String, channel: String?, fromMs: Int64?, untilMs: Int64?, afterRseq: Int64?, limit: Int) async throws(BankError) -> [StoredRecord]
    /// The wall time of a device's record, when the bank holds it.
    func recordWallMs(device: String, rseq: Int64) async throws(BankError) -> Int64?
}

extension Silence {
    /// A quiet device as ``BankStore/incidents(device:nowMs:)`` lists it (kind "silence").
    public func incident(nowMs: Int64) -> Incident {
        Incident(
            device: device, kind: "silence", bseq: lastBseq,
            detail: "no batch for \(silentForMs / 1000) s after batch \(lastBseq); the device declared a heartbeat every \(heartbeatMs / 1000) s",
            evidence: nil, atMs: nowMs)
    }
}

/// A record line as the bank holds it.
public struct StoredRecord: Sendable, Equatable {
    public var rseq: Int64
    public var bseq: Int64
    /// Exactly as the device signed it.
    public var line: [UInt8]

    public init(rseq: Int64, bseq: Int64, line: [UInt8]) {
        self.rseq = rseq
        self.bseq = bseq
        self.line = line
    }
}

extension EvidenceRecord {
    /// The channel the bank indexes a record by: a summary's, a gap's (nil for the whole device).
    public var queryChannel: String? {
        switch self {
        case .summary(let s): s.channel
        case .gap(let g): g.channel
        default: nil
        }
    }
}

/// A store that answers on the caller's thread (SQLite, in process): the synchronous ingest path
/// used by tools and tests. A networked store has no such path, so nothing blocks a thread on it.
public protocol SynchronousBankStore: BankStore {
    func device(kid: String) throws(BankError) -> EnrolledDevice?
    func accept(
        _ batch: VerifiedBatch, records: [EvidenceRecord], device: EnrolledDevice, nowMs: Int64, signReceipt: @escaping @Sendable (Receipt) -> String
    ) throws(BankError) -> IngestResult
}
