import ArgumentParser
import Foundation
import VouchBank
import VouchEvidence

struct Incidents: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List forks (a device signed two histories), records that never arrived, and devices gone silent.",
        discussion: """
            A device is silent when no batch arrived for twice the heartbeat interval it declared (a truncated
            tail, a device switched off or cut off). A fork's second signed batch is kept: with --json it is printed as "evidence", and together with the
            accepted batch of the same bseq it proves the equivocation to anyone holding the device's public key.

            Examples:
              vouch-bank incidents --db bank.sqlite
              vouch-bank incidents --db bank.sqlite --device acme-press-1 --json
            """)

    @OptionGroup var store: StoreOptions
    @Option(help: "Only this device.") var device: String?
    @Flag(help: "One JSON object per line.") var json = false

    func run() async throws {
        let id = device
        let incidents = try await store.withStore { try await $0.incidents(device: id, nowMs: Int64(Date().timeIntervalSince1970 * 1000)) }
        if incidents.isEmpty && !json { print("no incidents") }
        for i in incidents {
            if json {
                print(
                    CanonicalJSON.string([
                        "device": .string(i.device), "kind": .string(i.kind), "code": .string(i.code), "bseq": .int(i.bseq), "detail": .string(i.detail),
                        "evidence": i.evidence.map(JSONValue.string) ?? .null, "at_ms": .int(i.atMs),
                    ]))
            } else {
                let at = ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: Double(i.atMs) / 1000))
                print("\(i.device)  \(i.code)  \(i.kind)  bseq \(i.bseq)  \(at)  \(i.detail)")
            }
        }
    }
}
