import ArgumentParser
import Foundation
import VouchAgent
import VouchCore

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the running agent: uptime, clock, each channel's last value, the rules, the outbox and the bank.",
        discussion: """
            Asks the agent of the config over its control socket (data_dir/vouch.sock). Exit status 69 when \
            no agent is running for the config (with --json, {"running": false, …} is printed first), 78 when \
            the config does not load.

            A channel is "ok" (its last value is shown with the time it was read), "failing" (its polls fail \
            since the time shown; the last error is named) or "waiting" (no reading yet). A rule is "quiet" \
            or has a "finding" open (an event that started and has not ended).

            Examples:
              vouch status
              vouch status --config /etc/vouch/vouch.toml --json
            """)

    @Option(name: .shortAndLong, help: "Config file (its data_dir locates the running agent).")
    var config = "/etc/vouch/vouch.toml"

    @Flag(help: "One JSON document on stdout.")
    var json = false

    func run() throws {
        let settings = try ReadCommands.config(config)
        let socket = ControlSocket.path(dataDir: settings.device.dataDir)
        let answer: ControlResponse?
        do { answer = try ControlSocket.ask(ControlRequest(op: "status"), socketPath: socket) } catch {
            FileHandleOutput.standardError("vouch status: \(error.description)")
            throw ExitCode(69)
        }
        guard let answer, answer.ok, let status = answer.status else {
            if json { JSONOutput.print(["running": false, "device": settings.device.id, "socket": socket]) }
            let why =
                answer.map { "the agent answered \($0.code ?? "E_CONTROL"): \($0.message ?? "no status")" }
                ?? "no agent is running for \(config) (nothing listens at \(socket)); start it with systemctl start vouch (or vouch run)"
            FileHandleOutput.standardError("vouch status: \(why)")
            throw ExitCode(69)
        }
        if json {
            let encoder = JSONEncoder()
            encoder.keyEncodingStrategy = .convertToSnakeCase
            encoder.outputFormatting = [.sortedKeys]
            guard let data = try? encoder.encode(status), var object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
                throw ExitCode(70)
            }
            object["running"] = true
            JSONOutput.print(object)
            return
        }
        print(Self.text(status), terminator: "")
    }

    /// The human view: one block per part, aligned columns.
    static func text(_ s: AgentStatus) -> String {
        let now = s.clock.wallMs
        var out = "\(s.device): running for \(duration(s.uptimeMs)) (since \(iso(s.startedWallMs))), boot \(s.bootCount), vouch \(s.version)\n"
        let quality = ["sync": "synchronised", "unsync": "NOT synchronised (wall times are the board's guess)", "step": "stepped recently"][s.clock.quality] ?? s.clock.quality
        out += "clock    \(iso(now)), \(s.clock.quality == "sync" ? quality : Terminal.paint(quality, .warn))\n"
        if let o = s.outbox {
            out += "outbox   \(o.undeliveredBatches) batch(es) not yet at the bank, \(o.unsealedRecords) record(s) not yet sealed; \(o.records) records in \(o.batches) batches, last batch \(o.lastBseq)\n"
        } else {
            out += "outbox   unreadable: \(s.outboxError ?? "unknown")\n"
        }
        var bank = s.uplink.lastReceiptBseq.map { "last receipt for batch \($0), \(ago(s.uplink.lastReceiptWallMs, now))" } ?? "no receipt since the agent started"
        if let error = s.uplink.lastError { bank += "; the last \(s.uplink.failures) attempt(s) failed: \(error)" }
        out += "bank     \(bank)\n"
        if s.openReleases > 0 { out += "release  \(s.openReleases) window(s) open (vouch release list)\n" }
        out += "\nchannels\n"
        let rows = s.channels.map { c -> [String] in
            let value = c.value.map { IntegerScaling.text($0, exponent: c.scale, unit: c.unit) } ?? c.text ?? "–"
            let state: String
            switch c.quality {
            case "failing":
                state = Terminal.paint("FAILING", .fail) + " since \(iso(c.failingSinceWallMs ?? now)) (\(c.failures ?? 0) polls): \(c.lastError ?? "")"
            case "waiting": state = "waiting for a first reading"
            default: state = Terminal.paint("ok", .ok) + ", read \(ago(c.readWallMs, now))"
            }
            return ["  " + c.id, value, state]
        }
        out += table(rows)
        if !s.rules.isEmpty {
            out += "\nrules\n"
            out += table(
                s.rules.map { r in
                    let state = r.state == "finding" ? Terminal.paint("FINDING \(r.severity ?? "")", r.severity == "alarm" ? .fail : .warn) + " since \(iso(r.sinceWallMs ?? now)) (event \(r.eventId ?? ""))" : "quiet"
                    return ["  " + r.id, "\(r.kind) on \(r.channel)", state]
                })
        }
        return out
    }

    static func table(_ rows: [[String]]) -> String {
        guard let columns = rows.map(\.count).max() else { return "" }
        let widths = (0..<columns).map { i in rows.map { i < $0.count ? $0[i].count : 0 }.max() ?? 0 }
        return rows.map { row in
            row.enumerated().map { i, cell in i == row.count - 1 ? cell : cell.padding(toLength: widths[i] + 2, withPad: " ", startingAt: 0) }.joined()
        }.joined(separator: "\n") + "\n"
    }

    static func ago(_ wallMs: Int64?, _ now: Int64) -> String {
        guard let wallMs else { return "never" }
        return "\(duration(max(0, now - wallMs))) ago"
    }

    static func duration(_ ms: Int64) -> String {
        let s = ms / 1000
        if s < 60 { return "\(s) s" }
        if s < 3600 { return "\(s / 60) min \(s % 60) s" }
        if s < 86_400 { return "\(s / 3600) h \(s % 3600 / 60) min" }
        return "\(s / 86_400) d \(s % 86_400 / 3600) h"
    }

    static func iso(_ wallMs: Int64) -> String {
        ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: Double(wallMs) / 1000))
    }
}
