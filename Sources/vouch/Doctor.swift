import ArgumentParser
import Foundation
import VouchAgent
import VouchCore

struct DoctorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Check the gateway from end to end and say what to fix: key, disk, clock, agent, serial ports, Modbus devices, GPIO, the bank.",
        discussion: """
            Runs every check, whatever failed before it, and prints a checklist: ok, warn (works, but will \
            bite), FAIL (the agent cannot do its job), skip (not in this config), each failure with a fix. \
            Modbus devices are read through the running agent when there is one (a second master would garble \
            the bus), else polled once. The bank is asked GET /healthz with the config's TLS settings. \
            Nothing is changed.

            Exit status: 0 nothing failed (warnings allowed), 1 a check failed, 78 the config does not load \
            (its errors are printed, as by vouch config check).

            Examples:
              vouch doctor
              vouch doctor --config /etc/vouch/vouch.toml --json
            """)

    @Option(name: .shortAndLong, help: "Config file.")
    var config = "/etc/vouch/vouch.toml"

    @Flag(help: "One JSON document on stdout.")
    var json = false

    func run() async throws {
        let settings: AgentConfig
        do { settings = try ConfigLoader.load(path: config) } catch {
            if json { JSONOutput.print(["config": config, "checks": [["id": "config", "outcome": "fail", "detail": "\(error)", "fix": "vouch config check \(config)"]], "failed": 1]) }
            FileHandleOutput.standardError("\(error)")
            throw ExitCode(78)
        }
        var checks = [DoctorCheck("config", .ok, "\(config) loads: \(settings.modbusDevices.count) Modbus device(s), \(settings.gpio.inputs.count + settings.gpio.outputs.count) GPIO line(s), device \(settings.device.id)")]
        let progress = json ? nil : ProgressLine("vouch doctor: checking the key, disk, clock, devices and the bank")
        checks += await Doctor.checks(settings)
        progress?.finish()
        let failed = checks.filter { $0.outcome == .fail }.count
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            let rows = (try? JSONSerialization.jsonObject(with: encoder.encode(checks))) ?? []
            JSONOutput.print(["config": config, "device": settings.device.id, "checks": rows, "failed": failed])
        } else {
            print("vouch doctor: \(config) (device \(settings.device.id))")
            let width = checks.map(\.id.count).max() ?? 0
            for c in checks {
                let mark = Self.mark(c.outcome.rawValue)
                print("  \(mark)  \(c.id.padding(toLength: width, withPad: " ", startingAt: 0))  \(c.detail)")
                if let fix = c.fix, c.outcome != .ok {
                    print("        \(String(repeating: " ", count: width))  fix: \(fix)")
                }
            }
            let warned = checks.filter { $0.outcome == .warn }.count
            print(
                failed == 0
                    ? Terminal.paint("all \(checks.count) checks passed", .ok) + (warned > 0 ? " (\(warned) warning(s))" : "")
                    : Terminal.paint("\(failed) of \(checks.count) checks failed", .fail))
        }
        if failed > 0 { throw ExitCode(1) }
    }

    /// The outcome column, four wide, in colour on a terminal.
    static func mark(_ outcome: String) -> String {
        switch outcome {
        case "ok": Terminal.paint("ok", .ok) + "  "
        case "warn": Terminal.paint("warn", .warn)
        case "fail": Terminal.paint("FAIL", .fail)
        case "skip": Terminal.paint("skip", .dim)
        default: outcome
        }
    }
}
