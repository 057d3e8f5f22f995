import Foundation

/// The one set of rules for a Modbus device's url, shared by the config loader (`url = "…"` in
/// [[modbus.device]]) and the technician's CLI (`vouch modbus … --url …`).
extension ModbusEndpoint {
    /// Why a text is not a Modbus endpoint. `description` words it without context; a caller with
    /// context (a config key, a command-line option) may word it from `kind` instead.
    public struct URLProblem: Error, Sendable, Equatable, CustomStringConvertible {
        public enum Kind: Sendable, Equatable {
            /// `tcp://HOST:PORT` with a port outside 1–65535.
            case portOutOfRange(Int)
            /// `rtu://` or `file://` without an absolute device path after it; `scheme` includes "://".
            case needsDevicePath(scheme: String)
            /// Neither a tcp:// nor an rtu:// / file:// url.
            case unrecognised
        }

        public let url: String
        public let kind: Kind

        public var description: String {
            switch kind {
            case .portOutOfRange(let port): "port \(port) in \"\(url)\" is out of range 1–65535"
            case .needsDevicePath(let scheme): "\"\(url)\" needs an absolute device path after \(scheme), e.g. \"rtu:///dev/ttyUSB0\""
            case .unrecognised: "\"\(url)\" is not a Modbus url; expected \(ModbusEndpoint.urlExpected)"
            }
        }
    }

    /// What a Modbus url looks like, for error messages.
    public static let urlExpected =
        "\"tcp://HOST:PORT\" (e.g. \"tcp://192.168.1.20:502\") or \"rtu:///dev/PORT\" (e.g. \"rtu:///dev/serial/by-id/usb-FTDI_…-port0\")"

    /// "tcp://host[:port]" (port 502 when left out), "rtu:///dev/…" or Telegraf's "file:///dev/…".
    public static func parse(_ url: String) -> Result<ModbusEndpoint, URLProblem> {
        if url.hasPrefix("tcp://") {
            if let parsed = URL(string: url), let host = parsed.host, !host.isEmpty, parsed.path.isEmpty || parsed.path == "/" {
                let port = parsed.port ?? 502
                return (1...65535).contains(port) ? .success(.tcp(host: host, port: port)) : .failure(URLProblem(url: url, kind: .portOutOfRange(port)))
            }
        } else if let scheme = ["rtu://", "file://"].first(where: { url.hasPrefix($0) }) {
            let path = String(url.dropFirst(scheme.count))
            if path.hasPrefix("/") && path.count > 1 && !path.contains("?") { return .success(.rtu(path: path)) }
            return .failure(URLProblem(url: url, kind: .needsDevicePath(scheme: scheme)))
        }
        return .failure(URLProblem(url: url, kind: .unrecognised))
    }
}
