import ArgumentParser
import Foundation
import VouchAgent
import VouchCore
import VouchStore

struct OutboxCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "outbox",
        abstract: "Show what the gateway holds for the bank: records, batches not yet acknowledged, refused batches, disk use.",
        discussion: """
            Read from the outbox, read-only: safe while the agent runs, and works when it does not. A batch \
            the bank refused is kept ("quarantined") with the bank's code and reason, and retried later; \
            nothing is ever dropped for being refused.

            Exit status: 0; 66 no outbox yet (the agent never ran with this config); 78 the config does not load.

            Examples:
              vouch outbox
              vouch outbox --json
            """)

    @Option(name: .shortAndLong, help: "Config file.")
    var config = "/etc/vouch/vouch.toml"

    @Flag(help: "One JSON document on stdout.")
    var json = false

    func run() throws {
        let settings = try ReadCommands.config(config)
        let outbox = try ReadCommands.outbox(settings, config: config, command: "outbox")
        let path = outbox.path
        let status: Outbox.Status
        let quarantined: [(bseq: Int64, code: String, reason: String, atMs: Int64)]
        do {
            status = try outbox.status()
            quarantined = try outbox.quarantined()
        } catch {
            FileHandleOutput.standardError("vouch outbox: \(error)")
            throw ExitCode(74)
        }
        let bytes = ["", "-wal"].reduce(Int64(0)) { sum, suffix in
            sum + ((try? FileManager.default.attributesOfItem(atPath: path + suffix)[.size] as? Int64) ?? 0)
        }
        let budget = settings.evidence.diskBudgetBytes
        if json {
            let object: [String: Any] = [
                "device": settings.device.id, "path": path, "records": status.records, "unsealed_records": status.unsealedRecords,
                "batches": status.batches, "undelivered_batches": status.undeliveredBatches, "last_bseq": status.lastBseq, "boot_count": status.bootCount,
                "bytes": bytes, "disk_budget_bytes": budget,
                "quarantined": quarantined.map { ["bseq": $0.bseq, "code": $0.code, "reason": $0.reason, "at_ms": $0.atMs] as [String: Any] },
            ]
            JSONOutput.print(object)
            return
        }
        print("\(settings.device.id): outbox \(path)")
        print("  \(status.records) records in \(status.batches) batches (last batch \(status.lastBseq)); \(status.unsealedRecords) record(s) not yet sealed")
        print("  \(status.undeliveredBatches) batch(es) not yet acknowledged by the bank")
        print("  \(bytes / 1024) KiB on disk of a \(budget / (1 << 20)) MiB budget ([evidence] disk_budget); boot \(status.bootCount)")
        if quarantined.isEmpty {
            print("  no batch refused by the bank")
        } else {
            print("  \(quarantined.count) batch(es) refused by the bank, kept and retried:")
            for q in quarantined { print("    batch \(q.bseq): \(q.code) at \(Status.iso(q.atMs)): \(q.reason)") }
        }
    }
}
