import Logging
import PostgresNIO
import VouchBank

/// The only code that changes the bank's PostgreSQL schema. Migrations are applied in order, each
/// in its own transaction under an advisory lock, so receivers starting together apply each once;
/// a shipped migration never changes (add a new one).
enum PostgresBankSchema {
    static let migrations: [(id: String, sql: [String])] = [
        (
            "v1: devices, keys, batches, records, events, incidents, bank log, device state, alerts",
            [
                """
                CREATE TABLE device (
                    id TEXT PRIMARY KEY,
                    kid TEXT NOT NULL UNIQUE,
                    jwk TEXT NOT NULL,
                    enrolled_at_ms BIGINT NOT NULL,
                    revoked_at_ms BIGINT
                )
                """,
                """
                CREATE TABLE device_key (
                    kid TEXT PRIMARY KEY,
                    device TEXT NOT NULL REFERENCES device(id),
                    jwk TEXT NOT NULL,
                    from_bseq BIGINT NOT NULL,
                    until_bseq BIGINT
                )
                """,
                "CREATE INDEX device_key_device ON device_key(device, from_bseq)",
                // receipt and log_idx are set at the end of the accepting transaction (the bank log is
                // appended last, see PostgresBankStore); never empty once committed.
                """
                CREATE TABLE batch (
                    device TEXT NOT NULL REFERENCES device(id),
                    bseq BIGINT NOT NULL,
                    hash TEXT NOT NULL,
                    prev TEXT NOT NULL,
                    token TEXT NOT NULL,
                    record_count INTEGER NOT NULL,
                    received_at_ms BIGINT NOT NULL,
                    receipt TEXT NOT NULL,
                    log_idx BIGINT,
                    PRIMARY KEY (device, bseq)
                )
                """,
                """
                CREATE TABLE record (
                    device TEXT NOT NULL,
                    rseq BIGINT NOT NULL,
                    bseq BIGINT NOT NULL,
                    kind TEXT NOT NULL,
                    body TEXT NOT NULL,
                    wall_ms BIGINT NOT NULL,
                    channel TEXT,
                    PRIMARY KEY (device, rseq)
                )
                """,
                "CREATE INDEX record_batch ON record(device, bseq)",
                "CREATE INDEX record_kind_time ON record(device, kind, wall_ms)",
                """
                CREATE TABLE event (
                    device TEXT NOT NULL,
                    event_id TEXT NOT NULL,
                    rule TEXT NOT NULL,
                    channel TEXT NOT NULL,
                    severity TEXT NOT NULL,
                    start_wall_ms BIGINT NOT NULL,
                    start_mono_ms BIGINT NOT NULL,
                    boot BIGINT NOT NULL,
                    end_wall_ms BIGINT,
                    duration_ms BIGINT NOT NULL,
                    status TEXT NOT NULL,
                    explanation TEXT NOT NULL,
                    bseq BIGINT NOT NULL,
                    PRIMARY KEY (device, event_id)
                )
                """,
                """
                CREATE TABLE incident (
                    id BIGSERIAL PRIMARY KEY,
                    device TEXT NOT NULL,
                    kind TEXT NOT NULL,
                    bseq BIGINT NOT NULL,
                    detail TEXT NOT NULL,
                    evidence TEXT,
                    at_ms BIGINT NOT NULL
                )
                """,
                "CREATE TABLE bank_log (id INTEGER PRIMARY KEY CHECK (id = 1), size BIGINT NOT NULL, frontier TEXT NOT NULL)",
                "INSERT INTO bank_log(id, size, frontier) VALUES (1, 0, '')",
                """
                CREATE TABLE device_state (
                    device TEXT PRIMARY KEY REFERENCES device(id),
                    last_batch_at_ms BIGINT NOT NULL,
                    last_bseq BIGINT NOT NULL,
                    heartbeat_ms BIGINT
                )
                """,
                """
                CREATE TABLE alert (
                    id BIGSERIAL PRIMARY KEY,
                    kind TEXT NOT NULL,
                    device TEXT NOT NULL,
                    key TEXT NOT NULL,
                    body TEXT NOT NULL,
                    created_at_ms BIGINT NOT NULL,
                    attempts BIGINT NOT NULL DEFAULT 0,
                    next_at_ms BIGINT NOT NULL,
                    delivered_at_ms BIGINT,
                    last_error TEXT,
                    UNIQUE (kind, device, key)
                )
                """,
                "CREATE INDEX alert_due ON alert(next_at_ms) WHERE delivered_at_ms IS NULL",
            ]
        )
    ]

    /// Applies what is missing. Safe to run from several receivers at once.
    static func migrate(on connection: PostgresConnection, logger: Logger) async throws {
        do {
            for migration in migrations {
                try await connection.query("BEGIN", logger: logger)
                do {
                    // One receiver at a time past this point; the others then see the migration applied.
                    // (Even CREATE TABLE IF NOT EXISTS races between two sessions, so it is inside too.)
                    try await connection.query("SELECT pg_advisory_xact_lock(7301186)", logger: logger)
                    try await connection.query(
                        "CREATE TABLE IF NOT EXISTS vouch_bank_migration (id TEXT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())", logger: logger)
                    let applied = try await connection.query("SELECT 1 FROM vouch_bank_migration WHERE id = \(migration.id)", logger: logger).collect()
                    if applied.isEmpty {
                        for statement in migration.sql { try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger) }
                        try await connection.query("INSERT INTO vouch_bank_migration(id) VALUES (\(migration.id))", logger: logger)
                        logger.notice("bank database: applied migration \"\(migration.id)\"")
                    }
                    try await connection.query("COMMIT", logger: logger)
                } catch {
                    _ = try? await connection.query("ROLLBACK", logger: logger)
                    throw error
                }
            }
        }
    }
}
