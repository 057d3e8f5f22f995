#if canImport(Glibc)
import Glibc
#endif

/// A Modbus failure, as a technician needs it: what was attempted, the errno name, libmodbus's own
/// message, and what to check. `code` is stable (`E_MODBUS_<ERRNO NAME>`) and goes into evidence.
public struct ModbusError: Error, Sendable, Equatable, CustomStringConvertible {
    public let errno: Int32
    public let errnoName: String
    /// `modbus_strerror(errno)`.
    public let message: String
    /// What was being done, e.g. "read input registers 52–53 from unit 1 at tcp://10.0.0.5:502".
    public let operation: String

    public init(errno: Int32, message: String, operation: String) {
        self.errno = errno
        self.errnoName = Self.name(of: errno)
        self.message = message
        self.operation = operation
    }

    public var code: String { "E_MODBUS_\(errnoName)" }

    /// A Modbus exception response: the device answered, so the connection is healthy.
    public var isDeviceException: Bool { errno > Self.enobase && errno <= Self.enobase + 11 }

    /// The serial port itself failed or is missing (USB adapter unplugged): reopen it, don't just retry.
    public var isPortGone: Bool { ["EIO", "ENXIO", "ENODEV", "EBADF", "ENOENT"].contains(errnoName) }

    /// The device did not answer, or answered unreadably: the device (or the line) is in trouble, as
    /// opposed to an exception, where the device is fine and refuses one request.
    public var isCommunicationFailure: Bool { !isDeviceException }

    public var description: String {
        "\(operation): \(message) (\(errnoName))" + (hint.map { "; \($0)" } ?? "")
    }

    /// What to check on site.
    public var hint: String? {
        switch errnoName {
        case "ETIMEDOUT": "the device did not answer within the response timeout: check the unit id, the network path and the timeout"
        case "ECONNREFUSED": "nothing accepts connections there: check host and port and that the device's Modbus TCP server is on"
        case "ECONNRESET", "EPIPE": "the device closed the connection: it may accept only one client, or it restarted"
        case "EHOSTUNREACH", "ENETUNREACH": "no route to the device: check cabling, IP address and netmask"
        case "EMBXILADD": "the device has no such register: check the register map (0-based addresses on the wire) and the count"
        case "EMBXILFUN": "the device does not support this function: try the other register kind (holding/input)"
        case "EMBXSFAIL": "the device reported a failure; with a gateway, the unit id may not exist behind it"
        case "EMBXGPATH", "EMBXGTAR": "the Modbus gateway cannot reach the target unit: check the unit id and the serial side"
        case "EMBBADSLAVE": "a different unit answered: two devices may share one unit id"
        case "EMBBADCRC": "an answer with a bad CRC: check baud rate and parity, A/B wiring, 120 Ω termination at both ends and biasing, and that no two devices share a unit id"
        case "EMBBADDATA": "an answer that does not fit the request: check the baud rate and that only one master drives the line"
        case "EIO", "ENXIO", "ENODEV": "the serial port failed (USB adapter unplugged or faulty): Vouch reopens it when it is back"
        case "ENOENT": "no such serial port: check the path (prefer /dev/serial/by-id/…, which survives renumbering) and that the adapter is plugged in"
        case "EACCES", "EPERM": "permission denied on the port: the vouch user needs group dialout"
        case "EBUSY": "the serial port is in use by another program (a second agent, ModemManager, a terminal)"
        default: nil
        }
    }

    static let enobase: Int32 = 112_345_678

    static func name(of errno: Int32) -> String {
        let libmodbus: [Int32: String] = [
            1: "EMBXILFUN", 2: "EMBXILADD", 3: "EMBXILVAL", 4: "EMBXSFAIL", 5: "EMBXACK", 6: "EMBXSBUSY",
            7: "EMBXNACK", 8: "EMBXMEMPAR", 10: "EMBXGPATH", 11: "EMBXGTAR", 12: "EMBBADCRC", 13: "EMBBADDATA",
            14: "EMBBADEXC", 15: "EMBUNKEXC", 16: "EMBMDATA", 17: "EMBBADSLAVE",
        ]
        if let n = libmodbus[errno - enobase] { return n }
        let system: [Int32: String] = [
            EPERM: "EPERM", ENOENT: "ENOENT", EINTR: "EINTR", EIO: "EIO", ENXIO: "ENXIO", EBADF: "EBADF",
            EAGAIN: "EAGAIN", ENOMEM: "ENOMEM", EACCES: "EACCES", EBUSY: "EBUSY", ENODEV: "ENODEV", EINVAL: "EINVAL",
            EPIPE: "EPIPE", ENOTSOCK: "ENOTSOCK", ECONNABORTED: "ECONNABORTED", ECONNRESET: "ECONNRESET",
            ENOTCONN: "ENOTCONN", ETIMEDOUT: "ETIMEDOUT", ECONNREFUSED: "ECONNREFUSED", EHOSTUNREACH: "EHOSTUNREACH",
            ENETUNREACH: "ENETUNREACH", ENOTTY: "ENOTTY", EHOSTDOWN: "EHOSTDOWN", EADDRNOTAVAIL: "EADDRNOTAVAIL", EMFILE: "EMFILE",
        ]
        return system[errno] ?? "ERRNO_\(errno)"
    }
}
