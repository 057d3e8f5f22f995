/// VouchEvidence: the contract between a gateway and the bank, and nothing else.
///
/// Invariants:
/// - Signed payloads carry integers and strings only; their bytes are canonical JSON, so any
///   implementation can recompute every hash.
/// - A batch is `JWS(ES256, device key, payload)`; `prev` = SHA-256 of the previous batch's signing
///   input; `bseq` is gap-free from 1; `root` is the RFC 6962 Merkle root of the records.
/// - Nothing here performs I/O or reads a clock: the same checks run on the device, at the bank and
///   in tests.
public enum VouchEvidenceInfo {
    public static let formatVersion = BatchPayload.version
}
