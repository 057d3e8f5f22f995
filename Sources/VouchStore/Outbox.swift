import Foundation
import GRDB
import Synchronization
import VouchCore
import VouchEvidence

/// The gateway's outbox: every record the agent accepts, and the signed batches made from them.
///
/// Invariants (each one a reason this type exists):
/// 1. A record is durable (committed with `synchronous=FULL` in WAL mode) before `append` returns;
///    nothing is sent that was not first stored.
/// 2. `rseq` is assigned here, gap-free from 1, in append order, and never reused. A stored record
///    leaves before it is sealed only through the disk budget (8), which accounts for it in a gap.
/// 3. A record row never changes after insert, except `bseq`, set once when it is sealed.
/// 4. Sealing assigns the next `bseq`, links `prev` to the previous batch and stores the signed token
///    in the same transaction that claims the records: a batch exists whole or not at all, and its
///    bytes never change afterwards (every resend is byte-identical).
/// 5. A batch is marked delivered only with the bank's receipt.
/// 6. Pruning removes only delivered batches (and their records) whose receipt is older than the
///    retention, and never the newest batch: `bseq`, `prev`, `rseq` and the last receipt hash carry on
///    from the rows that remain (plus `last_rseq` in `meta`, so an `rseq` is never reused).
/// 7. Only ``OutboxSchema`` changes the schema, through migrations that never change once shipped.
/// 8. With a ``DiskBudget``, unsealed readings (raw samples, then summaries merged into coarser ones)
///    are degraded when the outbox outgrows it, in the same transaction as the append that crossed it
///    and with a signed `disk_budget` gap per channel saying what went; nothing else is ever degraded,
///    and their `rseq`s are never reused (see OutboxBudget.swift).
public final class Outbox: Sendable {
    public let path: String
    private let pool: DatabasePool

    struct BudgetState {
        var budget: DiskBudget
        var onDegrade: @Sendable (Degradation) -> Void
        /// Bytes in use after a pass that could not get under the budget: the next pass waits until the
        /// outbox has grown by a hundredth of the budget, instead of rescanning at every append.
        var stillOverAt: Int64?
    }
    private let budgetState = Mutex<BudgetState?>(nil)

    /// Keeps the outbox within `budget` from the next append on; `onDegrade` hears of every pass.
    public func setBudget(_ budget: DiskBudget?, onDegrade: @escaping @Sendable (Degradation) -> Void = { _ in }) {
        budgetState.withLock { $0 = budget.map { BudgetState(budget: $0, onDegrade: onDegrade) } }
    }

    /// Opens (and migrates) the outbox for the agent. `readOnly` opens an existing outbox for the CLI:
    /// no migration, no writes, and (WAL) no blocking of the running agent.
    public init(path: String, readOnly: Bool = false) throws(StoreError) {
        self.path = path
        var configuration = Configuration()
        configuration.readonly = readOnly
        configuration.prepareDatabase { db in
            // FULL: an acknowledged record survives a power cut (NORMAL lost rows in 45 of 50 tests).
            try db.execute(sql: "PRAGMA synchronous = FULL")
            // A checkpointed WAL is cut back to 4 MB: the disk budget counts database pages, and the WAL
            // beside them stays small (a degradation pass writes many pages in one transaction).
            try db.execute(sql: "PRAGMA journal_size_limit = 4194304")
        }
        configuration.busyMode = .timeout(5)
        if readOnly && !FileManager.default.fileExists(atPath: path) {
            throw StoreError(.open, "no outbox at \(path): has the agent run with this config?")
        }
        do {
            let directory = (path as NSString).deletingLastPathComponent
            if !readOnly && !directory.isEmpty { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) }
            pool = try DatabasePool(path: path, configuration: configuration)
            if !readOnly {
                // GRDB's DatabasePool turns WAL on after prepareDatabase ran, and sets
                // `synchronous = NORMAL` on its writer as it does: the one connection that commits
                // must be FULL again, or a power cut loses acknowledged commits.
                try pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA synchronous = FULL") }
            }
            if readOnly {
                guard try pool.read({ try OutboxSchema.migrator.hasCompletedMigrations($0) }) else {
                    throw StoreError(.open, "the outbox at \(path) has a schema this version does not know; use the agent's own vouch")
                }
            } else {
                try OutboxSchema.migrator.migrate(pool)
            }
        } catch let error as StoreError {
            throw error
        } catch {
            throw StoreError(.open, "cannot open the outbox at \(path): \(error)")
        }
    }

    /// Opens the agent's outbox, checking it first (`PRAGMA quick_check`). A database that cannot be
    /// opened or fails the check is moved aside — kept for inspection, never read again as evidence —
    /// and a fresh outbox is seeded from the chain head (next `bseq`/`prev` after the last delivered
    /// batch, `rseq` after the highest assigned, boot count). The caller records the recovery in the chain.
    public static func openOrRecover(path: String) throws(StoreError) -> (Outbox, OutboxRecovery?) {
        var reason: String
        do {
            let outbox = try Outbox(path: path)
            let check = try outbox.read("check the outbox") { db in try String.fetchAll(db, sql: "PRAGMA quick_check") }
            if check == ["ok"] { return (outbox, nil) }
            reason = "quick_check: " + check.prefix(3).joined(separator: "; ")
        } catch {
            guard FileManager.default.fileExists(atPath: path) else { throw error }
            reason = error.message
        }
        let movedTo = path + ".corrupt-\(nowMs())"
        for suffix in ["", "-wal", "-shm"] where FileManager.default.fileExists(atPath: path + suffix) {
            guard rename(path + suffix, movedTo + suffix) == 0 else {
                throw StoreError(.io, "the outbox \(path) is unusable (\(reason)) and cannot be moved aside: \(String(cString: strerror(errno)))")
            }
        }
        let head = OutboxHead.read(outbox: path)
        let fresh = try Outbox(path: path)
        if let head {
            try fresh.write("seed the fresh outbox from the chain head") { db in
                try setMeta(db, "anchor_bseq", head.bseq)
                try setMeta(db, "anchor_hash", head.hash)
                if let rcpt = head.receiptHash { try setMeta(db, "anchor_rcpt", rcpt) }
                try setMeta(db, "last_rseq", head.lastRseq)
                try setMeta(db, "boot_count", head.bootCount)
            }
        }
        return (fresh, OutboxRecovery(movedTo: movedTo, reason: reason, head: head))
    }

    /// Counts this start of the agent and returns the new boot count (1 on a fresh outbox).
    public func beginBoot(bootID: String) throws(StoreError) -> Int64 {
        let (next, head) = try write("record the agent start") { db -> (Int64, OutboxHead?) in
            let current = try Int64.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'boot_count'") ?? 0
            let next = current + 1
            try Self.setMeta(db, "boot_count", next)
            try Self.setMeta(db, "boot_id", bootID)
            try db.execute(sql: "DELETE FROM meta WHERE key = 'clean_stop_wall_ms'")
            return (next, try Self.deliveredHead(db))
        }
        if let head { try head.write(outbox: path) }
        return next
    }

    /// What the outbox knows of the agent's previous run, read before ``beginBoot(bootID:)``.
    public struct PreviousRun: Sendable, Equatable {
        public var bootCount: Int64
        public var bootID: String?
        /// The last record that run stored.
        public var lastRecord: EvidenceRecord?
        /// Wall time of a clean shutdown, nil when it ended without one (crash, kill, power loss).
        public var cleanStopWallMs: Int64?
        /// SHA-256 of the configuration it ran with.
        public var configSha256: String?
    }

    /// nil on a fresh outbox.
    public func previousRun() throws(StoreError) -> PreviousRun? {
        try read("read the previous run") { db -> PreviousRun? in
            guard let boot = try Int64.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'boot_count'") else { return nil }
            var last: EvidenceRecord?
            if let row = try Row.fetchOne(db, sql: "SELECT rseq, body FROM record ORDER BY rseq DESC LIMIT 1") {
                last = try Self.decode(row)
            }
            return PreviousRun(
                bootCount: boot, bootID: try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'boot_id'"), lastRecord: last,
                cleanStopWallMs: try Int64.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'clean_stop_wall_ms'"),
                configSha256: try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'config_sha256'"))
        }
    }

    /// Remembers the configuration this run uses (compared at the next start).
    public func noteConfig(sha256: String) throws(StoreError) {
        try write("note the configuration hash") { db in try Self.setMeta(db, "config_sha256", sha256) }
    }

    /// Marks that this run stopped cleanly: everything accepted was stored and sealing was attempted.
    public func noteCleanStop(wallMs: Int64) throws(StoreError) {
        try write("note a clean stop") { db in try Self.setMeta(db, "clean_stop_wall_ms", wallMs) }
    }

    /// Where a pending key rotation (to the key with `kid`) stands in the outbox.
    public enum KeyRotationState: Sendable, Equatable {
        /// No rotation record for that key yet.
        case notRecorded
        /// Stored as record `rseq`, not yet sealed: batches up to it are still signed by the old key.
        case recorded(rseq: Int64)
        /// Sealed in batch `bseq` (signed by the old key): every later batch is signed by the new one.
        case sealed(rseq: Int64, bseq: Int64)
    }

    public func keyRotationState(newKid: String) throws(StoreError) -> KeyRotationState {
        try read("look for a key rotation record") { db -> KeyRotationState in
            for row in try Row.fetchAll(db, sql: "SELECT rseq, body, bseq FROM record WHERE kind = 'key' ORDER BY rseq DESC") {
                guard case .keyRotation(let k) = try Self.decode(row), k.newKey.thumbprint == newKid else { continue }
                let rseq: Int64 = row["rseq"]
                if let bseq: Int64 = row["bseq"] { return .sealed(rseq: rseq, bseq: bseq) }
                return .recorded(rseq: rseq)
            }
            return .notRecorded
        }
    }

    /// Agent state kept beside the chain (see ``append(_:now:state:)``); nil when never set.
    public func state(_ key: String) throws(StoreError) -> String? {
        try read("read agent state \(key)") { db in try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = ?", arguments: [Self.stateKeyPrefix + key]) }
    }

    /// Agent state lives in `meta` under this prefix, apart from the outbox's own keys.
    static let stateKeyPrefix = "state."

    static func setMeta(_ db: Database, _ key: String, _ value: some DatabaseValueConvertible) throws {
        try db.execute(sql: "INSERT INTO meta(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value", arguments: [key, value])
    }

    static func decode(_ row: Row) throws -> EvidenceRecord {
        let body: Data = row["body"]
        let rseq: Int64 = row["rseq"]
        do { return try EvidenceRecord(json: try CanonicalJSON.decode(Array(body))) } catch {
            throw StoreError(.corrupt, "stored record \(rseq) does not decode: \(error)")
        }
    }

    /// Stores records durably, assigning their `rseq` (the `rseq` passed in is ignored). When this
    /// append takes the outbox over its disk budget, the same transaction degrades older readings and
    /// records the gaps, stamped `now` (default: the last record's stamp).
    @discardableResult
    public func append(_ records: [EvidenceRecord], now: RecordStamp? = nil) throws(StoreError) -> [EvidenceRecord] {
        try append(records, now: now, state: nil)
    }

    /// Stores records and, in the same transaction, the agent state they change (`state(stored)` gives
    /// the key and its new value, or nil to delete it): the agent never restarts with state the chain
    /// does not explain, nor a record whose state it lost. Used for release windows.
    @discardableResult
    public func append(
        _ records: [EvidenceRecord], now: RecordStamp? = nil, state: ((_ stored: [EvidenceRecord]) -> (key: String, value: String?))?
    ) throws(StoreError) -> [EvidenceRecord] {
        guard !records.isEmpty else { return [] }
        let budget = budgetState.withLock { $0 }
        let (stored, degradation) = try write("append \(records.count) record(s)") { db -> ([EvidenceRecord], Degradation?) in
            let stored = try Self.insert(db, records)
            if let state {
                let (key, value) = state(stored)
                if let value {
                    try Self.setMeta(db, Self.stateKeyPrefix + key, value)
                } else {
                    try db.execute(sql: "DELETE FROM meta WHERE key = ?", arguments: [Self.stateKeyPrefix + key])
                }
            }
            guard let budget else { return (stored, nil) }
            let used = try Self.usedBytes(db)
            guard used > budget.budget.bytes, used > (budget.stillOverAt ?? 0) + budget.budget.bytes / 100 else { return (stored, nil) }
            var stamp = now ?? stored[stored.count - 1].stamp
            stamp.rseq = 0
            return (stored, try Self.degrade(db, budget: budget.budget, now: stamp, targetBytes: nil))
        }
        if let degradation {
            // The pass wrote its pages through the WAL: checkpoint now so the WAL shrinks back (a reader
            // such as the CLI may hold it; then the next automatic checkpoint does it).
            _ = try? pool.writeWithoutTransaction { db in try db.checkpoint(.truncate) }
            budgetState.withLock { $0?.stillOverAt = degradation.stillOver ? degradation.usedAfter : nil }
            budget?.onDegrade(degradation)
        }
        return stored
    }

    /// What a new batch is built from.
    public struct SealInput: Sendable {
        public let bseq: Int64
        public let prev: String
        public let receiptHash: String?
        public let records: [EvidenceRecord]
    }

    /// Claims up to `maxRecords` unsealed records (none after `throughRseq` when given), lets `seal`
    /// sign them, and stores the batch, all in one transaction. Returns nil when there is nothing to seal.
    public func sealNext(maxRecords: Int, throughRseq: Int64? = nil, seal: (SealInput) -> SealedBatch) throws(StoreError) -> SealedBatch? {
        try write("seal a batch") { db -> SealedBatch? in
            let rows = try Row.fetchAll(
                db, sql: "SELECT rseq, body FROM record WHERE bseq IS NULL AND rseq <= ? ORDER BY rseq LIMIT ?",
                arguments: [throughRseq ?? Int64.max, maxRecords])
            guard !rows.isEmpty else { return nil }
            let records = try rows.map(Self.decode)
            let last = try Row.fetchOne(db, sql: "SELECT bseq, hash FROM batch ORDER BY bseq DESC LIMIT 1")
            // A fresh outbox after a recovery goes on from the anchor the chain head gave it.
            let anchorBseq = try Int64.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'anchor_bseq'") ?? 0
            let anchorHash = try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'anchor_hash'") ?? Digest256.zeroHex
            let bseq: Int64 = (last?["bseq"] ?? anchorBseq) + 1
            let prev: String = last?["hash"] ?? anchorHash
            let receiptHash = try String.fetchOne(db, sql: "SELECT receipt_hash FROM batch WHERE receipt_hash IS NOT NULL ORDER BY bseq DESC LIMIT 1")
                ?? String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'anchor_rcpt'")
            let sealed = seal(SealInput(bseq: bseq, prev: prev, receiptHash: receiptHash, records: records))
            guard sealed.bseq == bseq else { throw StoreError(.invariant, "sealer returned bseq \(sealed.bseq), expected \(bseq)") }
            guard sealed.records == records.map(\.canonicalBytes) else {
                throw StoreError(.invariant, "sealer returned batch \(bseq) with other records than the \(records.count) it was given")
            }
            try db.execute(
                sql: "INSERT INTO batch(bseq, hash, token, first_rseq, last_rseq, record_count, sealed_at_ms) VALUES(?, ?, ?, ?, ?, ?, ?)",
                arguments: [bseq, sealed.signingInputHash, sealed.token, records.first?.stamp.rseq, records.last?.stamp.rseq, records.count, Self.nowMs()])
            try db.execute(
                sql: "UPDATE record SET bseq = ? WHERE bseq IS NULL AND rseq BETWEEN ? AND ?",
                arguments: [bseq, records.first?.stamp.rseq, records.last?.stamp.rseq])
            return sealed
        }
    }

    /// Sealed batches without a receipt, oldest first: what the uplink must send, in this order.
    public func undelivered(limit: Int = 16) throws(StoreError) -> [SealedBatch] {
        try read("list undelivered batches") { db in
            try Row.fetchAll(db, sql: "SELECT bseq, token, hash FROM batch WHERE receipt IS NULL ORDER BY bseq LIMIT ?", arguments: [limit])
                .map { try Self.sealedBatch($0, db) }
        }
    }

    /// Stored records in `rseq` order from `fromRseq` on, with the batch that sealed each (nil: not yet).
    public func records(fromRseq: Int64 = 1, limit: Int = .max) throws(StoreError) -> [(record: EvidenceRecord, bseq: Int64?)] {
        try read("list records") { db in
            try Row.fetchAll(db, sql: "SELECT rseq, body, bseq FROM record WHERE rseq >= ? ORDER BY rseq LIMIT ?", arguments: [fromRseq, min(limit, Int(Int64.max))])
                .map { (try Self.decode($0), $0["bseq"]) }
        }
    }

    /// The newest `limit` records of one kind (`evt`, `gap`…), oldest first, with the batch that sealed
    /// each (nil: not yet).
    public func latestRecords(kind: String, limit: Int) throws(StoreError) -> [(record: EvidenceRecord, bseq: Int64?)] {
        try read("list \(kind) records") { db in
            try Row.fetchAll(db, sql: "SELECT rseq, body, bseq FROM record WHERE kind = ? ORDER BY rseq DESC LIMIT ?", arguments: [kind, limit])
                .reversed().map { (try Self.decode($0), $0["bseq"]) }
        }
    }

    /// How many sealed batches wait for the bank's receipt.
    public func undeliveredCount() throws(StoreError) -> Int {
        try read("count undelivered batches") { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM batch WHERE receipt IS NULL") ?? 0 }
    }

    /// Every sealed batch in `bseq` order, with the bank's receipt when it is held.
    public func sealedBatches() throws(StoreError) -> [(batch: SealedBatch, receipt: String?)] {
        try read("list sealed batches") { db in
            try Row.fetchAll(db, sql: "SELECT bseq, token, hash, receipt FROM batch ORDER BY bseq").map {
                (try Self.sealedBatch($0, db), $0["receipt"])
            }
        }
    }

    /// A batch is stored as its token; its records are the rows it claimed, whose bytes are the leaves.
    static func sealedBatch(_ row: Row, _ db: Database) throws -> SealedBatch {
        let bseq: Int64 = row["bseq"]
        let records = try Data.fetchAll(db, sql: "SELECT body FROM record WHERE bseq = ? ORDER BY rseq", arguments: [bseq]).map { Array($0) }
        return SealedBatch(bseq: bseq, token: row["token"], signingInputHash: row["hash"], records: records)
    }

    /// Stores the bank's receipt for batch `bseq`; a batch is delivered from then on.
    public func markDelivered(bseq: Int64, receiptToken: String, receiptHash: String) throws(StoreError) {
        let head = try write("store the receipt of batch \(bseq)") { db -> OutboxHead? in
            try db.execute(
                sql: "UPDATE batch SET receipt = ?, receipt_hash = ?, delivered_at_ms = ? WHERE bseq = ? AND receipt IS NULL",
                arguments: [receiptToken, receiptHash, Self.nowMs(), bseq])
            if db.changesCount == 0 {
                let exists = try Bool.fetchOne(db, sql: "SELECT 1 FROM batch WHERE bseq = ?", arguments: [bseq]) ?? false
                if !exists { throw StoreError(.invariant, "receipt for batch \(bseq), which was never sealed") }
            }
            return try Self.deliveredHead(db)
        }
        if let head { try head.write(outbox: path) }
    }

    /// The highest `rseq` ever assigned: stored, or remembered after pruning or a recovery.
    static func highestRseq(_ db: Database) throws -> Int64 {
        let stored = try Int64.fetchOne(db, sql: "SELECT MAX(rseq) FROM record") ?? 0
        let remembered = try Int64.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'last_rseq'") ?? 0
        return max(stored, remembered)
    }

    /// The head to mirror: the newest delivered batch, the highest rseq ever assigned, the boot count.
    static func deliveredHead(_ db: Database) throws -> OutboxHead? {
        guard let row = try Row.fetchOne(db, sql: "SELECT bseq, hash, receipt_hash FROM batch WHERE receipt IS NOT NULL ORDER BY bseq DESC LIMIT 1") else {
            return nil
        }
        return OutboxHead(
            bseq: row["bseq"], hash: row["hash"], receiptHash: row["receipt_hash"], lastRseq: try highestRseq(db),
            bootCount: try Int64.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'boot_count'") ?? 0)
    }

    /// Marks a batch the bank refused for good. Returns whether it was not marked before. The batch
    /// stays sealed and undelivered: it is never dropped and never re-signed.
    @discardableResult
    public func quarantine(bseq: Int64, code: String, reason: String, atMs: Int64) throws(StoreError) -> Bool {
        try write("quarantine batch \(bseq)") { db in
            try db.execute(
                sql: "UPDATE batch SET quarantine_code = ?, quarantine_reason = ?, quarantined_at_ms = ? WHERE bseq = ? AND receipt IS NULL AND quarantine_code IS NULL",
                arguments: [code, reason, atMs, bseq])
            return db.changesCount > 0
        }
    }

    /// Quarantined batches that have since been delivered: clears their mark and returns them.
    public func releaseQuarantines() throws(StoreError) -> [(bseq: Int64, code: String)] {
        try write("release delivered quarantined batches") { db in
            let rows = try Row.fetchAll(db, sql: "SELECT bseq, quarantine_code FROM batch WHERE quarantine_code IS NOT NULL AND receipt IS NOT NULL ORDER BY bseq")
            try db.execute(sql: "UPDATE batch SET quarantine_code = NULL, quarantine_reason = NULL, quarantined_at_ms = NULL WHERE quarantine_code IS NOT NULL AND receipt IS NOT NULL")
            return rows.map { (bseq: $0["bseq"], code: $0["quarantine_code"]) }
        }
    }

    /// Batches the bank refused for good and that wait, with the bank's code.
    public func quarantined() throws(StoreError) -> [(bseq: Int64, code: String, reason: String, atMs: Int64)] {
        try read("list quarantined batches") { db in
            try Row.fetchAll(db, sql: "SELECT bseq, quarantine_code, quarantine_reason, quarantined_at_ms FROM batch WHERE quarantine_code IS NOT NULL ORDER BY bseq").map {
                (bseq: $0["bseq"], code: $0["quarantine_code"], reason: $0["quarantine_reason"], atMs: $0["quarantined_at_ms"])
            }
        }
    }

    /// What pruning removed.
    public struct Pruned: Sendable, Equatable {
        public var batches: Int
        public var records: Int
        public var throughBseq: Int64?
    }

    /// Deletes delivered batches whose receipt came before `deliveredBeforeMs`, with their records, in
    /// `bseq` order from the oldest, stopping at the first batch that is not prunable; the newest batch
    /// and the newest delivered batch always stay (the chain and the receipt chain go on from them).
    @discardableResult
    public func prune(deliveredBeforeMs: Int64) throws(StoreError) -> Pruned {
        try write("prune delivered batches") { db -> Pruned in
            // The newest batch carries the chain on (bseq, prev) and the newest delivered one the last
            // receipt hash (rcpt): both stay.
            guard let newest = try Int64.fetchOne(db, sql: "SELECT MAX(bseq) FROM batch"),
                let newestDelivered = try Int64.fetchOne(db, sql: "SELECT MAX(bseq) FROM batch WHERE receipt IS NOT NULL")
            else { return Pruned(batches: 0, records: 0, throughBseq: nil) }
            let keepFrom = min(newest, newestDelivered)
            // Contiguous from the oldest: an undelivered or quarantined batch stops it, so what remains
            // is always a suffix of the chain.
            var through: Int64?
            for row in try Row.fetchAll(db, sql: "SELECT bseq, receipt IS NOT NULL AS delivered, delivered_at_ms FROM batch WHERE bseq < ? ORDER BY bseq", arguments: [keepFrom]) {
                let delivered: Bool = row["delivered"]
                let at: Int64? = row["delivered_at_ms"]
                guard delivered, let at, at < deliveredBeforeMs else { break }
                through = row["bseq"]
            }
            guard let through else { return Pruned(batches: 0, records: 0, throughBseq: nil) }
            try Self.setMeta(db, "last_rseq", try Self.highestRseq(db))
            try db.execute(sql: "DELETE FROM record WHERE bseq <= ?", arguments: [through])
            let records = db.changesCount
            try db.execute(sql: "DELETE FROM batch WHERE bseq <= ?", arguments: [through])
            return Pruned(batches: db.changesCount, records: records, throughBseq: through)
        }
    }

    /// Counts the uplink's attempts for a batch (for status and backoff reporting).
    public func noteAttempt(bseq: Int64, error: String?) throws(StoreError) {
        try write("note an upload attempt") { db in
            try db.execute(sql: "UPDATE batch SET attempts = attempts + 1, last_error = ? WHERE bseq = ?", arguments: [error, bseq])
        }
    }

    public struct Status: Sendable, Equatable {
        public var records: Int64
        public var unsealedRecords: Int64
        public var batches: Int64
        public var undeliveredBatches: Int64
        public var lastBseq: Int64
        public var bootCount: Int64
    }

    public func status() throws(StoreError) -> Status {
        try read("read the outbox status") { db in
            Status(
                records: try Int64.fetchOne(db, sql: "SELECT COUNT(*) FROM record") ?? 0,
                unsealedRecords: try Int64.fetchOne(db, sql: "SELECT COUNT(*) FROM record WHERE bseq IS NULL") ?? 0,
                batches: try Int64.fetchOne(db, sql: "SELECT COUNT(*) FROM batch") ?? 0,
                undeliveredBatches: try Int64.fetchOne(db, sql: "SELECT COUNT(*) FROM batch WHERE receipt IS NULL") ?? 0,
                lastBseq: try Int64.fetchOne(db, sql: "SELECT MAX(bseq) FROM batch") ?? 0,
                bootCount: try Int64.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'boot_count'") ?? 0)
        }
    }

    /// The SQLite `synchronous` level of the writer, the connection that commits (2 = FULL), for
    /// checks and `vouch doctor`. (A reader's level says nothing about durability.)
    public func synchronousLevel() throws(StoreError) -> Int {
        do { return try pool.writeWithoutTransaction { db in try Int.fetchOne(db, sql: "PRAGMA synchronous") ?? -1 } } catch {
            throw StoreError(.io, "could not read PRAGMA synchronous in \(path): \(error)")
        }
    }

    public func journalMode() throws(StoreError) -> String {
        try read("read PRAGMA journal_mode") { db in try String.fetchOne(db, sql: "PRAGMA journal_mode") ?? "" }
    }

    // MARK: plumbing

    func write<T>(_ what: String, _ body: (Database) throws -> T) throws(StoreError) -> T {
        do { return try pool.write(body) } catch let error as StoreError { throw error } catch let error as DatabaseError where error.resultCode == .SQLITE_FULL {
            throw StoreError(.full, "could not \(what): the file system holding \(path) is full; free space there (nothing stored before is lost, and this is retried)")
        } catch {
            throw StoreError(.io, "could not \(what) in \(path): \(error)")
        }
    }

    func read<T>(_ what: String, _ body: (Database) throws -> T) throws(StoreError) -> T {
        do { return try pool.read(body) } catch let error as StoreError { throw error } catch {
            throw StoreError(.io, "could not \(what) in \(path): \(error)")
        }
    }

    static func nowMs() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }
}

/// The outbox schema. Migrations are append-only: a shipped one never changes.
enum OutboxSchema {
    static var migrator: DatabaseMigrator {
        var m = DatabaseMigrator()
        m.registerMigration("v1: records and batches") { db in
            try db.execute(sql: """
                CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value ANY NOT NULL) STRICT;
                CREATE TABLE batch (
                    bseq INTEGER PRIMARY KEY NOT NULL,
                    hash TEXT NOT NULL,
                    token TEXT NOT NULL,
                    first_rseq INTEGER NOT NULL,
                    last_rseq INTEGER NOT NULL,
                    record_count INTEGER NOT NULL,
                    sealed_at_ms INTEGER NOT NULL,
                    attempts INTEGER NOT NULL DEFAULT 0,
                    last_error TEXT,
                    receipt TEXT,
                    receipt_hash TEXT,
                    delivered_at_ms INTEGER
                ) STRICT;
                CREATE TABLE record (
                    rseq INTEGER PRIMARY KEY NOT NULL,
                    kind TEXT NOT NULL,
                    body BLOB NOT NULL,
                    bseq INTEGER REFERENCES batch(bseq)
                ) STRICT;
                CREATE INDEX record_unsealed ON record(rseq) WHERE bseq IS NULL;
                """)
        }
        m.registerMigration("v2: quarantined batches") { db in
            try db.execute(sql: """
                ALTER TABLE batch ADD COLUMN quarantine_code TEXT;
                ALTER TABLE batch ADD COLUMN quarantine_reason TEXT;
                ALTER TABLE batch ADD COLUMN quarantined_at_ms INTEGER;
                """)
        }
        return m
    }
}
