import ArgumentParser
import Foundation
import VouchAgent
import VouchCore
import VouchEvidence
import VouchStore

struct EventsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "events",
        abstract: "List the events this gateway recorded (stoppages, stock leaving, tampering, health), newest last.",
        discussion: """
            Read from the outbox, read-only: safe while the agent runs, and works when it does not. An event \
            that started and has not ended is "ongoing". "sealed in batch N" means it is signed and on its way \
            to the bank; "not yet sealed" means it is stored and goes out with the next batch.

            Exit status: 0; 66 no outbox yet (the agent never ran with this config); 78 the config does not load.

            Examples:
              vouch events
              vouch events --limit 5 --json
            """)

    @Option(name: .shortAndLong, help: "Config file.")
    var config = "/etc/vouch/vouch.toml"

    @Option(help: ArgumentHelp("At most this many events (the newest).", valueName: "n"))
    var limit: Int = 20

    @Flag(help: "One JSON document on stdout.")
    var json = false

    struct Row: Encodable {
        var eventId: String
        var rule: String
        var channel: String
        var severity: String
        var status: String
        var startWallMs: Int64
        var endWallMs: Int64?
        var durationMs: Int64
        var explanation: String
        var bseq: Int64?

        enum CodingKeys: String, CodingKey { case eventId, rule, channel, severity, status, startWallMs, endWallMs, durationMs, explanation, bseq }

        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(eventId, forKey: .eventId)
            try c.encode(rule, forKey: .rule)
            try c.encode(channel, forKey: .channel)
            try c.encode(severity, forKey: .severity)
            try c.encode(status, forKey: .status)
            try c.encode(startWallMs, forKey: .startWallMs)
            try c.encode(endWallMs, forKey: .endWallMs)
            try c.encode(durationMs, forKey: .durationMs)
            try c.encode(explanation, forKey: .explanation)
            try c.encode(bseq, forKey: .bseq)
        }
    }

    func validate() throws {
        guard (1...10_000).contains(limit) else { throw ValidationError("--limit must be 1 to 10000") }
    }

    func run() throws {
        let settings = try ReadCommands.config(config)
        let outbox = try ReadCommands.outbox(settings, config: config, command: "events")
        let records: [(record: EvidenceRecord, bseq: Int64?)]
        do { records = try outbox.latestRecords(kind: "evt", limit: 2 * limit) } catch {
            FileHandleOutput.standardError("vouch events: \(error)")
            throw ExitCode(74)
        }
        var order: [String] = []
        var rows: [String: Row] = [:]
        for (record, bseq) in records {
            guard case .event(let e) = record else { continue }
            if rows[e.eventId] == nil { order.append(e.eventId) }
            rows[e.eventId] = Row(
                eventId: e.eventId, rule: e.rule, channel: e.channel, severity: e.severity, status: e.phase == .end ? "ended" : "ongoing",
                startWallMs: e.startWallMs, endWallMs: e.endWallMs, durationMs: e.durationMs, explanation: e.explanation, bseq: bseq)
        }
        let shown = order.suffix(limit).compactMap { rows[$0] }
        if json {
            let encoder = JSONEncoder()
            encoder.keyEncodingStrategy = .convertToSnakeCase
            encoder.outputFormatting = [.sortedKeys]
            struct Answer: Encodable { let device: String; let events: [Row] }
            if let data = try? encoder.encode(Answer(device: settings.device.id, events: shown)) { print(String(decoding: data, as: UTF8.self)) }
            return
        }
        guard !shown.isEmpty else {
            print("\(settings.device.id): no events recorded")
            return
        }
        for r in shown {
            let sealed = r.bseq.map { "sealed in batch \($0)" } ?? "not yet sealed"
            let span = r.status == "ended" ? "lasted \(Status.duration(r.durationMs))" : "ONGOING for \(Status.duration(r.durationMs))"
            print("\(Status.iso(r.startWallMs))  \(r.severity.uppercased())  \(r.rule) on \(r.channel): \(span); \(sealed)\n    \(r.explanation)")
        }
    }
}
