import ArgumentParser
import Hummingbird
import Logging
import ServiceLifecycle
import VouchBank

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Receive batches over HTTP or HTTPS until stopped.",
        discussion: """
            POST /v1/batches takes one batch (Content-Type: application/vouch-batch) and answers with a signed receipt. \
            The receipt key is created at --key on first start (mode 0600).

            HTTPS: --tls-cert and --tls-key (PEM, both or neither) serve TLS with that certificate chain; the \
            gateway pins the CA that signed it in [bank] ca_file. --client-ca (PEM CA certificates) also requires \
            every client to present a certificate signed by one of them (mTLS); the gateway sets [bank] client_cert \
            and client_key. A missing or unreadable file, or a key that does not match its certificate, stops serve \
            at start with the file named (exit status 1).

            The query and admin API (devices, events, incidents, inclusion proofs; see /openapi.yaml) needs \
            --api-token-file: a file (mode 0600) holding one token of at least 32 characters, sent by clients \
            as Authorization: Bearer TOKEN. Without it that API is off (401 E_API_DISABLED); there is no default \
            token. Uploads are limited per device (--device-rate batches/s, --device-burst at once; 429 with \
            Retry-After beyond them, which the gateway retries).

            Several receivers: give each the same --db postgres://USER@HOST:PORT/DATABASE (the password from \
            PGPASSWORD, not the URL) and the same --key, and put them behind one address. They behave as one: \
            a batch sent to two of them at once is stored once, chains stay whole, each alert goes out once. \
            The upload limit is per receiver. A database that gives no connection within 10 s gets 503 \
            (the gateway retries); one that cannot be reached at start stops serve (exit status 1).

            Alerts: with --alert-command, every event whose severity is not "record" (start and end), every \
            fork, every run of records that never arrived and every device gone silent is queued in the \
            database, in the transaction that found it, and handed to the command (run by /bin/sh, the alert's \
            JSON on standard input) until it exits 0: after 1 s, 2 s, 4 s… at most an hour apart. A webhook is \
            a curl command.

            Examples:
              vouch-bank serve --db bank.sqlite --listen 127.0.0.1:8080 --key bank.key
              PGPASSWORD=… vouch-bank serve --db postgres://vouch@db.bank.internal:5432/vouch --listen 0.0.0.0:8080 --key bank.key
              openssl rand -hex 32 > api.token && chmod 600 api.token
              vouch-bank serve --db bank.sqlite --listen 127.0.0.1:8080 --key bank.key --api-token-file api.token
              vouch-bank serve --db bank.sqlite --key bank.key \\
                  --alert-command 'curl -fsS -H "Content-Type: application/json" --data-binary @- https://hooks.example/vouch'
              vouch-bank serve --db bank.sqlite --listen 0.0.0.0:8443 --key bank.key \\
                  --tls-cert tls-chain.pem --tls-key tls.key
              vouch-bank serve --db bank.sqlite --listen 0.0.0.0:8443 --key bank.key \\
                  --tls-cert tls-chain.pem --tls-key tls.key --client-ca gw-ca.pem
            """)

    @OptionGroup var store: StoreOptions

    @Option(help: "Address to listen on, HOST:PORT.")
    var listen = "127.0.0.1:8080"

    @Option(help: "Receipt-signing key (PEM); created if missing.")
    var key = "vouch-bank.key"

    @Option(name: .customLong("tls-cert"), help: ArgumentHelp("Serve HTTPS with this PEM certificate chain (needs --tls-key).", valueName: "file"))
    var tlsCert: String?

    @Option(name: .customLong("tls-key"), help: ArgumentHelp("The PEM private key of --tls-cert.", valueName: "file"))
    var tlsKey: String?

    @Option(
        name: .customLong("client-ca"),
        help: ArgumentHelp("Require client certificates signed by these PEM CA certificate(s) (mTLS; needs --tls-cert).", valueName: "file"))
    var clientCA: String?

    @Option(name: .customLong("api-token-file"), help: ArgumentHelp("Serve the query and admin API to holders of the token in this file.", valueName: "file"))
    var apiTokenFile: String?

    @Option(
        name: .customLong("alert-command"),
        help: ArgumentHelp("Run this shell command for every alert, the alert's JSON on its standard input (retried until it exits 0).", valueName: "command"))
    var alertCommand: String?

    @Option(name: .customLong("device-rate"), help: ArgumentHelp("Uploads a device may make per second, sustained.", valueName: "n"))
    var deviceRate: Double = 20

    @Option(name: .customLong("device-burst"), help: ArgumentHelp("Uploads a device may make at once (catching up after an outage).", valueName: "n"))
    var deviceBurst: Int = 200

    func validate() throws {
        guard deviceRate > 0, deviceRate.isFinite else { throw ValidationError("--device-rate must be a positive number of uploads per second") }
        guard deviceBurst >= 1 else { throw ValidationError("--device-burst must be at least 1") }
        switch (tlsCert, tlsKey) {
        case (nil, nil):
            if clientCA != nil { throw ValidationError("--client-ca needs HTTPS: add --tls-cert and --tls-key") }
        case (_?, nil): throw ValidationError("--tls-cert needs --tls-key (the private key of that certificate)")
        case (nil, _?): throw ValidationError("--tls-key needs --tls-cert (the certificate chain of that key)")
        case (_?, _?): break
        }
    }

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
        var settings = BankServerSettings(host: host, port: port)
        var scheme = "http"
        if let tlsCert, let tlsKey {
            let files = BankTLSFiles(certificate: tlsCert, privateKey: tlsKey, clientCA: clientCA)
            do { settings.tls = try files.configuration() } catch {
                logger.critical("cannot serve HTTPS: \(error)")
                throw ExitCode(1)
            }
            scheme = clientCA == nil ? "https" : "https (client certificates required, signed by \(clientCA ?? ""))"
        }
        let (bankKey, created) = try BankKeyFile.loadOrCreate(path: key)
        if created { logger.info("created receipt key \(key) (kid \(bankKey.kid))") }
        if let apiTokenFile {
            do { settings.apiToken = try BankAPITokenFile.load(path: apiTokenFile) } catch {
                logger.critical("cannot serve the query and admin API: \(error)")
                throw ExitCode(1)
            }
        }
        let limiter = UploadRateLimiter(perSecond: deviceRate, burst: deviceBurst)
        let database: String = store.described
        do {
            try await store.withStore(alerts: alertCommand != nil, logger: logger) { bank in
                let ingest = BankIngest(store: bank, bankKey: bankKey, logger: logger, limiter: limiter)
                let enrolled = try await bank.devices().map(\.id)
                logger.info("vouch-bank listening on \(host):\(port) over \(scheme), database \(database), \(enrolled.count) enrolled device(s): \(enrolled.joined(separator: ", ")); query and admin API \(settings.apiToken == nil ? "off (no --api-token-file)" : "on")")
                let app = try buildBankApplication(ingest: ingest, settings: settings, logger: logger)
                var services: [ServiceGroupConfiguration.ServiceConfiguration] = [.init(service: app)]
                if let alertCommand, let queue = bank as? any AlertQueue {
                    services.append(.init(service: AlertService(store: queue, command: alertCommand, logger: logger)))
                    logger.info("alerts (events, forks, missing records, silent devices) go to: \(alertCommand)")
                }
                try await ServiceGroup(configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)).run()
            }
        } catch let error as BankError {
            logger.critical("vouch-bank serve: \(error.message)")
            throw ExitCode(1)
        }
    }
}
