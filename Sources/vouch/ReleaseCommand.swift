import ArgumentParser
import Foundation
import VouchAgent
import VouchCore

struct ReleaseCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "release",
        abstract: "Open, close and list release windows: times when pledged stock may leave without an alarm.",
        discussion: """
            A release window tells the running agent that stock leaving the site is authorised (a sale, a \
            delivery the bank agreed to). A weight or count drop that begins inside an open window is \
            recorded as a release; outside one it is an alarm. Opening and closing are records in the \
            signed chain the bank receives, with who asked (the name given with --by and the Unix user \
            the kernel reports) and why.

            The agent must be running: these commands talk to it through its control socket \
            (<data_dir>/vouch.sock; the user needs to be root or in the agent's group).

            Exit status: 0; 64 usage; 65 the agent refused the request (the message says why); 69 no agent \
            is running; 75 the agent cannot write its outbox now (nothing changed; try again); 78 the config \
            is invalid.

            Examples:
              vouch release open --for 2h --reason "sale to Koné Ltd, invoice 2291"
              vouch release open --for 45m --reason "sample to the lab" --channel scale.weight --by "A. Diallo"
              vouch release list
              vouch release close
              vouch release close 1234 --note "truck left early"
            """,
        subcommands: [ReleaseOpen.self, ReleaseClose.self, ReleaseList.self])
}

/// The options every `vouch release` subcommand shares.
struct ReleaseOptions: ParsableArguments {
    @Option(name: .shortAndLong, help: "Config file (its data_dir locates the running agent).")
    var config = "/etc/vouch/vouch.toml"

    @Flag(help: "One JSON document on stdout.")
    var json = false

    /// Sends `request` to the agent of the config; exits with the documented status when it cannot.
    func ask(_ request: ControlRequest, command: String) throws -> ControlResponse {
        let settings: AgentConfig
        do { settings = try ConfigLoader.load(path: config) } catch {
            FileHandleOutput.standardError("\(error)")
            throw ExitCode(78)
        }
        let socket = ControlSocket.path(dataDir: settings.device.dataDir)
        let answer: ControlResponse?
        do { answer = try ControlSocket.ask(request, socketPath: socket) } catch {
            FileHandleOutput.standardError("vouch release \(command): \(error.description)")
            throw ExitCode(69)
        }
        guard let answer else {
            FileHandleOutput.standardError(
                "vouch release \(command): no agent is running for \(config) (nothing listens at \(socket)); release windows are kept by the running agent: start it (systemctl start vouch, or vouch run) and try again")
            throw ExitCode(69)
        }
        guard answer.ok else {
            FileHandleOutput.standardError("vouch release \(command): \(answer.code ?? "E_CONTROL"): \(answer.message ?? "refused")")
            switch answer.code {
            case "E_RELEASE_STORE": throw ExitCode(75)
            case "E_CONTROL_OP": throw ExitCode(69)
            default: throw ExitCode(65)
            }
        }
        return answer
    }
}

/// How windows are shown.
enum ReleaseOutput {
    static func json(_ windows: [ReleaseWindow], nowMs: Int64) -> [String: Any] {
        [
            "releases": windows.map { w -> [String: Any] in
                [
                    "id": w.id, "opened": iso(w.openedWallMs), "until": iso(w.untilWallMs), "remaining_s": max(0, (w.untilWallMs - nowMs) / 1000),
                    "channels": w.channels, "reason": w.reason, "who": w.who,
                ]
            }
        ]
    }

    static func line(_ w: ReleaseWindow) -> String {
        "release window \(w.id): until \(iso(w.untilWallMs)) on \(w.channels.isEmpty ? "every channel" : w.channels.joined(separator: ", ")), by \(w.who): \(w.reason)"
    }

    static func iso(_ wallMs: Int64) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime]
        return f.string(from: Date(timeIntervalSince1970: Double(wallMs) / 1000))
    }

    static func nowMs() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

    /// "2h", "90m", "1h30m", "45min", "600s", "1d".
    static func parseDuration(_ text: String) -> Int64? {
        let units: [(String, Int64)] = [("min", 60_000), ("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1_000)]
        var rest = Substring(text.lowercased().replacingOccurrences(of: " ", with: ""))
        var total: Int64 = 0
        guard !rest.isEmpty else { return nil }
        while !rest.isEmpty {
            let digits = rest.prefix { $0.isASCII && $0.isNumber }
            guard !digits.isEmpty, digits.count <= 9, let n = Int64(digits) else { return nil }
            rest = rest.dropFirst(digits.count)
            guard let (suffix, ms) = units.first(where: { rest.hasPrefix($0.0) }) else { return nil }
            rest = rest.dropFirst(suffix.count)
            total += n * ms
        }
        return total
    }
}
