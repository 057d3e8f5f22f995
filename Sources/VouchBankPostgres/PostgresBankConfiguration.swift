import Foundation
import PostgresNIO
import VouchBank

/// Where the bank's PostgreSQL database is, from the `--db` URL:
///
///     postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?sslmode=disable|prefer|require]
///     postgres://USER@/DATABASE?host=/run/postgresql[&port=5432]     (Unix socket in that directory)
///
/// `postgresql://` is the same. Without a password in the URL, `PGPASSWORD` is used when set; a
/// password is better kept out of the URL, which the process list shows.
public struct PostgresBankConfiguration: Sendable, Equatable {
    public enum Endpoint: Sendable, Equatable {
        case tcp(host: String, port: Int)
        /// The directory holding the server's socket (`.s.PGSQL.PORT`), as libpq's `host=/dir`.
        case socket(directory: String, port: Int)
    }

    public enum TLSMode: String, Sendable, Equatable {
        case disable, prefer, require
    }

    public var endpoint: Endpoint
    public var user: String
    public var password: String?
    public var database: String
    public var tls: TLSMode
    /// Connections each receiver may open (uploads use up to ``PostgresBankStore/writerLanes``, queries the rest).
    public var maximumConnections: Int

    public init(endpoint: Endpoint, user: String, password: String? = nil, database: String, tls: TLSMode = .prefer, maximumConnections: Int = 16) {
        self.endpoint = endpoint
        self.user = user
        self.password = password
        self.database = database
        self.tls = tls
        self.maximumConnections = maximumConnections
    }

    /// Whether `--db` names a PostgreSQL database rather than a SQLite file.
    public static func isURL(_ text: String) -> Bool {
        text.hasPrefix("postgres://") || text.hasPrefix("postgresql://")
    }

    /// Parses a `--db` URL; the error says which part is wrong.
    public init(url text: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws(BankError) {
        func bad(_ why: String) -> BankError {
            BankError(BankError.store, status: 500, "--db \(Self.redacted(text)): \(why); expected postgres://USER@HOST:PORT/DATABASE or postgres://USER@/DATABASE?host=/run/postgresql")
        }
        guard Self.isURL(text), let url = URLComponents(string: text) else { throw bad("not a postgres:// URL") }
        let query = Dictionary((url.queryItems ?? []).map { ($0.name, $0.value ?? "") }, uniquingKeysWith: { $1 })
        for key in query.keys where !["host", "port", "sslmode", "user", "password", "max_connections"].contains(key) {
            throw bad("unknown parameter \"\(key)\" (known: host, port, sslmode, user, password, max_connections)")
        }
        let database = url.path.hasPrefix("/") ? String(url.path.dropFirst()) : url.path
        guard !database.isEmpty, !database.contains("/") else { throw bad("no database name after the host") }
        guard let user = url.user ?? query["user"], !user.isEmpty else { throw bad("no user (postgres://USER@…)") }
        var port = 5432
        if let p = url.port ?? query["port"].flatMap({ Int($0) }) {
            guard (1...65535).contains(p) else { throw bad("port \(p) is not 1…65535") }
            port = p
        } else if let p = query["port"] {
            throw bad("port \"\(p)\" is not a number")
        }
        let endpoint: Endpoint
        if let dir = query["host"], dir.hasPrefix("/") {
            endpoint = .socket(directory: dir, port: port)
        } else if let host = url.host ?? query["host"], !host.isEmpty {
            endpoint = .tcp(host: host, port: port)
        } else {
            throw bad("no host (HOST[:PORT], or ?host=/socket/directory)")
        }
        let tls: TLSMode
        switch query["sslmode"] ?? "prefer" {
        case "disable": tls = .disable
        case "prefer", "allow": tls = .prefer
        case "require", "verify-ca", "verify-full": tls = .require
        case let other: throw bad("sslmode \"\(other)\" is not disable, prefer or require")
        }
        var maximum = 16
        if let m = query["max_connections"] {
            guard let v = Int(m), (2...200).contains(v) else { throw bad("max_connections \"\(m)\" is not 2…200") }
            maximum = v
        }
        self.init(
            endpoint: endpoint, user: user, password: url.password ?? query["password"] ?? environment["PGPASSWORD"], database: database, tls: tls,
            maximumConnections: maximum)
    }

    /// The URL with any password replaced, for logs and error messages.
    public static func redacted(_ text: String) -> String {
        guard var url = URLComponents(string: text) else { return "(unreadable URL)" }
        if url.password != nil { url.password = "***" }
        if let items = url.queryItems { url.queryItems = items.map { $0.name == "password" ? URLQueryItem(name: "password", value: "***") : $0 } }
        return url.string ?? "(unreadable URL)"
    }

    /// What the logs show: where, as whom, which database.
    public var description: String {
        switch endpoint {
        case .tcp(let host, let port): "postgres \(user)@\(host):\(port)/\(database)"
        case .socket(let dir, let port): "postgres \(user)@\(dir)/.s.PGSQL.\(port)/\(database)"
        }
    }

    var client: PostgresClient.Configuration {
        var configuration: PostgresClient.Configuration
        switch endpoint {
        case .tcp(let host, let port):
            let mode: PostgresClient.Configuration.TLS =
                switch tls {
                case .disable: .disable
                case .prefer: .prefer(.makeClientConfiguration())
                case .require: .require(.makeClientConfiguration())
                }
            configuration = PostgresClient.Configuration(host: host, port: port, username: user, password: password, database: database, tls: mode)
        case .socket(let dir, let port):
            configuration = PostgresClient.Configuration(
                unixSocketPath: "\(dir)/.s.PGSQL.\(port)", username: user, password: password, database: database)
        }
        configuration.options.maximumConnections = maximumConnections
        configuration.options.minimumConnections = 0
        // A database that does not answer must fail an upload while the gateway still waits for it.
        configuration.options.connectTimeout = .seconds(5)
        return configuration
    }
}
