import ArgumentParser
import Foundation
import VouchBank
import VouchEvidence

struct Events: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the events the bank has accepted (stoppages, stock leaving, tampering, health).",
        discussion: """
            With --follow, prints the events there are, then every event that starts or ends afterwards, \
            as the receiver stores them (read from the database each second; safe while `serve` runs), \
            until interrupted: an operator's terminal on the fleet.

            Examples:
              vouch-bank events --db bank.sqlite
              vouch-bank events --db bank.sqlite --device acme-press-1 --json
              vouch-bank events --db bank.sqlite --follow
            """)

    @OptionGroup var store: StoreOptions
    @Option(help: "Only this device.") var device: String?
    @Flag(help: "One JSON object per line.") var json = false
    @Flag(help: "Keep printing events as they start and end, until interrupted.") var follow = false

    func run() async throws {
        try await store.withStore { bank in try await list(bank) }
    }

    func list(_ bank: any BankStore) async throws {
        var printed: [String: String] = [:]  // device + event id → status printed
        var first = true
        while true {
            let events = try await bank.events(device: device)
            if first && events.isEmpty && !json && !follow { print("no events") }
            for e in events where printed["\(e.device)\u{0}\(e.eventId)"] != e.status {
                printed["\(e.device)\u{0}\(e.eventId)"] = e.status
                show(e)
            }
            first = false
            guard follow else { return }
            fflush(nil)  // every stream: a pipe to `less` or a log sees each event at once
            try await Task.sleep(for: .seconds(1))
        }
    }

    func show(_ e: StoredEvent) {
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
