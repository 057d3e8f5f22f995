import ArgumentParser
import Logging

@main
struct VouchBankCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vouch-bank",
        abstract: "The bank's receiver for Vouch evidence: verifies, chains and stores batches.",
        discussion: """
            Examples:
              vouch-bank devices add enrollment.json --db bank.sqlite
              vouch-bank serve --db bank.sqlite --listen 127.0.0.1:8080 --key bank.key
              vouch-bank serve --db bank.sqlite --listen 0.0.0.0:8443 --key bank.key --tls-cert tls-chain.pem --tls-key tls.key
              vouch-bank events --db bank.sqlite
            """,
        subcommands: [Serve.self, Devices.self, Events.self, Export.self, Verify.self, Proof.self, Incidents.self, Key.self])
}

struct StoreOptions: ParsableArguments {
    @Option(help: "Bank database (SQLite file).")
    var db = "vouch-bank.sqlite"
}
