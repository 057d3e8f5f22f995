import Dispatch
import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import VouchCore
import VouchModbus
import VouchStore
import VouchUplink

#if canImport(Glibc)
import Glibc
#endif

/// The agent's local control socket (`<data_dir>/vouch.sock`, mode 0660): the technician's CLI asks the
/// running daemon instead of opening a port the daemon owns — two masters on one RS-485 line corrupt
/// each other's frames.
///
/// Protocol: one JSON request line per connection, one JSON answer line (``ControlRequest``,
/// ``ControlResponse``). Requests are served on a dispatch queue, never on the cooperative pool; a
/// Modbus read goes through the bus's own client, whose lock serialises it with the poller's requests.
public struct ControlRequest: Codable, Sendable, Equatable {
    public var op: String
    public var url: String?
    public var unit: Int?
    public var kind: String?
    public var address: Int?
    public var count: Int?
    public var timeoutMs: Int?
    /// `release.open`: how long, why, on which channels (none: all), by whom.
    public var durationMs: Int64?
    public var reason: String?
    public var channels: [String]?
    public var by: String?
    /// `release.close`: which window (none: the only one open).
    public var release: Int64?

    public init(op: String, url: String? = nil, unit: Int? = nil, kind: String? = nil, address: Int? = nil, count: Int? = nil, timeoutMs: Int? = nil) {
        self.op = op
        self.url = url
        self.unit = unit
        self.kind = kind
        self.address = address
        self.count = count
        self.timeoutMs = timeoutMs
    }

    public static func releaseOpen(durationMs: Int64, reason: String, channels: [String], by: String?) -> ControlRequest {
        var r = ControlRequest(op: "release.open")
        r.durationMs = durationMs
        r.reason = reason
        r.channels = channels
        r.by = by
        return r
    }

    public static func releaseClose(id: Int64?, by: String?, note: String?) -> ControlRequest {
        var r = ControlRequest(op: "release.close")
        r.release = id
        r.by = by
        r.reason = note
        return r
    }
}

public struct ControlResponse: Codable, Sendable, Equatable {
    public var ok: Bool
    public var code: String?
    public var message: String?
    public var device: String?
    public var words: [UInt16]?
    /// The endpoints whose buses this daemon owns (answer to "ping").
    public var endpoints: [String]?
    /// A failed Modbus read: the errno and what was attempted, so the CLI rebuilds the same ``ModbusError``.
    public var errno: Int32?
    public var operation: String?
    /// Release windows: the one opened or closed, or those open (answer to `release.list`).
    public var releases: [ReleaseWindow]?
    /// The agent's state (answer to `status`).
    public var status: AgentStatus?

    public static func failure(_ code: String, _ message: String) -> ControlResponse {
        ControlResponse(ok: false, code: code, message: message)
    }
}

public enum ControlSocket {
    /// Where the daemon of a config listens.
    public static func path(dataDir: String) -> String { dataDir + "/vouch.sock" }

    /// The running agent's status; nil when no agent answers (or it answers without one).
    public static func status(socketPath: String, timeout: Duration = .seconds(3)) -> AgentStatus? {
        guard let answer = try? ask(ControlRequest(op: "status"), socketPath: socketPath, timeout: timeout), answer.ok else { return nil }
        return answer.status
    }
    /// Longest request line accepted.
    static let maxRequest = 64 * 1024

    /// Sends one request; nil when no daemon listens there (no socket, or a stale one).
    public static func ask(_ request: ControlRequest, socketPath: String, timeout: Duration = .seconds(10)) throws(ControlClientError) -> ControlResponse? {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw ControlClientError("cannot create a socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var tv = timeval(tv_sec: Int(timeout.components.seconds), tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        guard var address = unixAddress(socketPath) else { throw ControlClientError("socket path \(socketPath) is too long") }
        let connected = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        if connected != 0 {
            if [ENOENT, ECONNREFUSED].contains(errno) { return nil }
            throw ControlClientError("cannot reach the daemon at \(socketPath): \(String(cString: strerror(errno)))\(errno == EACCES ? " (the user needs the vouch group)" : "")")
        }
        guard var line = try? JSONEncoder().encode(request) else { throw ControlClientError("cannot encode the request") }
        line.append(0x0A)
        guard writeAll(fd, line) else { throw ControlClientError("the daemon closed the connection: \(String(cString: strerror(errno)))") }
        guard let answer = readLine(fd, limit: maxRequest * 4) else { throw ControlClientError("no answer from the daemon within \(timeout)") }
        do { return try JSONDecoder().decode(ControlResponse.self, from: answer) } catch {
            throw ControlClientError("the daemon's answer is not understood (\(error)); is the CLI the same version as the daemon?")
        }
    }

    static func unixAddress(_ path: String) -> sockaddr_un? {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return nil }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
        }
        return address
    }

    static func writeAll(_ fd: Int32, _ data: Data) -> Bool {
        data.withUnsafeBytes { raw -> Bool in
            var offset = 0
            while offset < raw.count {
                let n = send(fd, raw.baseAddress?.advanced(by: offset), raw.count - offset, Int32(MSG_NOSIGNAL))
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { return false }
                offset += n
            }
            return true
        }
    }

    /// Bytes up to the first newline; nil on EOF before one, a timeout, or more than `limit` bytes.
    static func readLine(_ fd: Int32, limit: Int) -> Data? {
        var data = Data()
        var buffer = [UInt8](repeating: 0, count: 4096)
        while data.count <= limit {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return nil }
            if let newline = buffer[0..<n].firstIndex(of: 0x0A) {
                data.append(contentsOf: buffer[0..<newline])
                return data
            }
            data.append(contentsOf: buffer[0..<n])
        }
        return nil
    }
}

extension ControlSocket {
    /// Reads through the running agent that owns `endpoint`'s bus; nil when no agent listens at
    /// `socketPath` or it does not poll that endpoint (then the caller may open the port itself).
    public static func modbusReader(for endpoint: ModbusEndpoint, socketPath: String) throws(ControlClientError) -> AgentModbusReader? {
        guard let pong = try ask(ControlRequest(op: "ping"), socketPath: socketPath, timeout: .seconds(3)), pong.ok,
            pong.endpoints?.contains(endpoint.description) == true
        else { return nil }
        return AgentModbusReader(socketPath: socketPath, endpoint: endpoint, device: pong.device ?? "?")
    }
}

/// A Modbus read made by the running agent on the CLI's behalf, with the agent's own client.
public struct AgentModbusReader: Sendable {
    public let socketPath: String
    public let endpoint: ModbusEndpoint
    /// The agent's device id.
    public let device: String

    public func read(_ kind: ModbusRegisterKind, unit: Int, address: Int, count: Int, timeout: Duration) throws(ModbusError) -> [UInt16] {
        let ms = Int(timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000)
        let request = ControlRequest(op: "modbus.read", url: endpoint.description, unit: unit, kind: kind.rawValue, address: address, count: count, timeoutMs: ms)
        let operation = "read \(kind.rawValue) \(address) (+\(count)) from unit \(unit) at \(endpoint) through the agent"
        let answer: ControlResponse?
        do { answer = try ControlSocket.ask(request, socketPath: socketPath, timeout: timeout + .seconds(5)) } catch {
            throw ModbusError(errno: EIO, message: error.description, operation: operation)
        }
        guard let answer else { throw ModbusError(errno: ECONNREFUSED, message: "the agent stopped listening at \(socketPath)", operation: operation) }
        if answer.ok, let words = answer.words { return words }
        throw ModbusError(errno: answer.errno ?? EIO, message: answer.message ?? answer.code ?? "the agent refused", operation: answer.operation ?? operation)
    }
}

public struct ControlClientError: Error, Sendable, CustomStringConvertible {
    public static let code = "E_CONTROL"
    public let description: String
    init(_ d: String) { description = d }
}

/// Serves the control socket while the agent runs; removes it on shutdown.
final class ControlServer: Service, Sendable {
    let path: String
    let deviceID: String
    /// Each bus's client, by endpoint text (`rtu:///dev/…`, `tcp://host:port`).
    let clients: [String: ModbusClient]
    /// Keeps the release windows (nil in tests of the Modbus path alone).
    let pipeline: EvidencePipeline?
    /// What `status` reports beside the pipeline's part (nil: the op is refused).
    let statusSource: StatusSource?
    let logger: Logger

    /// The agent's parts `status` reads.
    struct StatusSource: Sendable {
        let outbox: Outbox
        let uplink: Uplink
        let bootCount: Int64
        let configSha256: String
        let startedWallMs: Int64
        let startedMonoMs: Int64
        let clock: any AgentClock

        /// The whole ``AgentStatus``: the pipeline's part, the outbox's counts, the uplink's delivery.
        func status(pipeline: EvidencePipeline, deviceID: String) async -> AgentStatus {
            let part = await pipeline.status()
            var counts: AgentStatus.Outbox?
            var outboxError: String?
            do {
                let o = try outbox.status()
                counts = AgentStatus.Outbox(
                    records: o.records, unsealedRecords: o.unsealedRecords, batches: o.batches, undeliveredBatches: o.undeliveredBatches, lastBseq: o.lastBseq)
            } catch { outboxError = "\(error)" }
            let now = clock.now()
            return AgentStatus(
                device: deviceID, version: VouchCoreInfo.agentVersion, pid: getpid(), configSha256: configSha256, startedWallMs: startedWallMs,
                uptimeMs: now.monoMs - startedMonoMs, bootCount: bootCount, clock: part.clock, channels: part.channels, rules: part.rules,
                openReleases: part.openReleases, outbox: counts, outboxError: outboxError, uplink: uplink.delivery)
        }
    }
    private let listener = SocketListener(name: "vouch.control")

    init(
        path: String, deviceID: String, clients: [String: ModbusClient], pipeline: EvidencePipeline? = nil, statusSource: StatusSource? = nil, logger: Logger
    ) {
        self.path = path
        self.deviceID = deviceID
        self.clients = clients
        self.pipeline = pipeline
        self.statusSource = statusSource
        self.logger = logger
    }

    func run() async throws {
        do { try listen() } catch {
            // The agent's evidence matters more than the technician's shortcut: run on without the socket.
            logger.error("control socket \(path) unavailable: \(error); `vouch` commands will open devices themselves")
            try? await gracefulShutdown()
            return
        }
        logger.info("control socket at \(path)")
        try? await gracefulShutdown()
        stop()
    }

    func listen() throws(ControlClientError) {
        // A socket left by a daemon that died is stale; one that accepts belongs to a running daemon.
        if FileManager.default.fileExists(atPath: path) {
            if (try? ControlSocket.ask(ControlRequest(op: "ping"), socketPath: path, timeout: .seconds(1))) != nil {
                throw ControlClientError("another agent is already serving \(path)")
            }
            unlink(path)
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw ControlClientError("socket: \(String(cString: strerror(errno)))") }
        guard var address = ControlSocket.unixAddress(path) else {
            close(fd)
            throw ControlClientError("path too long for a Unix socket")
        }
        let old = umask(0o117)  // 0660: the daemon's user and group only
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        umask(old)
        guard bound == 0, Glibc.listen(fd, 16) == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw ControlClientError("bind/listen: \(reason)")
        }
        listener.start(fd) { [self] client in serve(client) }
    }

    func stop() {
        if listener.stop() { unlink(path) }
    }

    private func serve(_ fd: Int32) {
        defer { close(fd) }
        var tv = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let response: ControlResponse
        if let line = ControlSocket.readLine(fd, limit: ControlSocket.maxRequest) {
            if let request = try? JSONDecoder().decode(ControlRequest.self, from: line) {
                response = handle(request, peer: UnixPeer.of(socket: fd))
            } else {
                response = .failure("E_CONTROL_REQUEST", "not a control request (one JSON object per line)")
            }
        } else {
            response = .failure("E_CONTROL_REQUEST", "no complete request line within 5 s (or longer than \(ControlSocket.maxRequest) bytes)")
        }
        guard var data = try? JSONEncoder().encode(response) else { return }
        data.append(0x0A)
        _ = ControlSocket.writeAll(fd, data)
    }

    func handle(_ request: ControlRequest, peer: UnixPeer? = nil) -> ControlResponse {
        switch request.op {
        case "release.open", "release.close", "release.list":
            return handleRelease(request, peer: peer)
        case "ping":
            return ControlResponse(ok: true, device: deviceID, endpoints: clients.keys.sorted())
        case "status":
            guard let pipeline, let source = statusSource else { return .failure("E_CONTROL_OP", "this agent does not report its status") }
            var response = ControlResponse(ok: true, device: deviceID)
            response.status = Self.wait { await source.status(pipeline: pipeline, deviceID: self.deviceID) }
            return response
        case "modbus.read":
            guard let url = request.url, let client = clients[url] else {
                return .failure("E_CONTROL_NOT_OWNED", "this agent does not poll \(request.url ?? "(no url)")")
            }
            guard let kind = request.kind.flatMap(ModbusRegisterKind.init(configName:)), let unit = request.unit, let address = request.address, let count = request.count else {
                return .failure("E_CONTROL_REQUEST", "modbus.read needs kind (coil|discrete|holding|input), unit, address and count")
            }
            let timeout = Duration.milliseconds(min(max(request.timeoutMs ?? 1_000, 10), 10_000))
            do {
                let words = try client.readBlocking(kind, unit: unit, address: address, count: count, timeout: timeout)
                return ControlResponse(ok: true, device: deviceID, words: words)
            } catch {
                return ControlResponse(ok: false, code: error.code, message: error.message, device: deviceID, errno: error.errno, operation: error.operation)
            }
        default:
            return .failure("E_CONTROL_OP", "unknown op \"\(request.op)\" (known: ping, status, modbus.read, release.open, release.close, release.list)")
        }
    }

    /// Runs on a control-queue thread (never the cooperative pool), so waiting for the pipeline here
    /// blocks nothing the agent needs.
    private func handleRelease(_ request: ControlRequest, peer: UnixPeer?) -> ControlResponse {
        guard let pipeline else { return .failure("E_CONTROL_OP", "this agent keeps no release windows") }
        let outcome: Result<[ReleaseWindow], ReleaseError>
        switch request.op {
        case "release.open":
            guard let durationMs = request.durationMs, let reason = request.reason else {
                return .failure("E_CONTROL_REQUEST", "release.open needs durationMs and reason")
            }
            let ask = ReleaseRequest(durationMs: durationMs, reason: reason, channels: request.channels ?? [], by: request.by, peer: peer)
            outcome = Self.wait { () async -> Result<[ReleaseWindow], ReleaseError> in
                do throws(ReleaseError) { return .success([try await pipeline.openRelease(ask)]) } catch { return .failure(error) }
            }
        case "release.close":
            let (id, by, note) = (request.release, request.by, request.reason)
            outcome = Self.wait { () async -> Result<[ReleaseWindow], ReleaseError> in
                do throws(ReleaseError) { return .success([try await pipeline.closeRelease(id: id, by: by, peer: peer, note: note)]) } catch { return .failure(error) }
            }
        default:
            outcome = Self.wait { () async -> Result<[ReleaseWindow], ReleaseError> in .success(await pipeline.openReleases()) }
        }
        switch outcome {
        case .success(let windows):
            var answer = ControlResponse(ok: true, device: deviceID)
            answer.releases = windows
            return answer
        case .failure(let error):
            return ControlResponse(ok: false, code: error.code.rawValue, message: error.message, device: deviceID)
        }
    }

    /// Runs `body` on the cooperative pool and waits for it on this (dispatch) thread.
    static func wait<T: Sendable>(_ body: @escaping @Sendable () async -> T) -> T {
        let result = Mutex<T?>(nil)
        let done = DispatchSemaphore(value: 0)
        Task {
            let value = await body()
            result.withLock { $0 = value }
            done.signal()
        }
        while true {
            done.wait()
            if let value = result.withLock({ $0 }) { return value }
        }
    }
}
