import VouchEvidence

/// Why the bank refused something. `code` is stable and returned to clients as `{"error":{"code":…}}`.
public struct BankError: Error, Sendable, Equatable, CustomStringConvertible {
    public let code: String
    public let status: Int
    public let message: String
    /// For 429: when the client may try again (the `Retry-After` header).
    public var retryAfterSeconds: Int?

    public init(_ code: String, status: Int, _ message: String, retryAfterSeconds: Int? = nil) {
        self.code = code
        self.status = status
        self.message = message
        self.retryAfterSeconds = retryAfterSeconds
    }

    public var description: String { "\(code): \(message)" }

    static func from(_ e: EvidenceError) -> BankError {
        let status: Int =
            switch e.code {
            case .badSignature, .wrongKey: 401
            default: 400
            }
        return BankError(e.code.rawValue, status: status, e.message)
    }

    /// The refusal for a chain anomaly, worded once for the receiver and `vouch-bank verify` alike;
    /// nil when the batch extends the chain or repeats an accepted one.
    public static func chain(_ verdict: ChainVerdict, device: String, bseq: Int64, prev: String) -> BankError? {
        switch verdict {
        case .extends, .duplicate:
            return nil
        case .gap(let expected):
            return BankError(chainGap, status: 409, "batch \(bseq) of \(device) skips ahead: batches \(expected)…\(bseq - 1) are missing (deleted, or not sent yet: a device sends in order)")
        case .prevMismatch(let expected):
            return BankError(chainPrev, status: 409, "batch \(bseq) of \(device) does not link to batch \(bseq - 1): prev \(prev.prefix(16))…, expected \(expected.prefix(16))…")
        case .fork(let forked):
            return BankError(chainFork, status: 409, "batch \(forked) of \(device) was already signed with different content: the device signed two histories")
        }
    }

    public static let contentType = "E_CONTENT_TYPE"
    public static let contentEncoding = "E_CONTENT_ENCODING"
    public static let tooLarge = "E_TOO_LARGE"
    public static let unknownDevice = "E_DEVICE_UNKNOWN"
    public static let revokedDevice = "E_DEVICE_REVOKED"
    public static let deviceMismatch = "E_DEVICE_MISMATCH"
    public static let chainGap = "E_CHAIN_GAP"
    public static let chainPrev = "E_CHAIN_PREV"
    public static let chainFork = "E_CHAIN_FORK"
    public static let chainReorder = "E_CHAIN_REORDER"
    public static let chainTruncated = "E_CHAIN_TRUNCATED"
    public static let chainSilent = "E_CHAIN_SILENT"
    public static let keyRotation = "E_KEY_ROTATION"
    public static let keyRetired = "E_KEY_RETIRED"
    public static let notFound = "E_NOT_FOUND"
    public static let recordOrder = "E_RSEQ_ORDER"
    public static let recordGap = "E_RSEQ_GAP"
    public static let enrollment = "E_ENROLLMENT"
    public static let store = "E_STORE"
    /// The query and admin API is off: the receiver was started without an API token.
    public static let apiDisabled = "E_API_DISABLED"
    /// No API token, or a wrong one.
    public static let apiToken = "E_API_TOKEN"
    /// A query parameter or path part is wrong.
    public static let query = "E_QUERY"
    /// This device uploads faster than the receiver allows.
    public static let rateLimited = "E_RATE_LIMITED"
    /// No such endpoint.
    public static let noRoute = "E_NO_ROUTE"
}
