import Dispatch
import Foundation
import Logging
import Testing
import VouchCore
import VouchModbus
@testable import VouchAgent

/// The control socket as the CLI meets it: a real Unix socket, real JSON lines. (A read forwarded to a
/// real Modbus peer through a running daemon is covered end to end in Tests/EndToEnd/test_modbus_cli.py.)
@Suite(.serialized) struct ControlSocketTests {
    /// Blocking socket calls run on a dispatch thread, never on the cooperative pool.
    func offThePool<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { c in DispatchQueue.global().async { c.resume(returning: body()) } }
    }

    func server(clients: [String: ModbusClient] = [:]) throws -> (ControlServer, URL) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vouch-ctl-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let path = ControlSocket.path(dataDir: dir.path)
        return (ControlServer(path: path, deviceID: "site-1", clients: clients, logger: Logger(label: "test")), dir)
    }

    func ask(_ request: ControlRequest, _ path: String) async -> Result<ControlResponse?, ControlClientError> {
        await offThePool { Result { () throws(ControlClientError) -> ControlResponse? in try ControlSocket.ask(request, socketPath: path, timeout: .seconds(5)) } }
    }

    @Test func noDaemonMeansNil() async throws {
        let (s, dir) = try server()
        defer { try? FileManager.default.removeItem(at: dir) }
        #expect(try await ask(ControlRequest(op: "ping"), s.path).get() == nil)
    }

    @Test func pingNamesTheDeviceAndTheBusesItOwns() async throws {
        let tcp = ModbusClient(endpoint: .tcp(host: "127.0.0.1", port: SimulatedPort.unused))
        let (s, dir) = try server(clients: ["tcp://127.0.0.1:\(SimulatedPort.unused)": tcp])
        defer { try? FileManager.default.removeItem(at: dir) }
        try s.listen()
        defer { s.stop() }
        var info = stat()
        #expect(stat(s.path, &info) == 0)
        #expect(info.st_mode & 0o777 == 0o660, "the socket is for the daemon's user and group only")
        let pong = try #require(try await ask(ControlRequest(op: "ping"), s.path).get())
        #expect(pong == ControlResponse(ok: true, device: "site-1", endpoints: ["tcp://127.0.0.1:\(SimulatedPort.unused)"]))
    }

    @Test func aReadGoesThroughTheBusClientAndItsErrorComesBack() async throws {
        let url = "tcp://127.0.0.1:\(SimulatedPort.unused)"
        let (s, dir) = try server(clients: [url: ModbusClient(endpoint: .tcp(host: "127.0.0.1", port: SimulatedPort.unused))])
        defer { try? FileManager.default.removeItem(at: dir) }
        try s.listen()
        defer { s.stop() }
        let answer = try #require(try await ask(ControlRequest(op: "modbus.read", url: url, unit: 1, kind: "holding", address: 0, count: 2, timeoutMs: 200), s.path).get())
        #expect(answer.ok == false)
        #expect(answer.code == "E_MODBUS_ECONNREFUSED", "the daemon's client tried the device: \(answer)")
        let notMine = try #require(try await ask(ControlRequest(op: "modbus.read", url: "rtu:///dev/ttyUSB9", unit: 1, kind: "holding", address: 0, count: 1), s.path).get())
        #expect(notMine.code == "E_CONTROL_NOT_OWNED")
        let incomplete = try #require(try await ask(ControlRequest(op: "modbus.read", url: url), s.path).get())
        #expect(incomplete.code == "E_CONTROL_REQUEST")
        let unknown = try #require(try await ask(ControlRequest(op: "reboot"), s.path).get())
        #expect(unknown.code == "E_CONTROL_OP")
        #expect(unknown.message?.contains("ping, status, modbus.read") == true)
    }

    @Test func aStaleSocketIsReplacedButALiveOneIsNot() async throws {
        let (first, dir) = try server()
        defer { try? FileManager.default.removeItem(at: dir) }
        try first.listen()
        let (second, _) = (ControlServer(path: first.path, deviceID: "other", clients: [:], logger: Logger(label: "test")), dir)
        let refusal = await offThePool { Result { () throws(ControlClientError) in try second.listen() } }
        #expect(throws: ControlClientError.self) { try refusal.get() }
        first.stop()
        // A socket file left behind by a killed daemon: nothing accepts on it.
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = try #require(ControlSocket.unixAddress(first.path))
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        close(fd)
        #expect(FileManager.default.fileExists(atPath: first.path))
        let third = ControlServer(path: first.path, deviceID: "third", clients: [:], logger: Logger(label: "test"))
        let started = await offThePool { Result { () throws(ControlClientError) in try third.listen() } }
        try started.get()
        defer { third.stop() }
        #expect(try await ask(ControlRequest(op: "ping"), first.path).get()?.device == "third")
    }
}

/// A loopback TCP port nothing listens on (bound, then released).
enum SimulatedPort {
    static let unused: Int = {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        return Int(UInt16(bigEndian: addr.sin_port))
    }()
}
