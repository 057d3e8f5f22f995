import CModbus
import Dispatch
import Synchronization
import VouchCore

#if canImport(Glibc)
import Glibc
#endif

/// One Modbus TCP connection through libmodbus. This file is the only place that calls libmodbus.
///
/// libmodbus blocks and is not thread-safe, so every call happens on this client's own serial
/// dispatch queue (never on Swift's cooperative pool) while holding `state`'s lock. The connection is
/// opened lazily and closed after any error that may leave it unusable (timeouts included: a late
/// answer must not be taken for the next request's), so the next read reconnects.
public final class ModbusTCPClient: Sendable {
    public let endpoint: ModbusEndpoint
    public let unitId: Int
    public let responseTimeout: Duration

    private struct State: ~Copyable {
        var context: OpaquePointer?
        var connected = false
    }

    private let state: Mutex<State>
    private let queue: DispatchQueue

    public init(endpoint: ModbusEndpoint, unitId: Int, responseTimeout: Duration) {
        self.endpoint = endpoint
        self.unitId = unitId
        self.responseTimeout = responseTimeout
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

    /// Reads `count` registers starting at `address` (0-based, as on the wire).
    public func readRegisters(_ kind: ModbusRegisterKind, address: Int, count: Int) async throws(ModbusError) -> [UInt16] {
        let result: Result<[UInt16], ModbusError> = await withCheckedContinuation { continuation in
            queue.async {
                continuation.resume(returning: Result { () throws(ModbusError) -> [UInt16] in
                    try self.readRegistersBlocking(kind, address: address, count: count)
                })
            }
        }
        return try result.get()
    }

    /// The blocking form, for command-line tools that own their thread.
    public func readRegistersBlocking(_ kind: ModbusRegisterKind, address: Int, count: Int) throws(ModbusError) -> [UInt16] {
        let operation = "read \(kind.rawValue) registers \(address)\(count > 1 ? "–\(address + count - 1)" : "") from unit \(unitId) at \(endpoint)"
        guard (1...Int(MODBUS_MAX_READ_REGISTERS)).contains(count), (0...65535).contains(address), address + count <= 65536 else {
            throw ModbusError(errno: EINVAL, message: "a read covers 1 to 125 registers within 0–65535", operation: operation)
        }
        return try state.withLock { (s: inout State) throws(ModbusError) -> [UInt16] in
            let ctx = try connectIfNeeded(&s)
            var words = [UInt16](repeating: 0, count: count)
            let n = words.withUnsafeMutableBufferPointer { buffer in
                kind == .holding
                    ? modbus_read_registers(ctx, Int32(address), Int32(count), buffer.baseAddress)
                    : modbus_read_input_registers(ctx, Int32(address), Int32(count), buffer.baseAddress)
            }
            if n < 0 {
                let error = Self.lastError(operation)
                if !error.isDeviceException { disconnect(&s) }
                throw error
            }
            guard n == count else {
                disconnect(&s)
                throw ModbusError(errno: ModbusError.enobase + 16, message: "expected \(count) registers, got \(n)", operation: operation)
            }
            return words
        }
    }

    /// Closes the connection; the next read opens a new one.
    public func close() {
        queue.sync { state.withLock { disconnect(&$0) } }
    }

    private func connectIfNeeded(_ s: inout State) throws(ModbusError) -> OpaquePointer {
        if s.connected, let ctx = s.context { return ctx }
        let operation = "connect to \(endpoint)"
        if s.context == nil {
            guard case .tcp(let host, let port) = endpoint,
                let ctx = modbus_new_tcp_pi(host, String(port))
            else { throw Self.lastError(operation) }
            let micros = max(1_000, responseTimeout.components.seconds * 1_000_000 + responseTimeout.components.attoseconds / 1_000_000_000_000)
            modbus_set_response_timeout(ctx, UInt32(micros / 1_000_000), UInt32(micros % 1_000_000))
            guard modbus_set_slave(ctx, Int32(unitId)) == 0 else {
                let error = Self.lastError("set unit id \(unitId)")
                modbus_free(ctx)
                throw error
            }
            s.context = ctx
        }
        guard let ctx = s.context else { throw ModbusError(errno: EBADF, message: "no libmodbus context", operation: operation) }
        if modbus_connect(ctx) != 0 {
            throw Self.lastError(operation)
        }
        s.connected = true
        return ctx
    }

    private func disconnect(_ s: inout State) {
        if s.connected, let ctx = s.context { modbus_close(ctx) }
        s.connected = false
    }

    private static func lastError(_ operation: String) -> ModbusError {
        let code = vouch_modbus_errno()
        let message = modbus_strerror(code).map { String(cString: $0) } ?? "errno \(code)"
        return ModbusError(errno: code, message: message, operation: operation)
    }
}
