import ArgumentParser
import Foundation
import VouchBank
import VouchEvidence

struct Gaps: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the stretches the bank cannot see: gaps the gateways reported and records that never arrived.",
        discussion: """
            A gateway reports its own gaps in the chain (the agent was down, a sensor did not answer, the disk \
            budget dropped readings, the outbox was corrupt); the bank adds the records it never received \
            (their sequence numbers are missing between two batches: deleted or lost on the gateway), bounded \
            by the records on either side. The same list is GET /v1/gaps.

            Examples:
              vouch-bank gaps --db bank.sqlite
              vouch-bank gaps --db bank.sqlite --device acme-press-1 --json
            """)

    @OptionGroup var store: StoreOptions
    @Option(help: "Only this device.") var device: String?
    @Flag(help: "One JSON object per line.") var json = false

    func run() async throws {
        let id = device
        let gaps = try await store.withStore { try await $0.gaps(device: id, sinceMs: nil) }
        if gaps.isEmpty && !json { print("no gaps") }
        for g in gaps {
            if json {
                print(CanonicalJSON.string(g.json))
            } else {
                let span = [g.fromWallMs, g.toWallMs].map { $0.map(Self.iso) ?? "?" }.joined(separator: " – ")
                print("\(g.device)  \(g.kind)  \(g.channel ?? "all channels")  \(span)  \(g.missing) missing  \(g.detail)")
            }
        }
    }

    static func iso(_ ms: Int64) -> String { ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: Double(ms) / 1000)) }
}
