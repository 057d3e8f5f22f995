import Foundation
import Testing

/// The simulated meter (scripts/sim/meter.py, a pymodbus server) as a real process on 127.0.0.1.
/// Needs the project's Python venv (`scripts/setup` creates it).
final class SimulatedMeter: @unchecked Sendable {
    // @unchecked: `process` is set once in init and only read afterwards; Process itself is
    // thread-safe for the calls used here (terminate, processIdentifier, waitUntilExit).
    let port: Int
    let process: Process
    let events: URL

    static var repositoryRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    static var python: String {
        let venv = ProcessInfo.processInfo.environment["VOUCH_VENV"] ?? repositoryRoot.appendingPathComponent(".venv").path
        return venv + "/bin/python"
    }

    /// Picks a port unlikely to collide across parallel tests.
    static func freePort() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        return Int(UInt16(bigEndian: addr.sin_port))
    }

    /// Starts the meter and waits (asynchronously: tests must never block Swift's cooperative pool,
    /// which has only as many threads as cores) until it listens.
    static func start(port: Int = SimulatedMeter.freePort(), arguments: [String] = ["--stop-for", "0"]) async throws -> SimulatedMeter {
        let meter = try SimulatedMeter(port: port, arguments: arguments)
        let deadline = ContinuousClock.now + .seconds(20)
        while !FileManager.default.fileExists(atPath: meter.ready.path) {
            guard meter.process.isRunning, ContinuousClock.now < deadline else {
                meter.stop()
                throw PeerMissing("simulated meter did not start on port \(port)")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        return meter
    }

    private let ready: URL

    private init(port: Int, arguments: [String]) throws {
        guard FileManager.default.isExecutableFile(atPath: Self.python) else {
            throw PeerMissing("no Python venv at \(Self.python): run scripts/setup first")
        }
        self.port = port
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vouch-meter-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        ready = dir.appendingPathComponent("ready")
        events = dir.appendingPathComponent("events.jsonl")
        process = Process()
        process.executableURL = URL(fileURLWithPath: Self.python)
        process.arguments = [Self.repositoryRoot.appendingPathComponent("scripts/sim/meter.py").path, "--port", String(port), "--ready-file", ready.path, "--events", events.path] + arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
    }

    func freeze() { kill(process.processIdentifier, SIGSTOP) }
    func thaw() { kill(process.processIdentifier, SIGCONT) }

    /// Kills the meter without waiting (safe in `defer`); it has no state worth a graceful stop.
    func stop() {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGCONT)
        kill(process.processIdentifier, SIGKILL)
    }

    /// Kills the meter and waits, asynchronously, until it is gone (so its port is free).
    func stopAndWait() async {
        stop()
        let deadline = ContinuousClock.now + .seconds(5)
        while process.isRunning && ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(20)) }
    }

    deinit { stop() }
}

struct PeerMissing: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}
