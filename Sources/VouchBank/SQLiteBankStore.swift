import Foundation
import GRDB
import VouchEvidence

/// ``BankStore`` on a SQLite file (the embedded default for a pilot on one box).
///
/// Invariants:
/// - Per device, stored `bseq` values are gap-free from 1 and each links to the previous by `prev`.
/// - A stored batch and its records never change; a resend of the same batch changes nothing.
/// - Only ``BankSchema`` changes the schema; shipped migrations never change.
public final class SQLiteBankStore: BankStore {
    let pool: DatabasePool
    public let path: String

    public init(path: String) throws(BankError) {
        self.path = path
        var configuration = Configuration()
        configuration.prepareDatabase { db in try db.execute(sql: "PRAGMA synchronous = FULL") }
        configuration.busyMode = .timeout(10)
        do {
            pool = try DatabasePool(path: path, configuration: configuration)
            try BankSchema.migrator.migrate(pool)
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
            try db.execute(
                sql: "INSERT INTO device(id, kid, jwk, enrolled_at_ms) VALUES(?, ?, ?, ?)",
                arguments: [device.id, device.kid, CanonicalJSON.string(device.key.json), device.enrolledAtMs])
        }
    }

    public func device(kid: String) throws(BankError) -> EnrolledDevice? {
        try read { db in try Row.fetchOne(db, sql: "SELECT * FROM device WHERE kid = ?", arguments: [kid]).map(Self.device) }
    }

    public func devices() throws(BankError) -> [EnrolledDevice] {
        try read { db in try Row.fetchAll(db, sql: "SELECT * FROM device ORDER BY id").map(Self.device) }
    }

    static func device(_ row: Row) throws -> EnrolledDevice {
        let jwkText: String = row["jwk"]
        let key = try PublicJWK(json: try CanonicalJSON.decode(Array(jwkText.utf8)))
        return EnrolledDevice(id: row["id"], key: key, enrolledAtMs: row["enrolled_at_ms"], revokedAtMs: row["revoked_at_ms"])
    }

    public func accept(_ batch: VerifiedBatch, records: [EvidenceRecord], device: EnrolledDevice, nowMs: Int64, signReceipt: (Receipt) -> String) throws(BankError) -> IngestResult {
        let p = batch.payload
        // A refusal that must leave a trace (a fork) is returned, not thrown, so the incident row
        // commits; throwing inside the transaction would roll it back with everything else.
        let outcome = try write { db -> Result<IngestResult, BankError> in
            let head = try Row.fetchOne(db, sql: "SELECT bseq, hash FROM batch WHERE device = ? ORDER BY bseq DESC LIMIT 1", arguments: [device.id])
                .map { ChainHead(bseq: $0["bseq"], signingInputHash: $0["hash"]) }
            let acceptedHash = try String.fetchOne(db, sql: "SELECT hash FROM batch WHERE device = ? AND bseq = ?", arguments: [device.id, p.bseq])
            let verdict = ChainRule.classify(bseq: p.bseq, prev: p.prev, signingInputHash: batch.signingInputHash, head: head, acceptedHash: acceptedHash)
            if verdict == .duplicate {
                let receipt = try String.fetchOne(db, sql: "SELECT receipt FROM batch WHERE device = ? AND bseq = ?", arguments: [device.id, p.bseq]) ?? ""
                return .success(IngestResult(verdict: .duplicate, device: device.id, bseq: p.bseq, receipt: receipt))
            }
            if let refusal = BankError.chain(verdict, device: device.id, bseq: p.bseq, prev: p.prev) {
                guard case .fork(let bseq) = verdict else { throw refusal }
                // Keep the second signed history itself: with the accepted batch it is the proof.
                try db.execute(
                    sql: "INSERT INTO incident(device, kind, bseq, detail, evidence, at_ms) VALUES(?, 'fork', ?, ?, ?, ?)",
                    arguments: [device.id, bseq, batch.signingInputHash, batch.token, nowMs])
                return .failure(refusal)
            }
            // Records: strictly increasing rseq, after everything already held.
            let lastRseq = try Int64.fetchOne(db, sql: "SELECT MAX(rseq) FROM record WHERE device = ?", arguments: [device.id]) ?? 0
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
                try db.execute(
                    sql: "INSERT INTO incident(device, kind, bseq, detail, at_ms) VALUES(?, 'record-gap', ?, ?, ?)",
                    arguments: [device.id, p.bseq, "rseq \(lastRseq + 1)-\(first - 1) missing", nowMs])
            }
            let logSize = (head?.bseq ?? 0) + 1
            let receipt = signReceipt(Receipt(device: device.id, bseq: p.bseq, batch: batch.signingInputHash, deviceLogSize: logSize, acceptedWallMs: nowMs))
            try db.execute(
                sql: "INSERT INTO batch(device, bseq, hash, prev, token, record_count, received_at_ms, receipt) VALUES(?, ?, ?, ?, ?, ?, ?, ?)",
                arguments: [device.id, p.bseq, batch.signingInputHash, p.prev, batch.token, records.count, nowMs, receipt])
            for (record, json) in zip(records, p.records) {
                try db.execute(
                    sql: "INSERT INTO record(device, rseq, bseq, kind, body) VALUES(?, ?, ?, ?, ?)",
                    arguments: [device.id, record.stamp.rseq, p.bseq, record.kind, CanonicalJSON.string(json)])
                if case .event(let e) = record { try Self.store(e, device: device.id, bseq: p.bseq, db: db) }
            }
            return .success(IngestResult(verdict: .accepted, device: device.id, bseq: p.bseq, receipt: receipt, missingRecords: missing))
        }
        return try outcome.get()
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
            try Row.fetchAll(db, sql: "SELECT device, bseq, hash, token, received_at_ms FROM batch WHERE device = ? ORDER BY bseq", arguments: [device]).map {
                StoredBatch(device: $0["device"], bseq: $0["bseq"], hash: $0["hash"], token: $0["token"], receivedAtMs: $0["received_at_ms"])
            }
        }
    }

    public func incidents(device: String?) throws(BankError) -> [Incident] {
        try read { db in
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
    }

    /// Number of stored records of a device (for tests and `verify`).
    public func recordCount(device: String) throws(BankError) -> Int {
        try read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM record WHERE device = ?", arguments: [device]) ?? 0 }
    }

    private func write<T>(_ body: (Database) throws -> T) throws(BankError) -> T {
        do { return try pool.write(body) } catch let e as BankError { throw e } catch {
            throw BankError(BankError.store, status: 500, "bank database \(path): \(error)")
        }
    }

    private func read<T>(_ body: (Database) throws -> T) throws(BankError) -> T {
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
        return m
    }
}
