import PostgresNIO

/// The statements every upload runs, prepared once per connection: parsing and planning them anew
/// took about a third of PostgreSQL's time per upload (measured with perf during scripts/bench-bank).
enum UploadStatements {
    /// Locks the device's row for the rest of the transaction.
    struct LockDevice: PostgresPreparedStatement {
        static let sql = "SELECT revoked_at_ms FROM device WHERE id = $1 FOR UPDATE"
        typealias Row = Int64?
        var device: String

        func makeBindings() throws -> PostgresBindings {
            var b = PostgresBindings(capacity: 1)
            b.append(device)
            return b
        }

        func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode(Int64?.self) }
    }

    /// Where the device's chain stands (read after the lock): the signing key's range, the head,
    /// what is held at this bseq, the last rseq.
    struct ChainState: PostgresPreparedStatement {
        static let sql = """
            SELECT k.from_bseq, k.until_bseq, h.bseq, h.hash, a.hash, a.receipt,
                (SELECT COALESCE(MAX(rseq), 0) FROM record WHERE device = $1)
            FROM (SELECT 1) one
            LEFT JOIN device_key k ON k.kid = $2
            LEFT JOIN LATERAL (SELECT bseq, hash FROM batch WHERE device = $1 ORDER BY bseq DESC LIMIT 1) h ON true
            LEFT JOIN batch a ON a.device = $1 AND a.bseq = $3
            """
        typealias Row = (Int64?, Int64?, Int64?, String?, String?, String?, Int64)
        var device: String
        var kid: String
        var bseq: Int64

        func makeBindings() throws -> PostgresBindings {
            var b = PostgresBindings(capacity: 3)
            b.append(device)
            b.append(kid)
            b.append(bseq)
            return b
        }

        func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode(Row.self) }
    }

    /// The batch (its receipt filled in at the end of the transaction), its records and the device's
    /// state in one round trip.
    struct StoreBatch: PostgresPreparedStatement {
        static let sql = """
            WITH b AS (
                INSERT INTO batch(device, bseq, hash, prev, token, record_count, received_at_ms, receipt, log_idx)
                VALUES ($1, $2, $3, $4, $5, $6, $7, '', NULL)
            ), r AS (
                INSERT INTO record(device, rseq, bseq, kind, body, wall_ms, channel)
                SELECT $1, t.rseq, $2, t.kind, t.body, t.wall, NULLIF(t.channel, '')
                FROM unnest($8::bigint[], $9::text[], $10::text[], $11::bigint[], $12::text[]) AS t(rseq, kind, body, wall, channel)
            )
            INSERT INTO device_state(device, last_batch_at_ms, last_bseq, heartbeat_ms) VALUES ($1, $7, $2, $13)
            ON CONFLICT (device) DO UPDATE SET last_batch_at_ms = excluded.last_batch_at_ms, last_bseq = excluded.last_bseq,
                heartbeat_ms = COALESCE(excluded.heartbeat_ms, device_state.heartbeat_ms)
            """
        typealias Row = ()
        var device: String
        var bseq: Int64
        var hash: String
        var prev: String
        var token: String
        var recordCount: Int32
        var receivedAtMs: Int64
        var rseqs: [Int64]
        var kinds: [String]
        var bodies: [String]
        var walls: [Int64]
        /// "" for a record without a channel (stored as NULL).
        var channels: [String]
        var heartbeatMs: Int64?

        static var bindingDataTypes: [PostgresDataType] {
            [.text, .int8, .text, .text, .text, .int4, .int8, .int8Array, .textArray, .textArray, .int8Array, .textArray, .int8]
        }

        func makeBindings() throws -> PostgresBindings {
            var b = PostgresBindings(capacity: 13)
            b.append(device)
            b.append(bseq)
            b.append(hash)
            b.append(prev)
            b.append(token)
            b.append(recordCount)
            b.append(receivedAtMs)
            b.append(rseqs)
            b.append(kinds)
            b.append(bodies)
            b.append(walls)
            b.append(channels)
            b.append(heartbeatMs)
            return b
        }

        func decodeRow(_ row: PostgresRow) throws -> Row {}
    }

    /// The bank log's row, locked: the last step of an upload transaction.
    struct LockLog: PostgresPreparedStatement {
        static let sql = "SELECT size, frontier FROM bank_log WHERE id = 1 FOR UPDATE"
        typealias Row = (Int64, String)

        func makeBindings() throws -> PostgresBindings { PostgresBindings() }
        func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode(Row.self) }
    }

    /// Each accepted batch's receipt and log position, and the log's new size and frontier.
    struct SaveReceipts: PostgresPreparedStatement {
        static let sql = """
            WITH receipts AS (
                UPDATE batch b SET receipt = u.receipt, log_idx = u.idx
                FROM unnest($1::text[], $2::bigint[], $3::text[], $4::bigint[]) AS u(device, bseq, receipt, idx)
                WHERE b.device = u.device AND b.bseq = u.bseq
            )
            UPDATE bank_log SET size = $5, frontier = $6 WHERE id = 1
            """
        typealias Row = ()
        var devices: [String]
        var bseqs: [Int64]
        var receipts: [String]
        var indices: [Int64]
        var size: Int64
        var frontier: String

        func makeBindings() throws -> PostgresBindings {
            var b = PostgresBindings(capacity: 6)
            b.append(devices)
            b.append(bseqs)
            b.append(receipts)
            b.append(indices)
            b.append(size)
            b.append(frontier)
            return b
        }

        func decodeRow(_ row: PostgresRow) throws -> Row {}
    }
}
