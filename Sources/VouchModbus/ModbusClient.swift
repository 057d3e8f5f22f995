import CModbus
import Dispatch
import Synchronization
import VouchCore

#if canImport(Glibc)
import Glibc
#endif

/// One Modbus connection through libmodbus: a TCP socket, or a serial port shared by every device
/// on that RS-485 line. This file is the only place that calls libmodbus.
///
/// libmodbus blocks and is not thread-safe, so every call happens on this client's own serial
/// dispatch queue (never on Swift's cooperative pool) while holding `state`'s lock; requests to
/// different units on one line therefore never overlap on the wire.
///
/// Recovery, so that polling never stops for good:
/// - TCP: any failure other than a device's exception closes the socket; the next read reconnects.
/// - RTU: a port that fails (EIO, ENXIO, ENODEV, EBADF: a USB adapter unplugged) is closed and its
///   context freed; the next read opens the path again, and works once the adapter is back. Other
///   failures (timeout, bad CRC) flush the input, so a late answer is never taken for the next one's.
public final class ModbusClient: Sendable {
    public let endpoint: ModbusEndpoint
    public let serial: SerialSettings?
    public let byteTimeout: Duration?

    private struct State: ~Copyable {
        var context: OpaquePointer?
        var connected = false
        var timeoutMicros: Int64 = -1
    }

    private let state: Mutex<State>
    private let queue: DispatchQueue

    public init(endpoint: ModbusEndpoint, serial: SerialSettings? = nil, byteTimeout: Duration? = nil) {
        self.endpoint = endpoint
        self.serial = serial
        self.byteTimeout = byteTimeout
        self.state = Mutex(State())
        self.queue = DispatchQueue(label: "vouch.modbus.\(endpoint)")
    }

    deinit {
        state.withLock { s in
            if let ctx = s.context {
                modbus_close(ctx)
                modbus_free(ctx)
            }
        }
    }

    /// Reads `count` registers or bits of `kind` from `unit`, starting at `address` (0-based, as on the
    /// wire). Bits come back as words of 0 or 1.
    public func read(_ kind: ModbusRegisterKind, unit: Int, address: Int, count: Int, timeout: Duration) async throws(ModbusError) -> [UInt16] {
        let result: Result<[UInt16], ModbusError> = await withCheckedContinuation { continuation in
            queue.async {
                continuation.resume(
                    returning: Result { () throws(ModbusError) -> [UInt16] in
                        try self.readBlocking(kind, unit: unit, address: address, count: count, timeout: timeout)
                    })
            }
        }
        return try result.get()
    }

    /// The blocking form, for command-line tools that own their thread.
    public func readBlocking(_ kind: ModbusRegisterKind, unit: Int, address: Int, count: Int, timeout: Duration) throws(ModbusError) -> [UInt16] {
        // Built only when something fails: a poll loop reads thousands of times a second.
        func operation() -> String {
            let what = kind.isBit ? (kind == .coil ? "coils" : "discrete inputs") : "\(kind.rawValue) registers"
            return "read \(what) \(address)\(count > 1 ? "–\(address + count - 1)" : "") from unit \(unit) at \(endpoint)"
        }
        guard (1...kind.maxPerRequest).contains(count), (0...65535).contains(address), address + count <= 65536 else {
            throw ModbusError(errno: EINVAL, message: "a read covers 1 to \(kind.maxPerRequest) \(kind.isBit ? "bits" : "registers") within 0–65535", operation: operation())
        }
        guard (0...255).contains(unit) else { throw ModbusError(errno: EINVAL, message: "unit id must be 0–255", operation: operation()) }
        return try state.withLock { (s: inout State) throws(ModbusError) -> [UInt16] in
            let ctx = try connectIfNeeded(&s)
            let micros = max(1_000, Self.micros(timeout))
            if micros != s.timeoutMicros {
                modbus_set_response_timeout(ctx, UInt32(micros / 1_000_000), UInt32(micros % 1_000_000))
                s.timeoutMicros = micros
            }
            guard modbus_set_slave(ctx, Int32(unit)) == 0 else { throw Self.lastError("set unit id \(unit)") }
            var words = [UInt16](repeating: 0, count: count)
            var n: Int32
            if kind.isBit {
                var bits = [UInt8](repeating: 0, count: count)
                n = bits.withUnsafeMutableBufferPointer { buffer in
                    kind == .coil
                        ? modbus_read_bits(ctx, Int32(address), Int32(count), buffer.baseAddress)
                        : modbus_read_input_bits(ctx, Int32(address), Int32(count), buffer.baseAddress)
                }
                if n == count { words = bits.map { UInt16($0 == 0 ? 0 : 1) } }
            } else {
                n = words.withUnsafeMutableBufferPointer { buffer in
                    kind == .holding
                        ? modbus_read_registers(ctx, Int32(address), Int32(count), buffer.baseAddress)
                        : modbus_read_input_registers(ctx, Int32(address), Int32(count), buffer.baseAddress)
                }
            }
            if n < 0 {
                let error = Self.lastError(operation())
                recover(after: error, &s)
                throw error
            }
            guard n == count else {
                let error = ModbusError(errno: ModbusError.enobase + 16, message: "expected \(count) values, got \(n)", operation: operation())
                recover(after: error, &s)
                throw error
            }
            return words
        }
    }

    /// Closes the connection or port; the next read opens it again.
    public func close() {
        queue.sync { state.withLock { release(&$0) } }
    }

    private func recover(after error: ModbusError, _ s: inout State) {
        if error.isDeviceException { return }
        switch endpoint {
        case .tcp:
            disconnect(&s)
        case .rtu:
            if error.isPortGone {
                release(&s)
            } else if let ctx = s.context {
                _ = modbus_flush(ctx)
            }
        }
    }

    private func connectIfNeeded(_ s: inout State) throws(ModbusError) -> OpaquePointer {
        if s.connected, let ctx = s.context { return ctx }
        let operation = endpoint.isSerial ? "open serial port \(endpoint)" : "connect to \(endpoint)"
        if s.context == nil {
            let created: OpaquePointer?
            switch endpoint {
            case .tcp(let host, let port):
                created = modbus_new_tcp_pi(host, String(port))
            case .rtu(let path):
                let line = serial ?? SerialSettings()
                created = modbus_new_rtu(path, Int32(line.baudRate), CChar(bitPattern: line.parity.letter.asciiValue ?? UInt8(ascii: "N")), Int32(line.dataBits), Int32(line.stopBits))
            }
            guard let ctx = created else { throw Self.lastError(operation) }
            if let byteTimeout {
                let micros = max(1_000, Self.micros(byteTimeout))
                modbus_set_byte_timeout(ctx, UInt32(micros / 1_000_000), UInt32(micros % 1_000_000))
            }
            s.context = ctx
            s.timeoutMicros = -1
        }
        guard let ctx = s.context else { throw ModbusError(errno: EBADF, message: "no libmodbus context", operation: operation) }
        if modbus_connect(ctx) != 0 {
            let error = Self.lastError(operation)
            // A context whose port could not be opened is rebuilt next time (the device node may come back
            // as a new inode); a TCP context is reused.
            if endpoint.isSerial { release(&s) }
            throw error
        }
        if let line = serial {
            if line.rs485, modbus_rtu_set_serial_mode(ctx, MODBUS_RTU_RS485) != 0 {
                let error = Self.lastError("switch \(endpoint) to RS-485 mode")
                release(&s)
                throw ModbusError(
                    errno: error.errno, message: error.message + "; this port has no kernel RS-485 mode: set rs485 = false (most USB RS-485 adapters switch direction themselves)",
                    operation: error.operation)
            }
            if line.rts != .none, modbus_rtu_set_rts(ctx, line.rts == .up ? MODBUS_RTU_RTS_UP : MODBUS_RTU_RTS_DOWN) != 0 {
                let error = Self.lastError("set RTS \(line.rts.rawValue) on \(endpoint)")
                release(&s)
                throw error
            }
        }
        s.connected = true
        return ctx
    }

    private func disconnect(_ s: inout State) {
        if s.connected, let ctx = s.context { modbus_close(ctx) }
        s.connected = false
    }

    private func release(_ s: inout State) {
        disconnect(&s)
        if let ctx = s.context { modbus_free(ctx) }
        s.context = nil
    }

    static func micros(_ d: Duration) -> Int64 {
        d.components.seconds * 1_000_000 + d.components.attoseconds / 1_000_000_000_000
    }

    private static func lastError(_ operation: String) -> ModbusError {
        let code = vouch_modbus_errno()
        let message = modbus_strerror(code).map { String(cString: $0) } ?? "errno \(code)"
        return ModbusError(errno: code, message: message, operation: operation)
    }
}
