import ArgumentParser
import Foundation
import VouchCore
import VouchEvidence
import VouchStore

struct EvidenceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "evidence", abstract: "Work with the evidence this gateway has sealed.", subcommands: [Export.self])

    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print every sealed batch in the outbox, one JSON object per line, exactly as signed.",
            discussion: """
                Reads the outbox read-only, so it is safe while the agent runs. Each line is
                {"bseq":…,"delivered":true|false,"hash":…,"token":…}, the same form `vouch-bank export` writes, so
                the bank (or anyone with the enrollment document) can check it offline with `vouch-bank verify`.

                Examples:
                  vouch evidence export --config /etc/vouch/vouch.toml > gateway-batches.jsonl
                  vouch-bank verify --enrollment enrollment.json gateway-batches.jsonl
                """)

        @Option(name: .shortAndLong, help: "Config file (device.data_dir locates the outbox).")
        var config = "/etc/vouch/vouch.toml"

        func run() throws {
            let settings: AgentConfig
            do { settings = try ConfigLoader.load(path: config) } catch {
                FileHandleOutput.standardError(error.description)
                throw ExitCode(78)
            }
            do {
                let outbox = try Outbox(path: settings.device.dataDir + "/outbox.sqlite", readOnly: true)
                for (batch, delivered) in try outbox.sealedBatches() {
                    print(CanonicalJSON.string(["bseq": .int(batch.bseq), "hash": .string(batch.signingInputHash), "token": .string(batch.token), "delivered": .bool(delivered)]))
                }
            } catch {
                FileHandleOutput.standardError("vouch evidence export: \(error)")
                throw ExitCode(1)
            }
        }
    }
}
