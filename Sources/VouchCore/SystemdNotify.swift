#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// systemd's service notification protocol (sd_notify(3)) without libsystemd: datagrams of
/// `KEY=VALUE` lines to the Unix socket named by `$NOTIFY_SOCKET` (a path, or `@name` in the abstract
/// namespace). `vouch run` under `Type=notify` says `READY=1` once it is up, `WATCHDOG=1` while it is
/// alive (`WatchdogSec=`), `STATUS=…` for `systemctl status`, and `STOPPING=1` when it shuts down.
public struct SystemdNotifier: Sendable, Equatable {
    public let socketPath: String
    /// How often to send `WATCHDOG=1`: half the `WatchdogSec=` systemd set (`$WATCHDOG_USEC`), as
    /// sd_watchdog_enabled(3) advises; nil when systemd watches nothing (or watches another process).
    public let watchdogInterval: Duration?

    /// What systemd asked for, from the environment; nil without `$NOTIFY_SOCKET` (not run by systemd,
    /// or not `Type=notify`). A malformed watchdog setting is reported, not ignored: systemd would
    /// restart an agent that never pings.
    public static func fromEnvironment(_ environment: [String: String], pid: Int32 = getpid()) throws(SystemdNotifyError) -> SystemdNotifier? {
        guard let socket = environment["NOTIFY_SOCKET"], !socket.isEmpty else { return nil }
        guard socket.hasPrefix("/") || socket.hasPrefix("@") else {
            throw SystemdNotifyError(.socket, "NOTIFY_SOCKET=\(socket) is neither a path nor @abstract")
        }
        guard socket.utf8.count < MemoryLayout.size(ofValue: sockaddr_un().sun_path) else {
            throw SystemdNotifyError(.socket, "NOTIFY_SOCKET=\(socket) is longer than a Unix socket address")
        }
        var interval: Duration?
        if let text = environment["WATCHDOG_USEC"] {
            guard let usec = UInt64(text), usec > 0 else {
                throw SystemdNotifyError(.watchdog, "WATCHDOG_USEC=\(text) is not a positive number of microseconds")
            }
            // WATCHDOG_PID names the process the watchdog is for; another one's is not ours to feed.
            if let owner = environment["WATCHDOG_PID"], Int32(owner) != pid {
                interval = nil
            } else {
                interval = .microseconds(Int64(min(usec / 2, UInt64(Int64.max))))
            }
        }
        return SystemdNotifier(socketPath: socket, watchdogInterval: interval)
    }

    public init(socketPath: String, watchdogInterval: Duration?) {
        self.socketPath = socketPath
        self.watchdogInterval = watchdogInterval
    }

    /// Sends one datagram of `KEY=VALUE` lines (newlines in a value become spaces).
    public func send(_ fields: [(String, String)]) throws(SystemdNotifyError) {
        let message = fields.map { "\($0.0)=\($0.1.replacingNewlines)" }.joined(separator: "\n")
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SystemdNotifyError(.send, "socket(AF_UNIX, SOCK_DGRAM): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var path = Array(socketPath.utf8)
        // "@name": the abstract namespace, whose address starts with a NUL byte and is not NUL-terminated.
        let abstract = path.first == UInt8(ascii: "@")
        if abstract { path[0] = 0 }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, byte) in path.enumerated() { raw[i] = byte }
        }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + path.count + (abstract ? 0 : 1))
        let sent = message.utf8CString.withUnsafeBufferPointer { text in
            withUnsafePointer(to: &address) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(fd, text.baseAddress, text.count - 1, Int32(MSG_NOSIGNAL), $0, length) }
            }
        }
        guard sent >= 0 else {
            throw SystemdNotifyError(.send, "cannot notify systemd at \(socketPath): \(String(cString: strerror(errno)))")
        }
    }
}

/// A notification systemd could not be sent; `code` is stable.
public struct SystemdNotifyError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: String, Sendable {
        /// `$NOTIFY_SOCKET` is not a usable address.
        case socket = "E_NOTIFY_SOCKET"
        /// `$WATCHDOG_USEC` is not a number.
        case watchdog = "E_NOTIFY_WATCHDOG"
        /// The datagram could not be sent.
        case send = "E_NOTIFY_SEND"
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code.rawValue): \(message)" }
}

extension String {
    fileprivate var replacingNewlines: String { String(map { $0 == "\n" ? " " : $0 }) }
}
