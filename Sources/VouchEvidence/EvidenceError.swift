/// Why a piece of evidence was refused. ``Code`` values are stable: banks log and alert on them.
public struct EvidenceError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: String, Sendable, Equatable, CaseIterable {
        case malformedJWS = "E_JWS_MALFORMED"
        case unsupportedAlgorithm = "E_JWS_ALG"
        case badSignature = "E_JWS_SIGNATURE"
        case wrongKey = "E_JWS_KID"
        case malformedJSON = "E_JSON_MALFORMED"
        case malformedPayload = "E_PAYLOAD_MALFORMED"
        case unsupportedVersion = "E_PAYLOAD_VERSION"
        case merkleMismatch = "E_MERKLE_ROOT"
        case malformedKey = "E_KEY_MALFORMED"
        case malformedRecord = "E_RECORD_MALFORMED"
        /// The batch file is not `token LF (record LF)*`, or its record count differs from the manifest's `n`.
        case malformedBatch = "E_BATCH_MALFORMED"
        /// A record line is not in canonical form: its hash would depend on how it was re-encoded.
        case nonCanonicalRecord = "E_RECORD_NOT_CANONICAL"
        /// A key rotation record whose proof is not signed by the new key, or names other keys.
        case keyRotation = "E_KEY_ROTATION"
        /// An inclusion proof that does not lead to the signed root.
        case inclusionProof = "E_PROOF_INVALID"
        /// A receipt that does not name the batch it answers.
        case receiptMismatch = "E_RECEIPT_MISMATCH"
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code.rawValue): \(message)" }
}
