import VouchEvidence

/// An enrolled gateway.
public struct EnrolledDevice: Sendable, Equatable {
    public var id: String
    public var key: PublicJWK
    public var enrolledAtMs: Int64
    public var revokedAtMs: Int64?
    public var kid: String { key.thumbprint }

    public init(id: String, key: PublicJWK, enrolledAtMs: Int64, revokedAtMs: Int64? = nil) {
        self.id = id
        self.key = key
        self.enrolledAtMs = enrolledAtMs
        self.revokedAtMs = revokedAtMs
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
}

/// Something the bank saw that a credit officer must know about: a fork (the device signed two
/// histories; `evidence` holds the second signed batch) or records that never arrived.
public struct Incident: Sendable, Equatable {
    public var device: String
    /// "fork" | "record-gap"
    public var kind: String
    public var bseq: Int64
    public var detail: String
    public var evidence: String?
    public var atMs: Int64
}

public struct StoredBatch: Sendable, Equatable {
    public var device: String
    public var bseq: Int64
    public var hash: String
    public var token: String
    public var receivedAtMs: Int64
}

/// The bank's storage. Implementations must apply ``ChainRule`` and store a batch inside one
/// transaction, so two receivers racing on the same device cannot both extend the chain.
public protocol BankStore: Sendable {
    func enroll(_ device: EnrolledDevice) throws(BankError)
    func device(kid: String) throws(BankError) -> EnrolledDevice?
    func devices() throws(BankError) -> [EnrolledDevice]
    /// Classifies and, when it extends the chain, stores the batch. `signReceipt` is called inside
    /// the transaction with the device's log size after acceptance.
    func accept(_ batch: VerifiedBatch, records: [EvidenceRecord], device: EnrolledDevice, nowMs: Int64, signReceipt: (Receipt) -> String) throws(BankError) -> IngestResult
    func events(device: String?) throws(BankError) -> [StoredEvent]
    func batches(device: String) throws(BankError) -> [StoredBatch]
    func incidents(device: String?) throws(BankError) -> [Incident]
}
