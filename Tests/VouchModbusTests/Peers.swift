import Foundation
import Testing

/// A peer process for tests (a pymodbus server, a socat pty pair, a raw RTU responder), started
/// asynchronously (tests must never block Swift's cooperative pool, which has only as many threads
/// as cores) and killed without waiting when the test ends.
final class PeerProcess: @unchecked Sendable {
    // @unchecked: `process` is set once in init and only read afterwards; Process itself is
    // thread-safe for the calls used here (terminate, processIdentifier, isRunning).
    let process: Process
    let name: String

    static var repositoryRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    static var python: String {
        let venv = ProcessInfo.processInfo.environment["VOUCH_VENV"] ?? repositoryRoot.appendingPathComponent(".venv").path
        return venv + "/bin/python"
    }

    static func temporaryDirectory(_ prefix: String) throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    /// Starts `executable arguments` and waits until every path in `ready` exists.
    static func start(_ name: String, executable: String, arguments: [String], ready: [URL], log: URL? = nil) async throws -> PeerProcess {
        guard FileManager.default.isExecutableFile(atPath: executable) else {
            throw PeerMissing("\(executable) is missing: run scripts/setup first")
        }
        let peer = try PeerProcess(name: name, executable: executable, arguments: arguments, log: log)
        let deadline = ContinuousClock.now + .seconds(20)
        while !ready.allSatisfy({ FileManager.default.fileExists(atPath: $0.path) }) {
            guard peer.process.isRunning, ContinuousClock.now < deadline else {
                peer.stop()
                throw PeerMissing("\(name) did not start: \(executable) \(arguments.joined(separator: " "))")
            }
            try await Task.sleep(for: .milliseconds(30))
        }
        return peer
    }

    /// A Python script from scripts/sim, with the project's venv.
    static func python(_ script: String, _ arguments: [String], ready: URL) async throws -> PeerProcess {
        try await start(script, executable: python, arguments: [repositoryRoot.appendingPathComponent("scripts/sim/\(script)").path] + arguments + ["--ready-file", ready.path], ready: [ready])
    }

    private init(name: String, executable: String, arguments: [String], log: URL?) throws {
        self.name = name
        process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        if let log {
            FileManager.default.createFile(atPath: log.path, contents: nil)
            process.standardError = try FileHandle(forWritingTo: log)
        } else {
            process.standardError = FileHandle.nullDevice
        }
        try process.run()
    }

    func freeze() { kill(process.processIdentifier, SIGSTOP) }
    func thaw() { kill(process.processIdentifier, SIGCONT) }

    /// Kills the peer without waiting (safe in `defer`).
    func stop() {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGCONT)
        kill(process.processIdentifier, SIGKILL)
    }

    /// Asks the peer to exit (socat then removes its pty links) and waits, asynchronously, until it is gone.
    func stopAndWait(signal: Int32 = SIGKILL) async {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGCONT)
        kill(process.processIdentifier, signal)
        let deadline = ContinuousClock.now + .seconds(5)
        while process.isRunning && ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(20)) }
        if process.isRunning { stop() }
    }

    deinit { stop() }
}

/// Two connected pseudo-terminals made by socat: a serial line without hardware. `device` is where the
/// peer listens, `port` where Vouch opens its "serial port". A pty ignores the baud rate.
final class PtyPair: Sendable {
    let directory: URL
    let device: URL
    let port: URL
    let socat: PeerProcess

    static func start(in directory: URL? = nil) async throws -> PtyPair {
        let dir = try directory ?? PeerProcess.temporaryDirectory("vouch-pty")
        let device = dir.appendingPathComponent("device"), port = dir.appendingPathComponent("ttyVOUCH")
        let socat = try await PeerProcess.start(
            "socat", executable: "/usr/bin/socat",
            arguments: ["pty,raw,echo=0,link=\(device.path)", "pty,raw,echo=0,link=\(port.path)"], ready: [device, port])
        return PtyPair(directory: dir, device: device, port: port, socat: socat)
    }

    private init(directory: URL, device: URL, port: URL, socat: PeerProcess) {
        self.directory = directory
        self.device = device
        self.port = port
        self.socat = socat
    }

    /// The "USB adapter" is unplugged: both ptys close and their links go away.
    func unplug() async {
        await socat.stopAndWait(signal: SIGTERM)
        try? FileManager.default.removeItem(at: device)
        try? FileManager.default.removeItem(at: port)
    }

    /// Plugged back in: a new pair under the same names (new pty devices, as a re-enumerated adapter).
    func replug() async throws -> PtyPair { try await PtyPair.start(in: directory) }

    func stop() { socat.stop() }
}

/// scripts/sim/modbus_peer.py: a pymodbus server with fixed contents, over TCP or RTU.
struct ModbusPeer {
    let process: PeerProcess
    let layoutFile: URL

    /// `layout`: unit → table → start address → values (see modbus_peer.py).
    static func write(_ layout: [Int: [String: [Int: [Int]]]]) throws -> URL {
        var units: [String: Any] = [:]
        for (unit, tables) in layout {
            var t: [String: Any] = [:]
            for (table, runs) in tables { t[table] = Dictionary(uniqueKeysWithValues: runs.map { (String($0.key), $0.value) }) }
            units[String(unit)] = t
        }
        let file = try PeerProcess.temporaryDirectory("vouch-layout").appendingPathComponent("layout.json")
        try JSONSerialization.data(withJSONObject: ["units": units], options: [.sortedKeys]).write(to: file)
        return file
    }

    static func tcp(_ layoutFile: URL, port: Int, extra: [String] = []) async throws -> ModbusPeer {
        let ready = layoutFile.deletingLastPathComponent().appendingPathComponent("ready-\(UUID().uuidString.prefix(6))")
        return ModbusPeer(process: try await PeerProcess.python("modbus_peer.py", [layoutFile.path, "--tcp", "127.0.0.1:\(port)"] + extra, ready: ready), layoutFile: layoutFile)
    }

    static func rtu(_ layoutFile: URL, on pty: PtyPair, extra: [String] = []) async throws -> ModbusPeer {
        let ready = layoutFile.deletingLastPathComponent().appendingPathComponent("ready-\(UUID().uuidString.prefix(6))")
        return ModbusPeer(process: try await PeerProcess.python("modbus_peer.py", [layoutFile.path, "--rtu", pty.device.path] + extra, ready: ready), layoutFile: layoutFile)
    }
}

/// scripts/sim/rtu_responder.py: a hand-written RTU device for what pymodbus cannot do (garbage, bad CRC).
enum RTUResponder {
    static func start(on pty: PtyPair, mode: String, units: String = "1", silent: String? = nil) async throws -> PeerProcess {
        let ready = pty.directory.appendingPathComponent("responder-ready-\(UUID().uuidString.prefix(6))")
        var arguments = ["--device", pty.device.path, "--mode", mode, "--units", units, "--seed", "7"]
        if let silent { arguments += ["--silent", silent] }
        return try await PeerProcess.python("rtu_responder.py", arguments, ready: ready)
    }
}

enum PeerTransport: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case tcp, rtu
    var testDescription: String { rawValue }
}

/// A layout served by modbus_peer.py over one transport, and where Vouch reaches it.
struct ServedLayout {
    let endpoint: ModbusEndpointDescription
    let peer: ModbusPeer
    let pty: PtyPair?
    let tcpPort: Int

    static func start(_ layoutFile: URL, over transport: PeerTransport, extra: [String] = []) async throws -> ServedLayout {
        switch transport {
        case .tcp:
            let port = SimulatedMeter.freePort()
            return ServedLayout(endpoint: .tcp(port), peer: try await ModbusPeer.tcp(layoutFile, port: port, extra: extra), pty: nil, tcpPort: port)
        case .rtu:
            let pty = try await PtyPair.start()
            do {
                return ServedLayout(endpoint: .rtu(pty.port.path), peer: try await ModbusPeer.rtu(layoutFile, on: pty, extra: extra), pty: pty, tcpPort: 0)
            } catch {
                pty.stop()
                throw error
            }
        }
    }

    func stop() {
        peer.process.stop()
        pty?.stop()
    }
}

/// Where a served layout is, without this file importing VouchCore's types.
enum ModbusEndpointDescription {
    case tcp(Int)
    case rtu(String)
}
