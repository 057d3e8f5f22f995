import ArgumentParser
import Logging
import VouchBank
import VouchBankPostgres

@main
struct VouchBankCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vouch-bank",
        abstract: "The bank's receiver for Vouch evidence: verifies, chains and stores batches.",
        discussion: """
            Examples:
              vouch-bank devices add enrollment.json --db bank.sqlite
              vouch-bank serve --db bank.sqlite --listen 127.0.0.1:8080 --key bank.key
              vouch-bank serve --db postgres://vouch@db.bank.internal:5432/vouch --listen 0.0.0.0:8080 --key bank.key
              vouch-bank serve --db bank.sqlite --listen 0.0.0.0:8443 --key bank.key --tls-cert tls-chain.pem --tls-key tls.key
              vouch-bank events --db bank.sqlite
            """,
        subcommands: [Serve.self, Devices.self, Events.self, Gaps.self, Incidents.self, Export.self, Verify.self, Proof.self, Key.self])
}

struct StoreOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "Bank database: a SQLite file, or postgres://USER@HOST:PORT/DATABASE (several receivers on one database; the password from PGPASSWORD).",
            valueName: "file-or-url"))
    var db = "vouch-bank.sqlite"

    var isPostgres: Bool { PostgresBankConfiguration.isURL(db) }

    /// What the logs show of --db (never a password).
    var described: String { isPostgres ? PostgresBankConfiguration.redacted(db) : db }

    /// Runs `body` with the store --db names, open (and migrated) for its duration.
    func withStore<T>(alerts: Bool = false, logger: Logger = Logger(label: "vouch-bank"), _ body: (any BankStore) async throws -> T) async throws -> T {
        if isPostgres {
            return try await PostgresBankStore.with(try PostgresBankConfiguration(url: db), alerts: alerts, logger: logger) { try await body($0) }
        }
        return try await body(try SQLiteBankStore(path: db, alerts: alerts))
    }
}
