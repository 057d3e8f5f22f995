/// Outbox failures. `code` values are stable.
public struct StoreError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: String, Sendable {
        case open = "E_STORE_OPEN"
        case io = "E_STORE_IO"
        /// The file system is full (SQLITE_FULL / ENOSPC): nothing is written until space returns.
        case full = "E_STORE_FULL"
        case corrupt = "E_STORE_CORRUPT"
        case invariant = "E_STORE_INVARIANT"
    }
    public let code: Code
    public let message: String
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }
    public var description: String { "\(code.rawValue): \(message)" }
}
