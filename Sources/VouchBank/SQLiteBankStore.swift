import Foundation
import GRDB
import VouchEvidence

/// ``BankStore`` on a SQLite file (the embedded default for a pilot on one box).
///
/// Invariants:
/// - Per device, stored `bseq` values are gap-free from 1 and each links to the previous by `prev`.
/// - A stored batch and its records never change; a resend of the same batch changes nothing.
/// - Only ``BankSchema`` changes the schema; shipped migrations never change.
/// - A receipt is returned only after the transaction holding its batch has committed with
///   `synchronous=FULL`; uploads that arrive together share that transaction (each in its own
///   savepoint, so one refusal does not undo the others) and its fsync.
public final class SQLiteBankStore: SynchronousBankStore {
    let pool: DatabasePool
    public let path: String

    /// Uploads arriving together commit together: one transaction, one fsync (see ``GroupCommitter``).
    let committer: GroupCommitter

    /// Write transactions of uploads committed since this store opened, and the uploads they held.
    public var uploadCommits: (transactions: Int, uploads: Int) { committer.counts }

    /// Whether accepted batches queue alerts (``BankAlert``): set when alerts are delivered.
    public let alerts: Bool

    public init(path: String, alerts: Bool = false) throws(BankError) {
        self.path = path
        self.alerts = alerts
        var configuration = Configuration()
        configuration.prepareDatabase { db in try db.execute(sql: "PRAGMA synchronous = FULL") }
        configuration.busyMode = .timeout(10)
        do {
            pool = try DatabasePool(path: path, configuration: configuration)
            // DatabasePool sets `synchronous = NORMAL` on its writer when it turns WAL on, after
            // prepareDatabase: FULL again, so a receipt never names a batch a power cut can take back.
            try pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA synchronous = FULL") }
            try BankSchema.migrator.migrate(pool)
            committer = GroupCommitter(pool: pool, path: path)
        } catch {
            throw BankError(BankError.store, status: 500, "cannot open the bank database \(path): \(error)")
        }
    }

    public func enroll(_ device: EnrolledDevice) throws(BankError) {
        try write { db in
            if let row = try Row.fetchOne(db, sql: "SELECT kid FROM device WHERE id = ?", arguments: [device.id]) {
                let kid: String = row["kid"]
                if kid == device.kid { return }
                throw BankError(BankError.enrollment, status: 409, "device \(device.id) is already enrolled with another key (\(kid)); rotate keys instead of re-enrolling")
            }
            if let other = try String.fetchOne(db, sql: "SELECT id FROM device WHERE kid = ?", arguments: [device.kid]) {
                throw BankError(BankError.enrollment, status: 409, "this key is already enrolled for device \(other)")
            }
            if let other = try String.fetchOne(db, sql: "SELECT device FROM device_key WHERE kid = ?", arguments: [device.kid]) {
                throw BankError(BankError.enrollment, status: 409, "this key was rotated in for device \(other); it cannot be enrolled again")
            }
            try db.execute(
                sql: "INSERT INTO device(id, kid, jwk, enrolled_at_ms) VALUES(?, ?, ?, ?)",
                arguments: [device.id, device.kid, CanonicalJSON.string(device.key.json), device.enrolledAtMs])
            try db.execute(
                sql: "INSERT INTO device_key(kid, device, jwk, from_bseq, until_bseq) VALUES(?, ?, ?, 1, NULL)",
                arguments: [device.kid, device.id, CanonicalJSON.string(device.key.json)])
        }
    }

    static let deviceKeyColumns = """
        SELECT d.id, d.enrolled_at_ms, d.revoked_at_ms, k.jwk, k.from_bseq, k.until_bseq
        FROM device_key k JOIN device d ON d.id = k.device
        """

    public func device(kid: String) throws(BankError) -> EnrolledDevice? {
        try read { db in try Row.fetchOne(db, sql: Self.deviceKeyColumns + " WHERE k.kid = ?", arguments: [kid]).map(Self.device) }
    }

    /// Each device through its current key.
    public func devices() throws(BankError) -> [EnrolledDevice] {
        try read { db in try Row.fetchAll(db, sql: Self.deviceKeyColumns + " WHERE k.until_bseq IS NULL ORDER BY d.id").map(Self.device) }
    }

    public func device(id: String) throws(BankError) -> EnrolledDevice? {
        try read { db in try Row.fetchOne(db, sql: Self.deviceKeyColumns + " WHERE k.until_bseq IS NULL AND d.id = ?", arguments: [id]).map(Self.device) }
    }

    public func revoke(device id: String, atMs: Int64) throws(BankError) -> EnrolledDevice {
        try write { db in
            try db.execute(sql: "UPDATE device SET revoked_at_ms = ? WHERE id = ? AND revoked_at_ms IS NULL", arguments: [atMs, id])
            guard let row = try Row.fetchOne(db, sql: Self.deviceKeyColumns + " WHERE k.until_bseq IS NULL AND d.id = ?", arguments: [id]) else {
                throw BankError(BankError.notFound, status: 404, "no device \(id) is enrolled")
            }
            return try Self.device(row)
        }
    }

    public func chainStatus(device id: String, nowMs: Int64) throws(BankError) -> ChainStatus {
        try read { db in
            var status = ChainStatus()
            if let row = try Row.fetchOne(db, sql: "SELECT COUNT(*) AS n, COALESCE(MAX(bseq), 0) AS last, COALESCE(SUM(record_count), 0) AS records FROM batch WHERE device = ?", arguments: [id]) {
                status.batches = row["n"]
                status.lastBseq = row["last"]
                status.records = row["records"]
            }
            if let state = try Row.fetchOne(db, sql: "SELECT last_batch_at_ms, heartbeat_ms FROM device_state WHERE device = ?", arguments: [id]) {
                let last: Int64 = state["last_batch_at_ms"]
                status.lastBatchAtMs = last
                if let heartbeat: Int64 = state["heartbeat_ms"], nowMs - last > 2 * heartbeat { status.silentForMs = nowMs - last }
            }
            status.incidents = try Int64.fetchOne(db, sql: "SELECT COUNT(*) FROM incident WHERE device = ?", arguments: [id]) ?? 0
            return status
        }
    }

    public func keys(device: String) throws(BankError) -> [EnrolledDevice] {
        try read { db in try Row.fetchAll(db, sql: Self.deviceKeyColumns + " WHERE k.device = ? ORDER BY k.from_bseq", arguments: [device]).map(Self.device) }
    }

    static func device(_ row: Row) throws -> EnrolledDevice {
        let jwkText: String = row["jwk"]
        let key = try PublicJWK(json: try CanonicalJSON.decode(Array(jwkText.utf8)))
        return EnrolledDevice(
            id: row["id"], key: key, enrolledAtMs: row["enrolled_at_ms"], revokedAtMs: row["revoked_at_ms"], keyFromBseq: row["from_bseq"],
            keyUntilBseq: row["until_bseq"])
    }

    public func accept(
        _ batch: VerifiedBatch, records: [EvidenceRecord], device: EnrolledDevice, nowMs: Int64, signReceipt: @escaping @Sendable (Receipt) -> String
    ) throws(BankError) -> IngestResult {
        let alerts = alerts
        return try committer.runBlocking { db in try Self.accept(db, batch, records: records, device: device, nowMs: nowMs, alerts: alerts, signReceipt: signReceipt) }.get()
    }

    public func accept(
        _ batch: VerifiedBatch, records: [EvidenceRecord], device: EnrolledDevice, nowMs: Int64, signReceipt: @escaping @Sendable (Receipt) -> String
    ) async throws(BankError) -> IngestResult {
        let alerts = alerts
        return try await committer.run { db in try Self.accept(db, batch, records: records, device: device, nowMs: nowMs, alerts: alerts, signReceipt: signReceipt) }.get()
    }

    deinit { committer.stop() }

    /// One upload's part of a (group) transaction. A refusal that must leave a trace (a fork) is
    /// returned, not thrown, so the incident row commits; a thrown refusal rolls back this upload's
    /// savepoint alone.
    static func accept(
        _ db: Database, _ batch: VerifiedBatch, records: [EvidenceRecord], device: EnrolledDevice, nowMs: Int64, alerts: Bool = false,
        signReceipt: (Receipt) -> String
    ) throws -> Result<IngestResult, BankError> {
        let p = batch.payload
        do {
            let head = try Self.fetchRow(db, "SELECT bseq, hash FROM batch WHERE device = ? ORDER BY bseq DESC LIMIT 1", arguments: [device.id])
                .map { ChainHead(bseq: $0["bseq"], signingInputHash: $0["hash"]) }
            let acceptedHash = try Self.fetchString(db, "SELECT hash FROM batch WHERE device = ? AND bseq = ?", arguments: [device.id, p.bseq])
            let verdict = ChainRule.classify(bseq: p.bseq, prev: p.prev, signingInputHash: batch.signingInputHash, head: head, acceptedHash: acceptedHash)
            // The signing key must be the one in force at this bseq (re-read here: a rotation may have
            // committed since the caller looked the key up).
            if let row = try Self.fetchRow(db, "SELECT from_bseq, until_bseq FROM device_key WHERE kid = ?", arguments: [device.kid]) {
                let from: Int64 = row["from_bseq"]
                let until: Int64? = row["until_bseq"]
                if let until, p.bseq > until {
                    throw BankError(BankError.keyRetired, status: 401, "batch \(p.bseq) of \(device.id) is signed by key \(device.kid), which the device retired in batch \(until)")
                }
                if p.bseq < from {
                    throw BankError(BankError.keyRetired, status: 401, "batch \(p.bseq) of \(device.id) is signed by key \(device.kid), which is in force only from batch \(from)")
                }
            }
            if verdict == .duplicate {
                let receipt = try Self.fetchString(db, "SELECT receipt FROM batch WHERE device = ? AND bseq = ?", arguments: [device.id, p.bseq]) ?? ""
                return .success(IngestResult(verdict: .duplicate, device: device.id, bseq: p.bseq, receipt: receipt))
            }
            if let refusal = BankError.chain(verdict, device: device.id, bseq: p.bseq, prev: p.prev) {
                guard case .fork(let bseq) = verdict else { throw refusal }
                // Keep the second signed history itself: with the accepted batch it is the proof.
                try Self.execute(db, "INSERT INTO incident(device, kind, bseq, detail, evidence, at_ms) VALUES(?, 'fork', ?, ?, ?, ?)",
                    arguments: [device.id, bseq, batch.signingInputHash, String(decoding: BatchFile.encode(token: batch.token, records: batch.recordBytes), as: UTF8.self), nowMs])
                if alerts {
                    try queueAlert(db, kind: "fork", device: device.id, key: "bseq-\(bseq)-\(batch.signingInputHash)", body: BankAlert.forkBody(device: device.id, bseq: bseq, refusal: refusal), nowMs: nowMs)
                }
                return .failure(refusal)
            }
            // Records: strictly increasing rseq, after everything already held.
            let lastRseq = try Self.fetchInt(db, "SELECT MAX(rseq) FROM record WHERE device = ?", arguments: [device.id]) ?? 0
            var previous = lastRseq
            for r in records {
                guard r.stamp.rseq > previous else {
                    throw BankError(BankError.recordOrder, status: 409, "record rseq \(r.stamp.rseq) in batch \(p.bseq) does not follow rseq \(previous)")
                }
                previous = r.stamp.rseq
            }
            var missing: ClosedRange<Int64>?
            if let first = records.first?.stamp.rseq, first > lastRseq + 1 {
                missing = (lastRseq + 1)...(first - 1)
                try Self.execute(db, "INSERT INTO incident(device, kind, bseq, detail, at_ms) VALUES(?, 'record-gap', ?, ?, ?)",
                    arguments: [device.id, p.bseq, "rseq \(lastRseq + 1)-\(first - 1) missing", nowMs])
                if alerts, let missing {
                    try queueAlert(db, kind: "record-gap", device: device.id, key: "bseq-\(p.bseq)", body: BankAlert.recordGapBody(device: device.id, bseq: p.bseq, missing: missing), nowMs: nowMs)
                }
            }
            // A key rotation: the signing key's range ends here, the new key's starts with the next batch.
            var rotatedTo: String?
            for case .keyRotation(let rotation) in records {
                let newKid = rotation.newKey.thumbprint
                if let holder = try Self.fetchString(db, "SELECT device FROM device_key WHERE kid = ?", arguments: [newKid]) {
                    throw BankError(BankError.keyRotation, status: 409, "batch \(p.bseq) of \(device.id) rotates to key \(newKid), which \(holder == device.id ? "this device already had" : "belongs to device \(holder)")")
                }
                guard rotatedTo == nil else {
                    throw BankError(BankError.keyRotation, status: 400, "batch \(p.bseq) of \(device.id) holds two key rotations; one batch may rotate once")
                }
                try Self.execute(db, "UPDATE device_key SET until_bseq = ? WHERE kid = ?", arguments: [p.bseq, device.kid])
                try Self.execute(db, "INSERT INTO device_key(kid, device, jwk, from_bseq, until_bseq) VALUES(?, ?, ?, ?, NULL)",
                    arguments: [newKid, device.id, CanonicalJSON.string(rotation.newKey.json), p.bseq + 1])
                rotatedTo = newKid
            }
            // The bank's own log: every accepted batch, in acceptance order.
            var log = try Self.loadLog(db)
            let logIndex = log.append(leaf: Hex.decode(batch.signingInputHash) ?? [])
            try Self.saveLog(db, log)
            let deviceLogSize = (head?.bseq ?? 0) + 1
            let receipt = signReceipt(
                Receipt(
                    device: device.id, bseq: p.bseq, batch: batch.signingInputHash, deviceLogSize: deviceLogSize, logIndex: logIndex,
                    logSize: log.size, logRoot: Hex.encode(log.root), acceptedWallMs: nowMs))
            try Self.execute(db, "INSERT INTO batch(device, bseq, hash, prev, token, record_count, received_at_ms, receipt, log_idx) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?)",
                arguments: [device.id, p.bseq, batch.signingInputHash, p.prev, batch.token, records.count, nowMs, receipt, logIndex])
            var heartbeatMs: Int64?
            for (record, line) in zip(records, batch.recordBytes) {
                try Self.execute(db, "INSERT INTO record(device, rseq, bseq, kind, body, wall_ms, channel) VALUES(?, ?, ?, ?, ?, ?, ?)",
                    arguments: [device.id, record.stamp.rseq, p.bseq, record.kind, String(decoding: line, as: UTF8.self), record.stamp.wallMs, record.queryChannel])
                if case .event(let e) = record {
                    try Self.store(e, device: device.id, bseq: p.bseq, db: db)
                    if alerts, e.severity != "record" {
                        try queueAlert(db, kind: "event", device: device.id, key: "\(e.eventId)-\(e.phase.rawValue)", body: BankAlert.eventBody(device: device.id, event: e, bseq: p.bseq), nowMs: nowMs)
                    }
                }
                if case .heartbeat(let h) = record { heartbeatMs = h.intervalMs }
            }
            try Self.execute(db, """
                    INSERT INTO device_state(device, last_batch_at_ms, last_bseq, heartbeat_ms) VALUES(?, ?, ?, ?)
                    ON CONFLICT(device) DO UPDATE SET last_batch_at_ms = excluded.last_batch_at_ms, last_bseq = excluded.last_bseq,
                        heartbeat_ms = COALESCE(excluded.heartbeat_ms, device_state.heartbeat_ms)
                    """,
                arguments: [device.id, nowMs, p.bseq, heartbeatMs])
            return .success(IngestResult(verdict: .accepted, device: device.id, bseq: p.bseq, receipt: receipt, missingRecords: missing, rotatedTo: rotatedTo))
        }
    }

    // Prepared once per connection: an upload runs some 70 statements, most of them the same.
    static func execute(_ db: Database, _ sql: String, arguments: StatementArguments) throws {
        try db.cachedStatement(sql: sql).execute(arguments: arguments)
    }

    static func fetchRow(_ db: Database, _ sql: String, arguments: StatementArguments) throws -> Row? {
        try Row.fetchOne(db.cachedStatement(sql: sql), arguments: arguments)
    }

    static func fetchString(_ db: Database, _ sql: String, arguments: StatementArguments) throws -> String? {
        try String.fetchOne(db.cachedStatement(sql: sql), arguments: arguments)
    }

    static func fetchInt(_ db: Database, _ sql: String, arguments: StatementArguments) throws -> Int64? {
        try Int64.fetchOne(db.cachedStatement(sql: sql), arguments: arguments)
    }

    static func store(_ e: EventRecord, device: String, bseq: Int64, db: Database) throws {
        switch e.phase {
        case .start:
            try db.execute(
                sql: """
                    INSERT INTO event(device, event_id, rule, channel, severity, start_wall_ms, start_mono_ms, boot, end_wall_ms, duration_ms, status, explanation, bseq)
                    VALUES(?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, 'ongoing', ?, ?)
                    ON CONFLICT(device, event_id) DO NOTHING
                    """,
                arguments: [device, e.eventId, e.rule, e.channel, e.severity, e.startWallMs, e.startMonoMs, e.stamp.boot, e.durationMs, e.explanation, bseq])
        case .end:
            try db.execute(
                sql: """
                    INSERT INTO event(device, event_id, rule, channel, severity, start_wall_ms, start_mono_ms, boot, end_wall_ms, duration_ms, status, explanation, bseq)
                    VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'ended', ?, ?)
                    ON CONFLICT(device, event_id) DO UPDATE SET end_wall_ms = excluded.end_wall_ms, duration_ms = excluded.duration_ms,
                        status = 'ended', explanation = excluded.explanation
                    """,
                arguments: [device, e.eventId, e.rule, e.channel, e.severity, e.startWallMs, e.startMonoMs, e.stamp.boot, e.endWallMs, e.durationMs, e.explanation, bseq])
        }
    }

    public func events(device: String?) throws(BankError) -> [StoredEvent] {
        try read { db in
            let rows =
                if let device {
                    try Row.fetchAll(db, sql: "SELECT * FROM event WHERE device = ? ORDER BY start_wall_ms", arguments: [device])
                } else {
                    try Row.fetchAll(db, sql: "SELECT * FROM event ORDER BY device, start_wall_ms")
                }
            return rows.map {
                StoredEvent(
                    device: $0["device"], eventId: $0["event_id"], rule: $0["rule"], channel: $0["channel"], severity: $0["severity"],
                    startWallMs: $0["start_wall_ms"], endWallMs: $0["end_wall_ms"], durationMs: $0["duration_ms"], status: $0["status"],
                    explanation: $0["explanation"], bseq: $0["bseq"])
            }
        }
    }

    public func batches(device: String) throws(BankError) -> [StoredBatch] {
        try read { db in
            try Row.fetchAll(db, sql: "SELECT device, bseq, hash, token, received_at_ms, receipt FROM batch WHERE device = ? ORDER BY bseq", arguments: [device]).map {
                let bseq: Int64 = $0["bseq"]
                return StoredBatch(
                    device: $0["device"], bseq: bseq, hash: $0["hash"], token: $0["token"], records: try Self.recordLines(db, device: device, bseq: bseq),
                    receivedAtMs: $0["received_at_ms"], receipt: $0["receipt"])
            }
        }
    }

    static func recordLines(_ db: Database, device: String, bseq: Int64) throws -> [[UInt8]] {
        try String.fetchAll(db, sql: "SELECT body FROM record WHERE device = ? AND bseq = ? ORDER BY rseq", arguments: [device, bseq]).map { Array($0.utf8) }
    }

    public func incidents(device: String?, nowMs: Int64) throws(BankError) -> [Incident] {
        let stored = try read { db in
            let rows =
                if let device {
                    try Row.fetchAll(db, sql: "SELECT * FROM incident WHERE device = ? ORDER BY id", arguments: [device])
                } else {
                    try Row.fetchAll(db, sql: "SELECT * FROM incident ORDER BY id")
                }
            return rows.map {
                Incident(device: $0["device"], kind: $0["kind"], bseq: $0["bseq"], detail: $0["detail"], evidence: $0["evidence"], atMs: $0["at_ms"])
            }
        }
        let silent = try silentDevices(nowMs: nowMs).filter { device == nil || $0.device == device }.map { $0.incident(nowMs: nowMs) }
        return stored + silent
    }

    public func silentDevices(nowMs: Int64) throws(BankError) -> [Silence] {
        try read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM device_state WHERE heartbeat_ms IS NOT NULL AND ? - last_batch_at_ms > 2 * heartbeat_ms ORDER BY device", arguments: [nowMs]).map {
                let last: Int64 = $0["last_batch_at_ms"]
                return Silence(device: $0["device"], lastBatchAtMs: last, lastBseq: $0["last_bseq"], heartbeatMs: $0["heartbeat_ms"], silentForMs: nowMs - last)
            }
        }
    }

    public func inclusionProof(device: String, rseq: Int64) throws(BankError) -> InclusionProof {
        let found = try read { db -> (token: String, lines: [[UInt8]], index: Int, receipt: String, kid: String)? in
            guard let bseq = try Int64.fetchOne(db, sql: "SELECT bseq FROM record WHERE device = ? AND rseq = ?", arguments: [device, rseq]),
                let row = try Row.fetchOne(db, sql: "SELECT token, receipt FROM batch WHERE device = ? AND bseq = ?", arguments: [device, bseq])
            else { return nil }
            let index = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM record WHERE device = ? AND bseq = ? AND rseq < ?", arguments: [device, bseq, rseq]) ?? 0
            let token: String = row["token"]
            let kid = (try? JWS.parse(token).header["kid"]?.stringValue) ?? nil
            return (token, try Self.recordLines(db, device: device, bseq: bseq), index, row["receipt"], kid ?? "")
        }
        guard let found else { throw BankError(BankError.notFound, status: 404, "the bank holds no record \(rseq) of device \(device)") }
        guard let key = try self.device(kid: found.kid)?.key else {
            throw BankError(BankError.store, status: 500, "batch of record \(rseq) is signed by key \(found.kid), which the bank does not hold")
        }
        return InclusionProof(
            batch: found.token, index: found.index, record: found.lines[found.index], path: Merkle.auditPath(index: found.index, leaves: found.lines),
            deviceKey: key, receipt: found.receipt)
    }

    /// The bank's log size and root now.
    public func logHead() throws(BankError) -> (size: Int64, root: String) {
        try read { db in
            let log = try Self.loadLog(db)
            return (log.size, Hex.encode(log.root))
        }
    }

    static func loadLog(_ db: Database) throws -> MerkleLog {
        guard let row = try Row.fetchOne(db, sql: "SELECT size, frontier FROM bank_log WHERE id = 1") else { return MerkleLog() }
        let text: String = row["frontier"]
        let frontier = text.isEmpty ? [] : text.split(separator: ",").map { Hex.decode(String($0)) ?? [] }
        return try MerkleLog(size: row["size"], frontier: frontier)
    }

    static func saveLog(_ db: Database, _ log: MerkleLog) throws {
        try db.execute(
            sql: "INSERT INTO bank_log(id, size, frontier) VALUES(1, ?, ?) ON CONFLICT(id) DO UPDATE SET size = excluded.size, frontier = excluded.frontier",
            arguments: [log.size, log.frontier.map(Hex.encode).joined(separator: ",")])
    }

    public func records(device: String, kind: String, channel: String?, fromMs: Int64?, untilMs: Int64?, afterRseq: Int64?, limit: Int) throws(BankError) -> [StoredRecord] {
        try read { db in
            var sql = "SELECT rseq, bseq, body FROM record WHERE device = ? AND kind = ?"
            var arguments: StatementArguments = [device, kind]
            if let channel {
                sql += " AND channel = ?"
                _ = arguments.append(contentsOf: [channel])
            }
            if let fromMs {
                sql += " AND wall_ms >= ?"
                _ = arguments.append(contentsOf: [fromMs])
            }
            if let untilMs {
                sql += " AND wall_ms < ?"
                _ = arguments.append(contentsOf: [untilMs])
            }
            if let afterRseq {
                sql += " AND rseq > ?"
                _ = arguments.append(contentsOf: [afterRseq])
            }
            sql += " ORDER BY rseq LIMIT ?"
            _ = arguments.append(contentsOf: [limit])
            return try Row.fetchAll(db, sql: sql, arguments: arguments).map { row in
                let body: String = row["body"]
                return StoredRecord(rseq: row["rseq"], bseq: row["bseq"], line: Array(body.utf8))
            }
        }
    }

    public func recordWallMs(device: String, rseq: Int64) throws(BankError) -> Int64? {
        try read { db in try Int64.fetchOne(db, sql: "SELECT wall_ms FROM record WHERE device = ? AND rseq = ?", arguments: [device, rseq]) }
    }

    /// Number of stored records of a device (for tests and `verify`).
    public func recordCount(device: String) throws(BankError) -> Int {
        try read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM record WHERE device = ?", arguments: [device]) ?? 0 }
    }

    func write<T>(_ body: (Database) throws -> T) throws(BankError) -> T {
        do { return try pool.write(body) } catch let e as BankError { throw e } catch {
            throw BankError(BankError.store, status: 500, "bank database \(path): \(error)")
        }
    }

    func read<T>(_ body: (Database) throws -> T) throws(BankError) -> T {
        do { return try pool.read(body) } catch let e as BankError { throw e } catch {
            throw BankError(BankError.store, status: 500, "bank database \(path): \(error)")
        }
    }
}

enum BankSchema {
    static var migrator: DatabaseMigrator {
        var m = DatabaseMigrator()
        m.registerMigration("v1: devices, batches, records, events") { db in
            try db.execute(sql: """
                CREATE TABLE device (
                    id TEXT PRIMARY KEY NOT NULL,
                    kid TEXT NOT NULL UNIQUE,
                    jwk TEXT NOT NULL,
                    enrolled_at_ms INTEGER NOT NULL,
                    revoked_at_ms INTEGER
                ) STRICT;
                CREATE TABLE batch (
                    device TEXT NOT NULL REFERENCES device(id),
                    bseq INTEGER NOT NULL,
                    hash TEXT NOT NULL,
                    prev TEXT NOT NULL,
                    token TEXT NOT NULL,
                    record_count INTEGER NOT NULL,
                    received_at_ms INTEGER NOT NULL,
                    receipt TEXT NOT NULL,
                    PRIMARY KEY (device, bseq)
                ) STRICT;
                CREATE TABLE record (
                    device TEXT NOT NULL,
                    rseq INTEGER NOT NULL,
                    bseq INTEGER NOT NULL,
                    kind TEXT NOT NULL,
                    body TEXT NOT NULL,
                    PRIMARY KEY (device, rseq)
                ) STRICT;
                CREATE TABLE event (
                    device TEXT NOT NULL,
                    event_id TEXT NOT NULL,
                    rule TEXT NOT NULL,
                    channel TEXT NOT NULL,
                    severity TEXT NOT NULL,
                    start_wall_ms INTEGER NOT NULL,
                    start_mono_ms INTEGER NOT NULL,
                    boot INTEGER NOT NULL,
                    end_wall_ms INTEGER,
                    duration_ms INTEGER NOT NULL,
                    status TEXT NOT NULL,
                    explanation TEXT NOT NULL,
                    bseq INTEGER NOT NULL,
                    PRIMARY KEY (device, event_id)
                ) STRICT;
                CREATE TABLE incident (
                    id INTEGER PRIMARY KEY,
                    device TEXT NOT NULL,
                    kind TEXT NOT NULL,
                    bseq INTEGER NOT NULL,
                    detail TEXT NOT NULL,
                    evidence TEXT,
                    at_ms INTEGER NOT NULL
                ) STRICT;
                """)
        }
        m.registerMigration("v2: key history, bank log, heartbeat state") { db in
            try db.execute(sql: """
                CREATE TABLE device_key (
                    kid TEXT PRIMARY KEY NOT NULL,
                    device TEXT NOT NULL REFERENCES device(id),
                    jwk TEXT NOT NULL,
                    from_bseq INTEGER NOT NULL,
                    until_bseq INTEGER
                ) STRICT;
                INSERT INTO device_key(kid, device, jwk, from_bseq, until_bseq) SELECT kid, id, jwk, 1, NULL FROM device;
                CREATE TABLE bank_log (id INTEGER PRIMARY KEY CHECK (id = 1), size INTEGER NOT NULL, frontier TEXT NOT NULL) STRICT;
                ALTER TABLE batch ADD COLUMN log_idx INTEGER;
                CREATE TABLE device_state (
                    device TEXT PRIMARY KEY NOT NULL REFERENCES device(id),
                    last_batch_at_ms INTEGER NOT NULL,
                    last_bseq INTEGER NOT NULL,
                    heartbeat_ms INTEGER
                ) STRICT;
                """)
        }
        m.registerMigration("v3: alert queue") { db in
            try db.execute(sql: """
                CREATE TABLE alert (
                    id INTEGER PRIMARY KEY,
                    kind TEXT NOT NULL,
                    device TEXT NOT NULL,
                    key TEXT NOT NULL,
                    body TEXT NOT NULL,
                    created_at_ms INTEGER NOT NULL,
                    attempts INTEGER NOT NULL DEFAULT 0,
                    next_at_ms INTEGER NOT NULL,
                    delivered_at_ms INTEGER,
                    last_error TEXT,
                    UNIQUE (kind, device, key)
                ) STRICT;
                CREATE INDEX alert_due ON alert(next_at_ms) WHERE delivered_at_ms IS NULL;
                """)
        }
        m.registerMigration("v4: record wall time and channel, for summaries and gaps") { db in
            // Records stored before this are filled in from their own line: [kind, rseq, boot, mono, wall, tq, …];
            // a summary's channel is its 7th field, a gap's its 8th.
            try db.execute(sql: """
                ALTER TABLE record ADD COLUMN wall_ms INTEGER;
                ALTER TABLE record ADD COLUMN channel TEXT;
                UPDATE record SET wall_ms = json_extract(body, '$[4]'),
                    channel = CASE kind WHEN 'sum' THEN json_extract(body, '$[6]') WHEN 'gap' THEN json_extract(body, '$[7]') END;
                CREATE INDEX record_kind_time ON record(device, kind, wall_ms);
                """)
        }
        return m
    }
}
