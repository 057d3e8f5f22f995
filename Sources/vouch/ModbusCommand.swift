import ArgumentParser
import Dispatch
import Foundation
import Logging
import Synchronization
import VouchAgent
import VouchCore
import VouchModbus

#if canImport(Glibc)
import Glibc
#endif

struct ModbusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "modbus",
        abstract: "The technician's Modbus tools: read registers, find devices and registers, show the request plan.",
        discussion: """
            When the agent runs and polls the bus a --url names, read and scan go through it (its control socket, \
            --agent-socket), so two masters never share one line; --direct opens the port regardless. With \
            --config, read opens the configured devices itself: stop the agent first on a serial line.

            Exit status: 0 success; 64 a usage error (the message names the option and what it expects); \
            69 the device or port cannot be reached, or refused the read; 78 the config file is invalid.

            Examples:
              vouch modbus read --url tcp://192.168.1.20 \\
                  --register input --address 52 --type float32
              vouch modbus read \\
                  --url rtu:///dev/serial/by-id/usb-1a86_USB_Serial-if00-port0 \\
                  --baud 19200 --parity even --unit 3 \\
                  --register holding --address 100 --count 2
              vouch modbus read --config /etc/vouch/vouch.toml
              vouch modbus scan --units 1-32 \\
                  --url rtu:///dev/serial/by-id/usb-1a86_USB_Serial-if00-port0
              vouch modbus scan --url tcp://192.168.1.20 --unit 1 \\
                  --register holding --range 0-999
              vouch modbus plan --config /etc/vouch/vouch.toml
            """,
        subcommands: [ModbusRead.self, ModbusScan.self, ModbusPlan.self])
}

/// Where the device is and how to talk to it: the same words as a [[modbus.device]] in the config.
struct ModbusConnectionOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "The device: tcp://HOST[:PORT] (port 502 when left out) or rtu:///dev/PORT (a serial port; prefer /dev/serial/by-id/…, which survives USB renumbering).",
            valueName: "url"))
    var url: String?

    @Option(help: ArgumentHelp("Serial line speed (rtu:// only; default 9600).", valueName: "rate"))
    var baud: Int?

    @Option(help: ArgumentHelp("Serial parity: none, even or odd (rtu:// only; default none).", valueName: "parity"))
    var parity: String?

    @Option(help: ArgumentHelp("Serial data bits: 7 or 8 (rtu:// only; default 8).", valueName: "bits"))
    var dataBits: Int?

    @Option(help: ArgumentHelp("Serial stop bits: 1 or 2 (rtu:// only; default 1).", valueName: "bits"))
    var stopBits: Int?

    @Flag(help: "Put the serial port in the kernel's RS-485 mode (rtu:// only; most USB RS-485 adapters switch direction themselves and need no such thing).")
    var rs485 = false

    @Option(help: ArgumentHelp("Response timeout, e.g. 500ms or 2s (default 1s; 200ms per unit for a unit scan).", valueName: "duration"))
    var timeout: String?

    @Option(help: ArgumentHelp("Unit id (slave id) of the device: 1–247 on a serial line, 0–255 over TCP (default 1).", valueName: "id"))
    var unit: Int?

    @Option(
        help: ArgumentHelp(
            "The running agent's control socket. When that agent polls --url, reads go through it (two masters on one bus corrupt each other's frames).",
            valueName: "path"))
    var agentSocket = ControlSocket.path(dataDir: "/var/lib/vouch")

    @Flag(help: "Open the port even when a running agent polls it (stop the agent first on a serial line).")
    var direct = false

    static let standardBauds = [300, 600, 1200, 2400, 4800, 9600, 14400, 19200, 38400, 57600, 115200, 230400, 460800, 921600]

    /// The endpoint and line settings, or a usage error naming the option and what it expects.
    func resolve(defaultTimeout: Duration) throws -> ModbusConnection {
        guard let url else {
            throw ValidationError("--url is missing: expected \(Self.urlHelp)")
        }
        let endpoint: ModbusEndpoint
        switch ModbusEndpoint.parse(url) {
        case .success(let e): endpoint = e
        case .failure(let problem): throw ValidationError("--url: \(problem)")
        }
        var serial: SerialSettings?
        if endpoint.isSerial {
            var line = SerialSettings()
            if let baud {
                guard Self.standardBauds.contains(baud) else {
                    throw ValidationError("--baud \(baud) is not a standard rate; expected one of \(Self.standardBauds.map(String.init).joined(separator: ", "))")
                }
                line.baudRate = baud
            }
            if let parity {
                switch parity.lowercased() {
                case "none", "n": line.parity = .none
                case "even", "e": line.parity = .even
                case "odd", "o": line.parity = .odd
                default: throw ValidationError("--parity \"\(parity)\" is not a parity; expected none, even or odd")
                }
            }
            if let dataBits {
                guard (7...8).contains(dataBits) else { throw ValidationError("--data-bits \(dataBits) is not possible on Modbus RTU; expected 7 or 8") }
                line.dataBits = dataBits
            }
            if let stopBits {
                guard (1...2).contains(stopBits) else { throw ValidationError("--stop-bits \(stopBits) is not possible; expected 1 or 2") }
                line.stopBits = stopBits
            }
            line.rs485 = rs485
            serial = line
        } else {
            let given = [(baud != nil, "--baud"), (parity != nil, "--parity"), (dataBits != nil, "--data-bits"), (stopBits != nil, "--stop-bits"), (rs485, "--rs485")]
            if let (_, name) = given.first(where: { $0.0 }) {
                throw ValidationError("\(name) applies to serial urls (rtu:///dev/…) only; \(url) is Modbus TCP, which has no line settings")
            }
        }
        var responseTimeout = defaultTimeout
        if let timeout {
            guard let d = Self.parseDuration(timeout), d >= .milliseconds(10), d <= .seconds(60) else {
                throw ValidationError("--timeout \"\(timeout)\" is not a duration from 10ms to 60s; expected e.g. 200ms, 1s or 1.5s")
            }
            responseTimeout = d
        }
        let unitID = unit ?? 1
        if endpoint.isSerial {
            guard (1...247).contains(unitID) else {
                throw ValidationError("--unit \(unitID) cannot be read on a serial line; expected 1–247 (0 is broadcast, which no device answers)")
            }
        } else {
            guard (0...255).contains(unitID) else { throw ValidationError("--unit \(unitID) is out of range; expected 0–255 (usually 1, or 255 for some TCP devices)") }
        }
        return ModbusConnection(endpoint: endpoint, serial: serial, timeout: responseTimeout, unit: unitID, agentSocket: direct ? nil : agentSocket)
    }

    static let urlHelp = "tcp://HOST[:PORT] (e.g. tcp://192.168.1.20:502) or rtu:///dev/PORT (e.g. rtu:///dev/serial/by-id/usb-FTDI_…-port0)"

    /// "500ms", "1s", "1.5s".
    static func parseDuration(_ text: String) -> Duration? {
        let lower = text.lowercased()
        let number: Substring
        let millisPerUnit: Double
        if lower.hasSuffix("ms") {
            number = lower.dropLast(2)
            millisPerUnit = 1
        } else if lower.hasSuffix("s") {
            number = lower.dropLast()
            millisPerUnit = 1000
        } else {
            return nil
        }
        guard !number.isEmpty, number.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ".") }), let v = Double(number), v.isFinite else { return nil }
        let micros = (v * millisPerUnit * 1000).rounded()
        guard micros < 1e12 else { return nil }
        return .microseconds(Int64(micros))
    }
}

/// A validated connection: what `ModbusClient` needs, plus the unit and the response timeout.
struct ModbusConnection {
    let endpoint: ModbusEndpoint
    let serial: SerialSettings?
    let timeout: Duration
    let unit: Int
    /// Where to look for a running agent that owns this bus; nil with --direct.
    let agentSocket: String?

    /// The running agent's reader when it polls this bus, else a client of our own.
    func client() -> ModbusWire {
        if let agentSocket {
            do {
                if let agent = try ControlSocket.modbusReader(for: endpoint, socketPath: agentSocket) {
                    FileHandleOutput.standardError("note: the running agent (\(agent.device)) polls \(endpoint): reading through it (--direct to open the port anyway)")
                    return .agent(agent)
                }
            } catch {
                FileHandleOutput.standardError("note: could not ask the running agent (\(error)); opening \(endpoint) directly")
            }
        }
        return .direct(ModbusClient(endpoint: endpoint, serial: serial, byteTimeout: nil))
    }

    /// "tcp://10.0.0.5:502" or "rtu:///dev/ttyUSB0 (19200 8E1)".
    var summary: String { serial.map { "\(endpoint) (\($0.summary))" } ?? endpoint.description }
}

/// Reads on the wire, either with a client of our own or through the agent that owns the bus.
enum ModbusWire {
    case direct(ModbusClient)
    case agent(AgentModbusReader)

    func readBlocking(_ kind: ModbusRegisterKind, unit: Int, address: Int, count: Int, timeout: Duration) throws(ModbusError) -> [UInt16] {
        switch self {
        case .direct(let client): try client.readBlocking(kind, unit: unit, address: address, count: count, timeout: timeout)
        case .agent(let agent): try agent.read(kind, unit: unit, address: address, count: count, timeout: timeout)
        }
    }

    func close() {
        if case .direct(let client) = self { client.close() }
    }
}

/// Helpers the Modbus subcommands share.
enum ModbusCLI {
    /// Loads a config as `vouch config check` reports it: every diagnostic with file:line:column, exit 78.
    static func loadConfig(_ file: String) throws -> AgentConfig {
        do { return try ConfigLoader.load(path: file) } catch {
            FileHandleOutput.standardError(error.description)
            FileHandleOutput.standardError("\(file): \(error.diagnostics.count) error(s)")
            throw ExitCode(78)
        }
    }

    static let unreachable = ExitCode(69)  // EX_UNAVAILABLE

    /// A usage error found after parsing (e.g. a --device the config does not have): the message on
    /// stderr and exit 64, like ArgumentParser's own.
    static func usageError(_ command: String, _ message: String) -> ExitCode {
        FileHandleOutput.standardError("Error: \(message)\n  See 'vouch \(command) --help' for the options and examples.")
        return ExitCode.validationFailure
    }

    /// Runs async work to completion from a synchronous command. The work runs on the cooperative
    /// pool; the calling (main) thread only waits, so it must not be a pool thread.
    static func waitFor<T: Sendable>(_ body: @escaping @Sendable () async -> T) -> T {
        let box = ResultBox<T>()
        let done = DispatchSemaphore(value: 0)
        Task.detached {
            let v = await body()
            box.value.withLock { $0 = v }
            done.signal()
        }
        done.wait()
        // The task stored a value before signalling.
        guard let value = box.value.withLock({ $0 }) else { fatalError("ModbusCLI.waitFor: task finished without a value") }
        return value
    }

    /// A logger for the poller's notices (a split request, a failing unit), on stderr so stdout stays clean.
    static func stderrLogger() -> Logger {
        var logger = Logger(label: "vouch.modbus") { label in StreamLogHandler.standardError(label: label) }
        logger.logLevel = .notice
        return logger
    }

    /// USB serial adapters are renumbered (ttyUSB0 becomes ttyUSB1 after a replug or a reboot), which
    /// silently swaps which bus a config reads: say so when a --url names such a path.
    static func noteRenumberingPath(_ endpoint: ModbusEndpoint) {
        guard case .rtu(let path) = endpoint, path.hasPrefix("/dev/ttyUSB") || path.hasPrefix("/dev/ttyACM") else { return }
        FileHandleOutput.standardError("note: \(path) may change after a replug or reboot; in the config, prefer its /dev/serial/by-id/… name (ls -l /dev/serial/by-id)")
    }

    static var stderrIsTerminal: Bool { isatty(STDERR_FILENO) != 0 }

    /// Overwrites the current stderr line (progress on a terminal).
    static func progress(_ text: String) {
        FileHandle.standardError.write(Data("\r\u{1B}[K\(text)".utf8))
    }

    static func clearProgress() {
        FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
    }

    static func hex(_ word: UInt16) -> String {
        let digits = String(word, radix: 16, uppercase: true)
        return "0x" + String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }

    /// value × 10^exponent as exact decimal text: (23012, -2) → "230.12".
    static func decimal(_ value: Int64, exponent: Int64) -> String { IntegerScaling.text(value, exponent: exponent) }

    /// Column-aligned text; the last column is not padded.
    static func table(_ rows: [[String]], indent: String = "") -> [String] {
        guard let columns = rows.map(\.count).max() else { return [] }
        var widths = [Int](repeating: 0, count: columns)
        for row in rows { for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) } }
        return rows.map { row in
            var line = indent
            for (i, cell) in row.enumerated() {
                line += i == row.count - 1 ? cell : cell + String(repeating: " ", count: widths[i] - cell.count + 2)
            }
            while line.hasSuffix(" ") { line.removeLast() }
            return line
        }
    }

    static func seconds(_ d: Duration) -> String {
        let ms = d.components.seconds * 1000 + d.components.attoseconds / 1_000_000_000_000_000
        return ms < 1000 ? "\(ms) ms" : String(format: "%.1f s", Double(ms) / 1000)
    }

    static func milliseconds(_ d: Duration) -> Int64 {
        d.components.seconds * 1000 + d.components.attoseconds / 1_000_000_000_000_000
    }

    /// "the device is there but refused": an exception response. "Not there": a timeout, or a gateway
    /// saying it cannot reach the unit. "Something answered, unreadably": CRC / framing errors.
    enum Answer {
        case exception
        case gatewayNoTarget
        case silent
        case garbled
        /// The connection or port itself failed: nothing more can be learned on it.
        case fatal
    }

    static func classify(_ error: ModbusError) -> Answer {
        switch error.errnoName {
        case "EMBXGPATH", "EMBXGTAR": return .gatewayNoTarget
        case _ where error.isDeviceException: return .exception
        case "ETIMEDOUT", "ECONNRESET", "EPIPE": return .silent
        case "EMBBADCRC", "EMBBADDATA", "EMBBADSLAVE", "EMBMDATA", "EMBBADEXC", "EMBUNKEXC": return .garbled
        default: return .fatal
        }
    }

    /// What a technician may have got wrong when a device refuses an address.
    static func addressHint(_ error: ModbusError, kind: ModbusRegisterKind, address: Int) -> String? {
        guard error.errnoName == "EMBXILADD" else { return nil }
        let base = switch kind {
        case .holding: 40001
        case .input: 30001
        case .discrete: 10001
        case .coil: 1
        }
        if base > 1, (base...(base + 9998)).contains(address) {
            return "address \(address) looks like manual numbering (\(base) = address 0): try --address \(address - base)"
        }
        return "addresses are 0-based on the wire: if the manual counts from 1, try --address \(max(0, address - 1))"
    }
}

/// Where a detached task leaves its result for a waiting thread.
final class ResultBox<T: Sendable>: Sendable {
    let value = Mutex<T?>(nil)
}

/// JSON for `--json` output: keys sorted, compact, one document per run. Unlike evidence (integers
/// only), it carries floats; a NaN or infinite float is written as null.
indirect enum CLIJSON {
    case null
    case bool(Bool)
    case int(Int64)
    case uint(UInt64)
    case double(Double)
    case string(String)
    case array([CLIJSON])
    case object([String: CLIJSON])

    static func optional(_ s: String?) -> CLIJSON { s.map { .string($0) } ?? .null }
    static func words(_ w: [UInt16]) -> CLIJSON { .array(w.map { .int(Int64($0)) }) }

    var text: String {
        var out = ""
        write(into: &out)
        return out
    }

    private func write(into out: inout String) {
        switch self {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .int(let i): out += String(i)
        case .uint(let u): out += String(u)
        case .double(let d): out += d.isFinite ? "\(d)" : "null"
        case .string(let s): Self.writeString(s, into: &out)
        case .array(let items):
            out += "["
            for (i, item) in items.enumerated() {
                if i > 0 { out += "," }
                item.write(into: &out)
            }
            out += "]"
        case .object(let members):
            out += "{"
            for (i, key) in members.keys.sorted().enumerated() {
                if i > 0 { out += "," }
                Self.writeString(key, into: &out)
                out += ":"
                (members[key] ?? .null).write(into: &out)
            }
            out += "}"
        }
    }

    private static func writeString(_ s: String, into out: inout String) {
        out += "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let h = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - h.count) + h
            default: out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
    }
}
