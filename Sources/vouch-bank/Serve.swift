import ArgumentParser
import Hummingbird
import Logging
import VouchBank

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Receive batches over HTTP until stopped.",
        discussion: """
            POST /v1/batches takes one batch (Content-Type: application/jose) and answers with a signed receipt.
            The receipt key is created at --key on first start (mode 0600).

            Example:
              vouch-bank serve --db bank.sqlite --listen 127.0.0.1:8080 --key bank.key
            """)

    @OptionGroup var store: StoreOptions

    @Option(help: "Address to listen on, HOST:PORT.")
    var listen = "127.0.0.1:8080"

    @Option(help: "Receipt-signing key (PEM); created if missing.")
    var key = "vouch-bank.key"

    func run() async throws {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = .info
            return handler
        }
        let logger = Logger(label: "vouch-bank")
        guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]), (1...65535).contains(port) else {
            throw ValidationError("--listen must be HOST:PORT, e.g. 127.0.0.1:8080 (got \(listen))")
        }
        let host = String(listen[..<colon])
        let database = try SQLiteBankStore(path: store.db)
        let (bankKey, created) = try BankKeyFile.loadOrCreate(path: key)
        if created { logger.info("created receipt key \(key) (kid \(bankKey.kid))") }
        let ingest = BankIngest(store: database, bankKey: bankKey, logger: logger)
        let enrolled = try database.devices().map(\.id)
        logger.info("vouch-bank listening on \(host):\(port), database \(store.db), \(enrolled.count) enrolled device(s): \(enrolled.joined(separator: ", "))")
        let app = buildBankApplication(ingest: ingest, settings: BankServerSettings(host: host, port: port), logger: logger)
        try await app.runService()
    }
}
