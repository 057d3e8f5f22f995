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
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code.rawValue): \(message)" }
}
