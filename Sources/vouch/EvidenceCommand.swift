import ArgumentParser
import Foundation
import VouchCore
import VouchEvidence
import VouchStore

struct EvidenceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "evidence", abstract: "Work with the evidence this gateway has sealed.",
        discussion: """
            Example:
              vouch evidence export --config /etc/vouch/vouch.toml > site.batches
            """,
        subcommands: [Export.self])

    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print every sealed batch in the outbox as one batch stream, exactly as signed.",
            discussion: """
                Reads the outbox read-only, so it is safe while the agent runs. Each batch is its JWS manifest on
                one line and its records one per line, the form `vouch-bank export` writes, so the bank (or anyone
                with the enrollment document) can check it offline with `vouch-bank verify`. With --receipts, the
                bank's receipts for delivered batches go to that file, one JWS per line.

                Examples:
                  vouch evidence export --config /etc/vouch/vouch.toml > gateway.batches
                  vouch evidence export --config /etc/vouch/vouch.toml --receipts receipts.jws > gateway.batches
                  vouch-bank verify --enrollment enrollment.json gateway.batches
                """)

        @Option(name: .shortAndLong, help: "Config file (device.data_dir locates the outbox).")
        var config = "/etc/vouch/vouch.toml"

        @Option(help: "Also write the bank's receipts (one JWS per line) to this file.")
        var receipts: String?

        func run() throws {
            let settings: AgentConfig
            do { settings = try ConfigLoader.load(path: config) } catch {
                FileHandleOutput.standardError(error.description)
                throw ExitCode(78)
            }
            let batches: [(batch: SealedBatch, receipt: String?)]
            do {
                let outbox = try Outbox(path: settings.device.dataDir + "/outbox.sqlite", readOnly: true)
                batches = try outbox.sealedBatches()
            } catch {
                FileHandleOutput.standardError("vouch evidence export: \(error)")
                throw ExitCode(1)
            }
            for (batch, _) in batches {
                print(batch.fileText, terminator: "")
            }
            let held = batches.compactMap(\.receipt)
            if let receipts {
                guard FileManager.default.createFile(atPath: receipts, contents: Data(held.map { $0 + "\n" }.joined().utf8)) else {
                    FileHandleOutput.standardError("vouch evidence export: cannot write the receipts to \(receipts) (does its directory exist, may this user write there?)")
                    throw ExitCode(1)
                }
            }
            FileHandleOutput.standardError("vouch evidence export: \(batches.count) sealed batch(es), \(held.count) with the bank's receipt")
        }
    }
}
