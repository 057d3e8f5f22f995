import ArgumentParser
import Foundation
import VouchBank
import VouchEvidence

struct Events: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the events the bank has accepted (stoppages and other findings).",
        discussion: """
            Examples:
              vouch-bank events --db bank.sqlite
              vouch-bank events --db bank.sqlite --device acme-press-1 --json
            """)

    @OptionGroup var store: StoreOptions
    @Option(help: "Only this device.") var device: String?
    @Flag(help: "One JSON object per line.") var json = false

    func run() throws {
        let events = try SQLiteBankStore(path: store.db).events(device: device)
        if events.isEmpty && !json { print("no events") }
        for e in events {
            if json {
                let value: JSONValue = [
                    "device": .string(e.device), "event_id": .string(e.eventId), "rule": .string(e.rule), "channel": .string(e.channel),
                    "severity": .string(e.severity), "start_wall_ms": .int(e.startWallMs), "end_wall_ms": e.endWallMs.map(JSONValue.int) ?? .null,
                    "duration_ms": .int(e.durationMs), "status": .string(e.status), "explanation": .string(e.explanation), "bseq": .int(e.bseq),
                ]
                print(CanonicalJSON.string(value))
            } else {
                let start = ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: Double(e.startWallMs) / 1000))
                print("\(e.device)  \(e.rule)  \(e.status)  start \(start)  \(e.durationMs / 1000) s  \(e.explanation)")
            }
        }
    }
}
