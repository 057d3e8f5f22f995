import ArgumentParser
import Foundation
import Logging
import VouchAgent
import VouchCore
import VouchModbus

struct Sensors: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show every channel's live value: from the running agent, or read once now when no agent runs.",
        discussion: """
            With an agent running, shows what it last read of each channel (it owns the buses: nothing is \
            opened twice). With no agent, polls every Modbus channel once itself, as the agent would \
            (GPIO lines: vouch gpio get). --watch refreshes every second until interrupted.

            Exit status: 0 every channel read; 1 a channel failed; 78 the config does not load.

            Examples:
              vouch sensors
              vouch sensors --watch
              vouch sensors --config /etc/vouch/vouch.toml --json
            """)

    @Option(name: .shortAndLong, help: "Config file.")
    var config = "/etc/vouch/vouch.toml"

    @Flag(help: "One JSON document on stdout.")
    var json = false

    @Flag(help: "Refresh every second until interrupted (from the running agent only).")
    var watch = false

    struct Row: Encodable {
        var id: String
        var value: Int64?
        var scale: Int64
        var unit: String
        var text: String?
        var quality: String
        var readWallMs: Int64?
        var error: String?

        enum CodingKeys: String, CodingKey { case id, value, scale, unit, text, quality, readWallMs, error }

        // Absent values are null, not left out: one shape whatever the channel's state.
        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(id, forKey: .id)
            try c.encode(value, forKey: .value)
            try c.encode(scale, forKey: .scale)
            try c.encode(unit, forKey: .unit)
            try c.encode(text, forKey: .text)
            try c.encode(quality, forKey: .quality)
            try c.encode(readWallMs, forKey: .readWallMs)
            try c.encode(error, forKey: .error)
        }
    }

    struct Answer: Encodable {
        var device: String
        /// "agent" (its latest readings) or "direct" (polled now by this command).
        var source: String
        var channels: [Row]
    }

    func run() async throws {
        let settings = try ReadCommands.config(config)
        let socket = ControlSocket.path(dataDir: settings.device.dataDir)
        while true {
            let answer: Answer
            if let status = ControlSocket.status(socketPath: socket) {
                answer = Answer(
                    device: settings.device.id, source: "agent",
                    channels: status.channels.map {
                        Row(id: $0.id, value: $0.value, scale: $0.scale, unit: $0.unit, text: $0.text, quality: $0.quality, readWallMs: $0.readWallMs, error: $0.lastError)
                    })
            } else if watch {
                FileHandleOutput.standardError("vouch sensors: --watch needs the running agent (nothing answers at \(socket)); without --watch the channels are read once")
                throw ExitCode(69)
            } else {
                let progress = json ? nil : ProgressLine("no agent running: reading \(settings.modbusDevices.count) Modbus device(s) once")
                answer = Answer(device: settings.device.id, source: "direct", channels: await Self.pollOnce(settings))
                progress?.finish()
            }
            if watch && !json { print("\u{1B}[H\u{1B}[2J", terminator: "") }
            show(answer)
            guard watch else {
                if answer.channels.contains(where: { $0.quality == "failing" }) { throw ExitCode(1) }
                return
            }
            fflush(nil)
            try await Task.sleep(for: .seconds(1))
        }
    }

    func show(_ answer: Answer) {
        if json {
            let encoder = JSONEncoder()
            encoder.keyEncodingStrategy = .convertToSnakeCase
            encoder.outputFormatting = [.sortedKeys]
            if let data = try? encoder.encode(answer) { print(String(decoding: data, as: UTF8.self)) }
            return
        }
        print("\(answer.device): \(answer.source == "agent" ? "as the running agent last read them" : "read once now (no agent running)")")
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let rows = answer.channels.map { r -> [String] in
            let value = r.value.map { IntegerScaling.text($0, exponent: r.scale, unit: r.unit) } ?? r.text ?? "–"
            let state: String
            switch r.quality {
            case "failing": state = Terminal.paint("FAILING", .fail) + ": \(r.error ?? "")"
            case "waiting": state = "waiting for a first reading"
            default: state = Terminal.paint("ok", .ok) + (r.readWallMs.map { ", \(max(0, now - $0) / 1000) s ago" } ?? "")
            }
            return ["  " + r.id, value, state]
        }
        print(Status.table(rows), terminator: "")
    }

    /// Every Modbus channel read once, as the agent polls (no agent runs, so no second master).
    static func pollOnce(_ settings: AgentConfig) async -> [Row] {
        var logger = Logger(label: "vouch-sensors")
        logger.logLevel = .critical
        var rows: [String: Row] = [:]
        for r in await ModbusBusPoller.pollOnce(settings.modbusDevices, clock: SystemClock(bootCount: 0), logger: logger) {
            var row = Row(id: r.channel, value: r.value, scale: r.scaleExponent, unit: r.unit, text: r.text, quality: "ok", readWallMs: r.time.wallMs)
            if case .commError(let code, let message) = r.quality {
                row.quality = "failing"
                row.value = nil
                row.error = "\(code): \(message)"
            }
            rows[r.channel] = row
        }
        return settings.modbusDevices.flatMap(\.channels).compactMap { rows[$0.id] }
    }
}
