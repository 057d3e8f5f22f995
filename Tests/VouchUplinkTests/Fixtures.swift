import Foundation
import Hummingbird
import Logging
import Synchronization
import VouchBank
import VouchCore
import VouchEvidence
import VouchStore
import VouchUplink

#if canImport(Glibc)
import Glibc
#endif

enum Fixture {
    static let t0: Int64 = 1_750_000_000_000

    static func stamp(_ n: Int64) -> RecordStamp {
        // rseq is assigned by the outbox; 0 here on purpose.
        RecordStamp(rseq: 0, boot: 1, monoMs: 60_000 + n * 1_000, wallMs: t0 + n * 1_000, timeQuality: .synchronized)
    }

    static func summary(_ n: Int64) -> EvidenceRecord {
        .summary(
            ReadingSummary(
                stamp: stamp(n), channel: "press.current", intervalMs: 60_000, unit: "A", scale: -2, count: 60, errors: 0,
                min: 2_000, max: 2_300, mean: 2_140 + n, last: 2_150, lastError: nil))
    }

    static func event(_ n: Int64, phase: EventRecord.Phase) -> EvidenceRecord {
        .event(
            EventRecord(
                stamp: stamp(n), eventId: "1-120000-stoppage-press.current", phase: phase, rule: "stoppage", ruleVersion: 1,
                channel: "press.current", severity: "warning", startMonoMs: 120_000, startWallMs: t0 + 120_000,
                endMonoMs: phase == .end ? 180_000 : nil, endWallMs: phase == .end ? t0 + 180_000 : nil,
                durationMs: phase == .end ? 60_000 : 30_000, unit: "A", scale: -2, params: ["below": 50],
                window: [WindowSample(monoMs: 119_000, wallMs: t0 + 119_000, value: 2_100), WindowSample(monoMs: 120_000, wallMs: t0 + 120_000, value: nil)],
                explanation: "press current below 0.50 A"))
    }

    static func summaries(_ count: Int, from n: Int64 = 1) -> [EvidenceRecord] { (0..<Int64(count)).map { summary(n + $0) } }

    static func payload(_ token: String) throws -> BatchPayload {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let bytes = Base64URL.decode(parts[1]) else { throw TestFailure("not a JWS: \(token.prefix(40))") }
        return try BatchPayload(bytes: bytes)
    }

    static var quietLogger: Logger {
        var logger = Logger(label: "vouch-test")
        logger.logLevel = .critical
        return logger
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// A scripted clock: every reading is one second after the previous one.
final class StepClock: AgentClock {
    private let ticks = Mutex<Int64>(0)

    func now() -> ClockReading {
        let n = ticks.withLock { t in
            t += 1
            return t
        }
        return ClockReading(
            bootCount: 1, monoNs: (60_000 + n * 1_000) * 1_000_000, wallNs: (Fixture.t0 + n * 1_000) * 1_000_000, quality: .synchronized)
    }
}

/// A temporary directory, removed by `remove()`.
struct TempDir: Sendable {
    let url: URL
    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("vouch-uplink-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    func path(_ name: String) -> String { url.appendingPathComponent(name).path }
    func remove() { try? FileManager.default.removeItem(at: url) }
}

/// The gateway side: a device key, an outbox on a real SQLite file, and an uplink to `bankURL`.
struct Gateway: Sendable {
    let deviceID: String
    let key: SigningKey
    let outbox: Outbox
    private(set) var settings: Uplink.Settings
    private(set) var uplink: Uplink

    /// Replaces the uplink with one using `settings` on the same outbox and key.
    mutating func settingsOverride(_ settings: Uplink.Settings) {
        self.settings = settings
        uplink = Uplink(outbox: outbox, key: key, settings: settings, clock: StepClock(), logger: Fixture.quietLogger)
    }

    /// Replaces the uplink with one that makes its own HTTP client for `tls`, as the agent does (shut it down
    /// with `uplink.shutdownHTTPClient()`).
    mutating func useOwnHTTPClient(tls: BankTLSSettings) throws {
        settings.tls = tls
        uplink = try Uplink.withOwnHTTPClient(outbox: outbox, key: key, settings: settings, clock: StepClock(), logger: Fixture.quietLogger)
    }

    /// Replaces the uplink with one reading `clock`.
    mutating func clockOverride(_ clock: any AgentClock) {
        uplink = Uplink(outbox: outbox, key: key, settings: settings, clock: clock, logger: Fixture.quietLogger)
    }

    /// Replaces the uplink with the agent's own kind (its own HTTP client, made as `vouch run` makes it)
    /// reading `clock` (shut it down with `uplink.shutdownHTTPClient()`).
    mutating func agentUplink(clock: any AgentClock) throws {
        uplink = try Uplink.withOwnHTTPClient(outbox: outbox, key: key, settings: settings, clock: clock, logger: Fixture.quietLogger)
    }

    /// A wall clock a year ahead of now (synchronised), for retention.
    struct FutureClock: AgentClock {
        func now() -> ClockReading {
            let wall = Int64(Date().timeIntervalSince1970 * 1000) + 365 * 86_400_000
            return ClockReading(bootCount: 1, monoNs: 10_000_000_000_000, wallNs: wall * 1_000_000, quality: .synchronized)
        }
    }

    init(dir: TempDir, bankURL: String, deviceID: String = "acme-press-\(UUID().uuidString.prefix(8).lowercased())", key: SigningKey = .generate(), maxBatchRecords: Int, requestTimeout: Duration = .seconds(10), bankKey: PublicJWK? = nil) throws {
        self.deviceID = deviceID
        self.key = key
        outbox = try Outbox(path: dir.path("outbox-\(deviceID).sqlite"))
        let bootCount = try outbox.beginBoot(bootID: "boot-\(deviceID)")
        settings = Uplink.Settings(
            bankURL: bankURL, deviceID: deviceID, bootID: "boot-\(deviceID)", bootCount: bootCount, batchInterval: .seconds(60),
            maxBatchRecords: maxBatchRecords, requestTimeout: requestTimeout, bankKey: bankKey)
        uplink = Uplink(outbox: outbox, key: key, settings: settings, clock: StepClock(), logger: Fixture.quietLogger)
    }

    /// Another uplink on the same outbox, as a restarted agent makes it: signing with `key`, with a
    /// pending rotation when the outbox holds one.
    func uplink(key: SigningKey? = nil, rotation: Uplink.PendingRotation?) -> Uplink {
        Uplink(outbox: outbox, key: key ?? self.key, rotation: rotation, settings: settings, clock: StepClock(), logger: Fixture.quietLogger)
    }

    /// A rotation record from this gateway's key to `newKey` (rseq assigned by the outbox).
    func rotationRecord(to newKey: SigningKey, n: Int64) -> EvidenceRecord {
        .keyRotation(KeyRotation(stamp: Fixture.stamp(n), newKey: newKey.publicJWK, proof: KeyRotation.proof(device: deviceID, oldKid: key.kid, newKey: newKey)))
    }

    var enrollment: EnrolledDevice { EnrolledDevice(id: deviceID, key: key.publicJWK, enrolledAtMs: Fixture.t0) }
}

/// The bank side: its SQLite file and key. `run` serves it with `buildBankApplication`, as `vouch-bank serve` does.
struct Bank: Sendable {
    let store: SQLiteBankStore
    let key: SigningKey
    let ingest: BankIngest

    init(dir: TempDir) throws {
        store = try SQLiteBankStore(path: dir.path("bank.sqlite"))
        key = SigningKey.generate()
        ingest = BankIngest(store: store, bankKey: key, logger: Fixture.quietLogger)
    }

    /// Serves the bank on 127.0.0.1:`port` while `body` runs, then stops it.
    func serving<T: Sendable>(port: Int, settings: BankServerSettings? = nil, _ body: () async throws -> T) async throws -> T {
        var settings = settings ?? BankServerSettings()
        settings.host = "127.0.0.1"
        settings.port = port
        let app = try buildBankApplication(ingest: ingest, settings: settings, logger: Fixture.quietLogger)
        return try await Net.serve(app, port: port, tls: settings.tls != nil, body)
    }

    /// Serves the bank on a free port; `body` gets the base URL (https:// when `tls` is set: `vouch-bank serve
    /// --tls-cert --tls-key [--client-ca]`).
    func serving<T: Sendable>(tls: BankTLSFiles? = nil, _ body: (String) async throws -> T) async throws -> T {
        var lastError: (any Error)?
        var settings = BankServerSettings()
        if let tls { settings.tls = try tls.configuration() }
        let scheme = tls == nil ? "http" : "https"
        for _ in 0..<5 {
            let port = try Net.freePort()
            do {
                return try await serving(port: port, settings: settings) { try await body("\(scheme)://127.0.0.1:\(port)") }
            } catch let error as ServerDidNotStart {
                lastError = error  // the port was taken in between: try another one
            }
        }
        throw lastError ?? TestFailure("no port")
    }
}

struct ServerDidNotStart: Error, CustomStringConvertible {
    let description: String
}

/// Plain sockets: find a free port, and ask /healthz without any HTTP library.
enum Net {
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket() failed: errno \(errno)") }
        defer { close(fd) }
        var address = loopback(port: 0)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else { throw TestFailure("bind() failed: errno \(errno)") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard named == 0 else { throw TestFailure("getsockname() failed: errno \(errno)") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    static func loopback(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return address
    }

    /// The raw HTTP/1.1 response to `GET path`, or nil if nothing answers on the port.
    static func get(port: Int, path: String) -> String? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = loopback(port: port)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { return nil }
        let request = Array("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n\r\n".utf8)
        guard request.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, 0) }) == request.count else { return nil }
        var response: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            response += buffer[0..<n]
        }
        return String(decoding: response, as: UTF8.self)
    }

    static func isListening(port: Int) -> Bool { get(port: port, path: "/healthz") != nil }

    /// Runs `app` (listening on `port`, answering /healthz) while `body` runs, then stops it. With `tls` the
    /// plain-socket /healthz cannot be read, so the server counts as up once the port accepts connections.
    static func serve<T: Sendable>(_ app: some ApplicationProtocol, port: Int, tls: Bool = false, _ body: () async throws -> T) async throws -> T {
        let stopped = Flag()
        let server = Task {
            defer { stopped.set() }
            try await app.runService(gracefulShutdownSignals: [])
        }
        defer { server.cancel() }
        do {
            try await waitForHealthz(port: port, tls: tls, stopped: stopped, server: server)
            let result = try await body()
            server.cancel()
            _ = await server.result
            return result
        } catch {
            server.cancel()
            _ = await server.result
            throw error
        }
    }

    /// Waits until /healthz answers 200, or fails if the server task ends (e.g. the port is taken).
    static func waitForHealthz(port: Int, tls: Bool = false, stopped: Flag, server: Task<Void, any Error>) async throws {
        let deadline = ContinuousClock.now.advanced(by: .seconds(20))
        while ContinuousClock.now < deadline {
            // The blocking socket call runs on a Dispatch thread: on the cooperative pool (two threads on
            // two cores) a few of them waiting at once starve the very server they wait for.
            let response = await withCheckedContinuation { continuation in
                DispatchQueue.global().async { continuation.resume(returning: get(port: port, path: "/healthz")) }
            }
            if let response, tls || response.hasPrefix("HTTP/1.1 200") { return }
            if stopped.isSet {
                let outcome = await server.result
                throw ServerDidNotStart(description: "bank on port \(port) stopped before answering /healthz: \(outcome)")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw ServerDidNotStart(description: "bank on port \(port) did not answer /healthz within 20 s")
    }
}

final class Flag: Sendable {
    private let value = Mutex(false)
    func set() { value.withLock { $0 = true } }
    var isSet: Bool { value.withLock { $0 } }
}
