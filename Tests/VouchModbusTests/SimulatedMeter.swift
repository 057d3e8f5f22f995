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

    init(port: Int = SimulatedMeter.freePort(), arguments: [String] = ["--stop-for", "0"]) throws {
        guard FileManager.default.isExecutableFile(atPath: Self.python) else {
            throw PeerMissing("no Python venv at \(Self.python): run scripts/setup first")
        }
        self.port = port
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vouch-meter-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let ready = dir.appendingPathComponent("ready")
        events = dir.appendingPathComponent("events.jsonl")
        process = Process()
        process.executableURL = URL(fileURLWithPath: Self.python)
        process.arguments = [Self.repositoryRoot.appendingPathComponent("scripts/sim/meter.py").path, "--port", String(port), "--ready-file", ready.path, "--events", events.path] + arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(15)
        while !FileManager.default.fileExists(atPath: ready.path) {
            guard process.isRunning, Date() < deadline else {
                process.terminate()
                throw PeerMissing("simulated meter did not start on port \(port)")
            }
            usleep(50_000)
        }
    }

    func freeze() { kill(process.processIdentifier, SIGSTOP) }
    func thaw() { kill(process.processIdentifier, SIGCONT) }

    /// SIGTERM, then SIGKILL if it has not gone within 3 s. Never blocks longer than that.
    func stop() {
        guard process.isRunning else { return }
        let pid = process.processIdentifier
        kill(pid, SIGCONT)
        kill(pid, SIGTERM)
        let deadline = Date().addingTimeInterval(3)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning { kill(pid, SIGKILL) }
    }

    deinit { stop() }
}

struct PeerMissing: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}
