import Foundation
import Logging
import PostgresNIO
import ServiceLifecycle
import Synchronization
import VouchBank
import VouchEvidence

/// ``BankStore`` on PostgreSQL: several `vouch-bank serve` processes on one database behave as one
/// receiver.
///
/// Invariants (the same as ``SQLiteBankStore``'s, held by the database, not by any process):
/// - Per device, stored `bseq` values are gap-free from 1 and each links to the previous by `prev`.
///   An upload locks its device's row (`SELECT … FOR UPDATE`) before it reads the chain head, and
///   holds it to the commit: a second receiver with the same device waits, then reads the new head,
///   so the same batch sent to two receivers at once is stored once and answered twice
///   (`accepted`, then `duplicate` with the same receipt). `(device, bseq)` is the primary key.
/// - A stored batch and its records never change (the receipt is filled in by the transaction that
///   stores the batch, before it commits).
/// - The bank log (one row) is appended last in each transaction, so receivers serialize only on
///   that short tail and on their commits, not on whole uploads; devices are locked in id order and
///   the log after them, so two receivers' transactions never deadlock.
/// - A receipt is returned only after its transaction has committed (`synchronous_commit` as the
///   server has it: `on` by default, which a bank must keep).
/// - Only ``PostgresBankSchema`` changes the schema.
///
/// Uploads that arrive together share a transaction (group commit, as on SQLite): each receiver has
/// ``writerLanes`` writers, each taking every upload queued while it was busy.
public final class PostgresBankStore: BankStore, AlertQueue, Service {
    public let configuration: PostgresBankConfiguration
    let client: PostgresClient
    let logger: Logger
    /// Whether accepted batches queue alerts (``BankAlert``): set when alerts are delivered.
    public let alerts: Bool
    let queue = UploadQueue()
    let counters = CommitCounters()

    /// Writers per receiver: each holds one connection and commits one group of uploads at a time.
    public let writerLanes: Int
    /// Most uploads one transaction holds.
    static let maxGroup = 64

    /// How long a request waits for a connection before it is refused with 503 (the gateway retries).
    public let connectionWait: Duration

    public init(configuration: PostgresBankConfiguration, alerts: Bool = false, writerLanes: Int = 4, connectionWait: Duration = .seconds(10), logger: Logger) {
        self.configuration = configuration
        self.connectionWait = connectionWait
        self.alerts = alerts
        self.writerLanes = max(1, min(writerLanes, configuration.maximumConnections - 1))
        self.logger = logger
        var quiet = logger
        // PostgresNIO warns when a query waits for run() to start, which happens at every start.
        quiet.logLevel = .error
        client = PostgresClient(configuration: configuration.client, backgroundLogger: quiet)
    }

    /// Transactions of uploads committed by this receiver, and the uploads they held.
    public var uploadCommits: (transactions: Int, uploads: Int) { counters.value }

    /// Runs the connection pool and the writers until cancelled (or graceful shutdown); uploads still
    /// queued then are refused with 503, which the gateway retries.
    public func run() async throws {
        await withDiscardingTaskGroup { group in
            group.addTask { await self.client.run() }
            for lane in 0..<writerLanes { group.addTask { await self.writeLoop(lane: lane) } }
            await withTaskCancellationHandler {
                await cancelWhenGracefulShutdown {
                    while !Task.isCancelled { try? await Task.sleep(for: .seconds(3600)) }
                }
            } onCancel: {
                self.queue.close()
            }
            queue.close()
            group.cancelAll()
        }
    }

    /// Opens the store, applies missing migrations, runs `body`, then closes: for the CLI and tests.
    public static func with<T>(
        _ configuration: PostgresBankConfiguration, alerts: Bool = false, logger: Logger, _ body: (PostgresBankStore) async throws -> T
    ) async throws -> T {
        let store = PostgresBankStore(configuration: configuration, alerts: alerts, logger: logger)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await store.run() }
            defer { group.cancelAll() }
            try await store.prepare()
            return try await body(store)
        }
    }

    /// Applies missing migrations (needs ``run()`` going). A receiver calls this before it serves.
    public func prepare() async throws(BankError) {
        let logger = logger
        do { try await connection { try await PostgresBankSchema.migrate(on: $0, logger: logger) } } catch { throw Self.storeError(error, configuration) }
    }

    // MARK: - Uploads

    public func accept(
        _ batch: VerifiedBatch, records: [EvidenceRecord], device: EnrolledDevice, nowMs: Int64, signReceipt: @escaping @Sendable (Receipt) -> String
    ) async throws(BankError) -> IngestResult {
        let upload = PendingUpload(batch: batch, records: records, device: device, nowMs: nowMs, signReceipt: signReceipt)
        let result = await withCheckedContinuation { continuation in
            queue.put(QueuedUpload(upload: upload, done: { continuation.resume(returning: $0) }))
        }
        return try result.get()
    }

    func writeLoop(lane: Int) async {
        while true {
            let group = await queue.take(max: Self.maxGroup)
            if group.isEmpty { return }
            let results = await commit(group.map(\.upload))
            for (item, result) in zip(group, results) { item.done(result) }
        }
    }

    /// One transaction for the group; retried whole (nothing of it committed) when PostgreSQL
    /// aborts it for a deadlock or a serialization failure.
    func commit(_ uploads: [PendingUpload]) async -> [Result<IngestResult, BankError>] {
        var attempt = 0
        while true {
            attempt += 1
            do {
                let results = try await connection { connection in try await self.transaction(connection, uploads) }
                counters.add(uploads: uploads.count)
                return results
            } catch let error as PSQLError where attempt < 5 && ["40P01", "40001"].contains(error.serverInfo?[.sqlState] ?? "") {
                logger.notice("bank database: a group of \(uploads.count) upload(s) was aborted (\(error.serverInfo?[.sqlState] ?? "")); retrying it")
                continue
            } catch {
                let failure = Self.storeError(error, configuration)
                logger.error("bank database: a group of \(uploads.count) upload(s) was not stored: \(failure.message)")
                return uploads.map { _ in .failure(failure) }
            }
        }
    }

    enum Outcome {
        case done(Result<IngestResult, BankError>)
        /// Stored, waiting for its place in the bank log and its receipt.
        case pending(Int64, ClosedRange<Int64>?, String?)
        /// A resend of a batch this same transaction is storing: its receipt once signed.
        case duplicateOfPending(Int)
    }

    func transaction(_ connection: PostgresConnection, _ uploads: [PendingUpload]) async throws -> [Result<IngestResult, BankError>] {
        try await connection.query("BEGIN", logger: logger)
        do {
            // Devices in id order (stable, so one device's uploads keep their order): two receivers'
            // groups lock rows in the same order and cannot deadlock.
            let order = uploads.indices.sorted { (uploads[$0].device.id, $0) < (uploads[$1].device.id, $1) }
            var outcomes = [Outcome](repeating: .done(.failure(BankError(BankError.store, status: 500, "not stored"))), count: uploads.count)
            var pending: [String: Int] = [:]
            for i in order {
                do {
                    outcomes[i] = try await store(uploads[i], connection, pending: pending)
                    if case .pending = outcomes[i] { pending["\(uploads[i].device.id)#\(uploads[i].batch.payload.bseq)"] = i }
                } catch let refusal as BankError {
                    // Refusals are found before the upload writes anything (a fork's incident is the
                    // one deliberate write, and it is returned, not thrown).
                    outcomes[i] = .done(.failure(refusal))
                }
            }
            var results: [Result<IngestResult, BankError>?] = outcomes.map { if case .done(let r) = $0 { r } else { nil } }
            let accepted = order.filter { if case .pending = outcomes[$0] { true } else { false } }
            if !accepted.isEmpty {
                // The bank log, last: every receiver's transaction queues here for a moment.
                var logRow: (Int64, String)?
                for try await row in try await connection.execute(UploadStatements.LockLog(), logger: logger) { logRow = row }
                guard let (size, frontierText) = logRow else { throw BankError(BankError.store, status: 500, "the bank database has no bank_log row") }
                var log = try MerkleLog(size: size, frontier: frontierText.isEmpty ? [] : frontierText.split(separator: ",").map { Hex.decode(String($0)) ?? [] })
                var receipts: [String] = []
                var indices: [Int64] = []
                var devices: [String] = []
                var bseqs: [Int64] = []
                for i in accepted {
                    guard case .pending(let deviceLogSize, let missing, let rotatedTo) = outcomes[i] else { continue }
                    let u = uploads[i]
                    let index = log.append(leaf: Hex.decode(u.batch.signingInputHash) ?? [])
                    let receipt = u.signReceipt(
                        Receipt(
                            device: u.device.id, bseq: u.batch.payload.bseq, batch: u.batch.signingInputHash, deviceLogSize: deviceLogSize, logIndex: index,
                            logSize: log.size, logRoot: Hex.encode(log.root), acceptedWallMs: u.nowMs))
                    receipts.append(receipt)
                    indices.append(index)
                    devices.append(u.device.id)
                    bseqs.append(u.batch.payload.bseq)
                    results[i] = .success(
                        IngestResult(verdict: .accepted, device: u.device.id, bseq: u.batch.payload.bseq, receipt: receipt, missingRecords: missing, rotatedTo: rotatedTo))
                }
                _ = try await connection.execute(
                    UploadStatements.SaveReceipts(
                        devices: devices, bseqs: bseqs, receipts: receipts, indices: indices, size: log.size,
                        frontier: log.frontier.map(Hex.encode).joined(separator: ",")),
                    logger: logger)
            }
            for (i, outcome) in outcomes.enumerated() {
                if case .duplicateOfPending(let j) = outcome, case .success(let first)? = results[j] {
                    results[i] = .success(IngestResult(verdict: .duplicate, device: first.device, bseq: first.bseq, receipt: first.receipt))
                }
            }
            try await connection.query("COMMIT", logger: logger)
            return results.map { $0 ?? .failure(BankError(BankError.store, status: 500, "upload lost its place in the transaction")) }
        } catch {
            _ = try? await connection.query("ROLLBACK", logger: logger)
            throw error
        }
    }

    /// One upload's part of the group's transaction: every check that can refuse it runs before it
    /// writes, so a refusal needs no savepoint.
    func store(_ u: PendingUpload, _ connection: PostgresConnection, pending: [String: Int]) async throws -> Outcome {
        let p = u.batch.payload
        let id = u.device.id
        // The lock first, then a fresh read (READ COMMITTED: the next statement sees what the holder
        // we waited for committed).
        var locked = false
        var revokedAt: Int64?
        for try await revoked in try await connection.execute(UploadStatements.LockDevice(device: id), logger: logger) {
            locked = true
            revokedAt = revoked
        }
        guard locked else { throw BankError(BankError.unknownDevice, status: 401, "device \(id) is not enrolled") }
        if let revokedAt, revokedAt <= u.nowMs {
            throw BankError(BankError.revokedDevice, status: 403, "device \(id) was revoked")
        }
        var chainState: UploadStatements.ChainState.Row?
        for try await row in try await connection.execute(UploadStatements.ChainState(device: id, kid: u.device.kid, bseq: p.bseq), logger: logger) {
            chainState = row
        }
        guard let (from, until, headBseq, headHash, acceptedHash, acceptedReceipt, lastRseq) = chainState else {
            throw BankError(BankError.store, status: 500, "the chain state query returned nothing")
        }
        let head = headBseq.flatMap { b in headHash.map { ChainHead(bseq: b, signingInputHash: $0) } }
        let verdict = ChainRule.classify(bseq: p.bseq, prev: p.prev, signingInputHash: u.batch.signingInputHash, head: head, acceptedHash: acceptedHash)
        if let until, p.bseq > until {
            throw BankError(BankError.keyRetired, status: 401, "batch \(p.bseq) of \(id) is signed by key \(u.device.kid), which the device retired in batch \(until)")
        }
        if let from, p.bseq < from {
            throw BankError(BankError.keyRetired, status: 401, "batch \(p.bseq) of \(id) is signed by key \(u.device.kid), which is in force only from batch \(from)")
        }
        if verdict == .duplicate {
            if let j = pending["\(id)#\(p.bseq)"] { return .duplicateOfPending(j) }
            return .done(.success(IngestResult(verdict: .duplicate, device: id, bseq: p.bseq, receipt: acceptedReceipt ?? "")))
        }
        if let refusal = BankError.chain(verdict, device: id, bseq: p.bseq, prev: p.prev) {
            guard case .fork(let bseq) = verdict else { throw refusal }
            // Keep the second signed history itself: with the accepted batch it is the proof.
            let evidence = String(decoding: BatchFile.encode(token: u.batch.token, records: u.batch.recordBytes), as: UTF8.self)
            try await connection.query(
                "INSERT INTO incident(device, kind, bseq, detail, evidence, at_ms) VALUES (\(id), 'fork', \(bseq), \(u.batch.signingInputHash), \(evidence), \(u.nowMs))",
                logger: logger)
            if alerts {
                try await queueAlert(
                    connection, kind: "fork", device: id, key: "bseq-\(bseq)-\(u.batch.signingInputHash)", body: BankAlert.forkBody(device: id, bseq: bseq, refusal: refusal),
                    nowMs: u.nowMs)
            }
            return .done(.failure(refusal))
        }
        var previous = lastRseq
        for r in u.records {
            guard r.stamp.rseq > previous else {
                throw BankError(BankError.recordOrder, status: 409, "record rseq \(r.stamp.rseq) in batch \(p.bseq) does not follow rseq \(previous)")
            }
            previous = r.stamp.rseq
        }
        var rotation: KeyRotation?
        for case .keyRotation(let r) in u.records {
            guard rotation == nil else {
                throw BankError(BankError.keyRotation, status: 400, "batch \(p.bseq) of \(id) holds two key rotations; one batch may rotate once")
            }
            let newKid = r.newKey.thumbprint
            let holders = try await connection.query("SELECT device FROM device_key WHERE kid = \(newKid)", logger: logger).collect()
            if let holder = try holders.first?.decode(String.self) {
                throw BankError(BankError.keyRotation, status: 409, "batch \(p.bseq) of \(id) rotates to key \(newKid), which \(holder == id ? "this device already had" : "belongs to device \(holder)")")
            }
            rotation = r
        }
        // Every check passed: from here on the upload only writes.
        var missing: ClosedRange<Int64>?
        if let first = u.records.first?.stamp.rseq, first > lastRseq + 1 {
            let gap = (lastRseq + 1)...(first - 1)
            missing = gap
            try await connection.query(
                "INSERT INTO incident(device, kind, bseq, detail, at_ms) VALUES (\(id), 'record-gap', \(p.bseq), \("rseq \(gap.lowerBound)-\(gap.upperBound) missing"), \(u.nowMs))",
                logger: logger)
            if alerts {
                try await queueAlert(
                    connection, kind: "record-gap", device: id, key: "bseq-\(p.bseq)", body: BankAlert.recordGapBody(device: id, bseq: p.bseq, missing: gap), nowMs: u.nowMs)
            }
        }
        if let rotation {
            let newKid = rotation.newKey.thumbprint
            try await connection.query(
                """
                WITH retired AS (UPDATE device_key SET until_bseq = \(p.bseq) WHERE kid = \(u.device.kid))
                INSERT INTO device_key(kid, device, jwk, from_bseq, until_bseq) VALUES (\(newKid), \(id), \(CanonicalJSON.string(rotation.newKey.json)), \(p.bseq + 1), NULL)
                """, logger: logger)
        }
        var rseqs: [Int64] = []
        var kinds: [String] = []
        var bodies: [String] = []
        var walls: [Int64] = []
        var channels: [String] = []
        rseqs.reserveCapacity(u.records.count)
        var heartbeatMs: Int64?
        for (record, line) in zip(u.records, u.batch.recordBytes) {
            rseqs.append(record.stamp.rseq)
            kinds.append(record.kind)
            bodies.append(String(decoding: line, as: UTF8.self))
            walls.append(record.stamp.wallMs)
            channels.append(record.queryChannel ?? "")
            if case .heartbeat(let h) = record { heartbeatMs = h.intervalMs }
        }
        _ = try await connection.execute(
            UploadStatements.StoreBatch(
                device: id, bseq: p.bseq, hash: u.batch.signingInputHash, prev: p.prev, token: u.batch.token, recordCount: Int32(u.records.count),
                receivedAtMs: u.nowMs, rseqs: rseqs, kinds: kinds, bodies: bodies, walls: walls, channels: channels, heartbeatMs: heartbeatMs),
            logger: logger)
        for case .event(let e) in u.records {
            try await storeEvent(e, device: id, bseq: p.bseq, connection)
            if alerts, e.severity != "record" {
                try await queueAlert(
                    connection, kind: "event", device: id, key: "\(e.eventId)-\(e.phase.rawValue)", body: BankAlert.eventBody(device: id, event: e, bseq: p.bseq),
                    nowMs: u.nowMs)
            }
        }
        return .pending((head?.bseq ?? 0) + 1, missing, rotation?.newKey.thumbprint)
    }

    func storeEvent(_ e: EventRecord, device: String, bseq: Int64, _ connection: PostgresConnection) async throws {
        switch e.phase {
        case .start:
            try await connection.query(
                """
                INSERT INTO event(device, event_id, rule, channel, severity, start_wall_ms, start_mono_ms, boot, end_wall_ms, duration_ms, status, explanation, bseq)
                VALUES (\(device), \(e.eventId), \(e.rule), \(e.channel), \(e.severity), \(e.startWallMs), \(e.startMonoMs), \(e.stamp.boot), NULL, \(e.durationMs), 'ongoing', \(e.explanation), \(bseq))
                ON CONFLICT (device, event_id) DO NOTHING
                """, logger: logger)
        case .end:
            try await connection.query(
                """
                INSERT INTO event(device, event_id, rule, channel, severity, start_wall_ms, start_mono_ms, boot, end_wall_ms, duration_ms, status, explanation, bseq)
                VALUES (\(device), \(e.eventId), \(e.rule), \(e.channel), \(e.severity), \(e.startWallMs), \(e.startMonoMs), \(e.stamp.boot), \(e.endWallMs), \(e.durationMs), 'ended', \(e.explanation), \(bseq))
                ON CONFLICT (device, event_id) DO UPDATE SET end_wall_ms = excluded.end_wall_ms, duration_ms = excluded.duration_ms,
                    status = 'ended', explanation = excluded.explanation
                """, logger: logger)
        }
    }

    func queueAlert(_ connection: PostgresConnection, kind: String, device: String, key: String, body: JSONValue, nowMs: Int64) async throws {
        try await connection.query(
            """
            INSERT INTO alert(kind, device, key, body, created_at_ms, next_at_ms) VALUES (\(kind), \(device), \(key), \(CanonicalJSON.string(body)), \(nowMs), \(nowMs))
            ON CONFLICT (kind, device, key) DO NOTHING
            """, logger: logger)
    }

    // MARK: - Devices

    public func enroll(_ device: EnrolledDevice) async throws(BankError) {
        try await write { connection in
            // Serializes enrollments (rare) so the three checks below see each other.
            try await connection.query("SELECT pg_advisory_xact_lock(7301187)", logger: self.logger)
            if let row = try await connection.query("SELECT kid FROM device WHERE id = \(device.id)", logger: self.logger).collect().first {
                let kid = try row.decode(String.self)
                if kid == device.kid { return }
                throw BankError(BankError.enrollment, status: 409, "device \(device.id) is already enrolled with another key (\(kid)); rotate keys instead of re-enrolling")
            }
            if let other = try await connection.query("SELECT id FROM device WHERE kid = \(device.kid)", logger: self.logger).collect().first {
                throw BankError(BankError.enrollment, status: 409, "this key is already enrolled for device \(try other.decode(String.self))")
            }
            if let other = try await connection.query("SELECT device FROM device_key WHERE kid = \(device.kid)", logger: self.logger).collect().first {
                throw BankError(BankError.enrollment, status: 409, "this key was rotated in for device \(try other.decode(String.self)); it cannot be enrolled again")
            }
            let jwk = CanonicalJSON.string(device.key.json)
            try await connection.query(
                """
                WITH d AS (INSERT INTO device(id, kid, jwk, enrolled_at_ms) VALUES (\(device.id), \(device.kid), \(jwk), \(device.enrolledAtMs)))
                INSERT INTO device_key(kid, device, jwk, from_bseq, until_bseq) VALUES (\(device.kid), \(device.id), \(jwk), 1, NULL)
                """, logger: self.logger)
        }
    }

    static let deviceKeyColumns = """
        SELECT d.id, d.enrolled_at_ms, d.revoked_at_ms, k.jwk, k.from_bseq, k.until_bseq
        FROM device_key k JOIN device d ON d.id = k.device
        """

    public func device(kid: String) async throws(BankError) -> EnrolledDevice? {
        try await devices("\(unescaped: Self.deviceKeyColumns) WHERE k.kid = \(kid)").first
    }

    public func devices() async throws(BankError) -> [EnrolledDevice] {
        try await devices("\(unescaped: Self.deviceKeyColumns) WHERE k.until_bseq IS NULL ORDER BY d.id")
    }

    public func device(id: String) async throws(BankError) -> EnrolledDevice? {
        try await devices("\(unescaped: Self.deviceKeyColumns) WHERE k.until_bseq IS NULL AND d.id = \(id)").first
    }

    public func keys(device: String) async throws(BankError) -> [EnrolledDevice] {
        try await devices("\(unescaped: Self.deviceKeyColumns) WHERE k.device = \(device) ORDER BY k.from_bseq")
    }

    func devices(_ query: PostgresQuery) async throws(BankError) -> [EnrolledDevice] {
        try await read { connection in
            var found: [EnrolledDevice] = []
            for row in try await connection.query(query, logger: self.logger).collect() {
                let (id, enrolled, revoked, jwk, from, until) = try row.decode((String, Int64, Int64?, String, Int64, Int64?).self)
                let key = try PublicJWK(json: try CanonicalJSON.decode(Array(jwk.utf8)))
                found.append(EnrolledDevice(id: id, key: key, enrolledAtMs: enrolled, revokedAtMs: revoked, keyFromBseq: from, keyUntilBseq: until))
            }
            return found
        }
    }

    public func revoke(device id: String, atMs: Int64) async throws(BankError) -> EnrolledDevice {
        try await write { connection in
            try await connection.query("UPDATE device SET revoked_at_ms = \(atMs) WHERE id = \(id) AND revoked_at_ms IS NULL", logger: self.logger)
        }
        guard let device = try await device(id: id) else { throw BankError(BankError.notFound, status: 404, "no device \(id) is enrolled") }
        return device
    }

    public func chainStatus(device id: String, nowMs: Int64) async throws(BankError) -> ChainStatus {
        try await read { connection in
            let rows = try await connection.query(
                """
                SELECT (SELECT COUNT(*) FROM batch WHERE device = \(id)),
                    (SELECT COALESCE(MAX(bseq), 0) FROM batch WHERE device = \(id)),
                    (SELECT COALESCE(SUM(record_count), 0)::bigint FROM batch WHERE device = \(id)),
                    (SELECT COUNT(*) FROM incident WHERE device = \(id)),
                    s.last_batch_at_ms, s.heartbeat_ms
                FROM (SELECT 1) one LEFT JOIN device_state s ON s.device = \(id)
                """, logger: self.logger
            ).collect()
            guard let row = rows.first else { return ChainStatus() }
            let (batches, last, records, incidents, lastAt, heartbeat) = try row.decode((Int64, Int64, Int64, Int64, Int64?, Int64?).self)
            var status = ChainStatus(batches: batches, lastBseq: last, lastBatchAtMs: lastAt, records: records, incidents: incidents)
            if let lastAt, let heartbeat, nowMs - lastAt > 2 * heartbeat { status.silentForMs = nowMs - lastAt }
            return status
        }
    }

    // MARK: - Queries

    public func events(device: String?) async throws(BankError) -> [StoredEvent] {
        let columns = "SELECT device, event_id, rule, channel, severity, start_wall_ms, end_wall_ms, duration_ms, status, explanation, bseq FROM event"
        let query: PostgresQuery =
            if let device { "\(unescaped: columns) WHERE device = \(device) ORDER BY start_wall_ms" } else {
                "\(unescaped: columns) ORDER BY device, start_wall_ms"
            }
        return try await read { connection in
            try await connection.query(query, logger: self.logger).collect().map { row in
                let (device, eventId, rule, channel, severity, start, end, duration, status, explanation, bseq) = try row.decode(
                    (String, String, String, String, String, Int64, Int64?, Int64, String, String, Int64).self)
                return StoredEvent(
                    device: device, eventId: eventId, rule: rule, channel: channel, severity: severity, startWallMs: start, endWallMs: end, durationMs: duration,
                    status: status, explanation: explanation, bseq: bseq)
            }
        }
    }

    public func batches(device: String) async throws(BankError) -> [StoredBatch] {
        try await read { connection in
            var lines: [Int64: [[UInt8]]] = [:]
            for row in try await connection.query("SELECT bseq, body FROM record WHERE device = \(device) ORDER BY rseq", logger: self.logger).collect() {
                let (bseq, body) = try row.decode((Int64, String).self)
                lines[bseq, default: []].append(Array(body.utf8))
            }
            return try await connection.query(
                "SELECT bseq, hash, token, received_at_ms, receipt FROM batch WHERE device = \(device) ORDER BY bseq", logger: self.logger
            ).collect().map { row in
                let (bseq, hash, token, received, receipt) = try row.decode((Int64, String, String, Int64, String).self)
                return StoredBatch(device: device, bseq: bseq, hash: hash, token: token, records: lines[bseq] ?? [], receivedAtMs: received, receipt: receipt)
            }
        }
    }

    public func incidents(device: String?, nowMs: Int64) async throws(BankError) -> [Incident] {
        let columns = "SELECT device, kind, bseq, detail, evidence, at_ms FROM incident"
        let query: PostgresQuery =
            if let device { "\(unescaped: columns) WHERE device = \(device) ORDER BY id" } else {
                "\(unescaped: columns) ORDER BY id"
            }
        let stored = try await read { connection in
            try await connection.query(query, logger: self.logger).collect().map { row in
                let (device, kind, bseq, detail, evidence, at) = try row.decode((String, String, Int64, String, String?, Int64).self)
                return Incident(device: device, kind: kind, bseq: bseq, detail: detail, evidence: evidence, atMs: at)
            }
        }
        let silent = try await silentDevices(nowMs: nowMs).filter { device == nil || $0.device == device }.map { $0.incident(nowMs: nowMs) }
        return stored + silent
    }

    public func silentDevices(nowMs: Int64) async throws(BankError) -> [Silence] {
        try await read { connection in
            try await connection.query(
                """
                SELECT device, last_batch_at_ms, last_bseq, heartbeat_ms FROM device_state
                WHERE heartbeat_ms IS NOT NULL AND \(nowMs) - last_batch_at_ms > 2 * heartbeat_ms ORDER BY device
                """, logger: self.logger
            ).collect().map { row in
                let (device, last, bseq, heartbeat) = try row.decode((String, Int64, Int64, Int64).self)
                return Silence(device: device, lastBatchAtMs: last, lastBseq: bseq, heartbeatMs: heartbeat, silentForMs: nowMs - last)
            }
        }
    }

    public func inclusionProof(device: String, rseq: Int64) async throws(BankError) -> InclusionProof {
        let found = try await read { connection -> (token: String, lines: [[UInt8]], index: Int, receipt: String)? in
            let rows = try await connection.query(
                "SELECT b.token, b.receipt, b.bseq FROM record r JOIN batch b ON b.device = r.device AND b.bseq = r.bseq WHERE r.device = \(device) AND r.rseq = \(rseq)",
                logger: self.logger
            ).collect()
            guard let row = rows.first else { return nil }
            let (token, receipt, bseq) = try row.decode((String, String, Int64).self)
            var lines: [[UInt8]] = []
            var index = 0
            for line in try await connection.query("SELECT rseq, body FROM record WHERE device = \(device) AND bseq = \(bseq) ORDER BY rseq", logger: self.logger).collect() {
                let (r, body) = try line.decode((Int64, String).self)
                if r < rseq { index += 1 }
                lines.append(Array(body.utf8))
            }
            return (token, lines, index, receipt)
        }
        guard let found else { throw BankError(BankError.notFound, status: 404, "the bank holds no record \(rseq) of device \(device)") }
        let kid = ((try? JWS.parse(found.token).header["kid"]?.stringValue) ?? nil) ?? ""
        guard let key = try await self.device(kid: kid)?.key else {
            throw BankError(BankError.store, status: 500, "batch of record \(rseq) is signed by key \(kid), which the bank does not hold")
        }
        return InclusionProof(
            batch: found.token, index: found.index, record: found.lines[found.index], path: Merkle.auditPath(index: found.index, leaves: found.lines),
            deviceKey: key, receipt: found.receipt)
    }

    public func records(device: String, kind: String, channel: String?, fromMs: Int64?, untilMs: Int64?, afterRseq: Int64?, limit: Int) async throws(BankError) -> [StoredRecord] {
        try await read { connection in
            // NULL bounds and channel match everything; '' is how a record without a channel is stored.
            try await connection.query(
                """
                SELECT rseq, bseq, body FROM record WHERE device = \(device) AND kind = \(kind)
                    AND (\(channel)::text IS NULL OR channel = \(channel))
                    AND (\(fromMs)::bigint IS NULL OR wall_ms >= \(fromMs)) AND (\(untilMs)::bigint IS NULL OR wall_ms < \(untilMs))
                    AND (\(afterRseq)::bigint IS NULL OR rseq > \(afterRseq))
                ORDER BY rseq LIMIT \(Int64(limit))
                """, logger: self.logger
            ).collect().map { row in
                let (rseq, bseq, body) = try row.decode((Int64, Int64, String).self)
                return StoredRecord(rseq: rseq, bseq: bseq, line: Array(body.utf8))
            }
        }
    }

    public func recordWallMs(device: String, rseq: Int64) async throws(BankError) -> Int64? {
        try await read { connection in
            try await connection.query("SELECT wall_ms FROM record WHERE device = \(device) AND rseq = \(rseq)", logger: self.logger).collect().first?.decode(Int64.self)
        }
    }

    public func logHead() async throws(BankError) -> (size: Int64, root: String) {
        try await read { connection in
            guard let row = try await connection.query("SELECT size, frontier FROM bank_log WHERE id = 1", logger: self.logger).collect().first else {
                return (0, Hex.encode(MerkleLog().root))
            }
            let (size, text) = try row.decode((Int64, String).self)
            let log = try MerkleLog(size: size, frontier: text.isEmpty ? [] : text.split(separator: ",").map { Hex.decode(String($0)) ?? [] })
            return (log.size, Hex.encode(log.root))
        }
    }

    // MARK: - Alerts

    public func queueSilenceAlerts(nowMs: Int64) async throws(BankError) {
        let quiet = try await silentDevices(nowMs: nowMs)
        guard !quiet.isEmpty else { return }
        try await write { connection in
            for s in quiet {
                try await self.queueAlert(connection, kind: "silence", device: s.device, key: "bseq-\(s.lastBseq)", body: BankAlert.silenceBody(s), nowMs: nowMs)
            }
        }
    }

    /// Takes due alerts for this receiver: each is pushed ``BankAlert/claimMs`` into the future in
    /// the same statement that reads it, and rows another receiver is taking are skipped, so two
    /// receivers never deliver the same alert at once.
    public func dueAlerts(nowMs: Int64, limit: Int) async throws(BankError) -> [BankAlert] {
        try await read { connection in
            try await connection.query(
                """
                UPDATE alert SET next_at_ms = \(nowMs + BankAlert.claimMs)
                WHERE id IN (SELECT id FROM alert WHERE delivered_at_ms IS NULL AND next_at_ms <= \(nowMs) ORDER BY id LIMIT \(Int64(limit)) FOR UPDATE SKIP LOCKED)
                RETURNING id, kind, device, body, attempts
                """, logger: self.logger
            ).collect().map { row in
                let (id, kind, device, body, attempts) = try row.decode((Int64, String, String, String, Int64).self)
                return BankAlert(id: id, kind: kind, device: device, body: body, attempts: attempts)
            }.sorted { $0.id < $1.id }
        }
    }

    public func alertDelivered(_ id: Int64, nowMs: Int64) async throws(BankError) {
        try await write { connection in
            try await connection.query("UPDATE alert SET delivered_at_ms = \(nowMs), attempts = attempts + 1 WHERE id = \(id)", logger: self.logger)
        }
    }

    public func alertFailed(_ id: Int64, error: String, retryAtMs: Int64) async throws(BankError) {
        try await write { connection in
            try await connection.query("UPDATE alert SET attempts = attempts + 1, next_at_ms = \(retryAtMs), last_error = \(error) WHERE id = \(id)", logger: self.logger)
        }
    }

    // MARK: - Plumbing

    /// One statement or a few, outside any upload transaction.
    @discardableResult
    func read<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws(BankError) -> T {
        do { return try await connection(body) } catch let e as BankError { throw e } catch { throw Self.storeError(error, configuration) }
    }

    /// A transaction.
    @discardableResult
    func write<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws(BankError) -> T {
        do {
            return try await connection { connection in
                try await connection.query("BEGIN", logger: self.logger)
                do {
                    let value = try await body(connection)
                    try await connection.query("COMMIT", logger: self.logger)
                    return value
                } catch {
                    _ = try? await connection.query("ROLLBACK", logger: self.logger)
                    throw error
                }
            }
        } catch let e as BankError { throw e } catch { throw Self.storeError(error, configuration) }
    }

    /// Runs `body` on a pooled connection. A database that gives no connection within
    /// ``connectionWait`` is refused as unreachable (PostgresNIO itself keeps retrying, unbounded);
    /// once `body` runs, it is never cut short.
    func connection<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        let started = StartedFlag()
        return try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask {
                try await self.client.withConnection { connection in
                    started.value.store(true, ordering: .relaxed)
                    return try await body(connection)
                }
            }
            group.addTask {
                try await Task.sleep(for: self.connectionWait)
                return nil
            }
            while let next = try await group.next() {
                if let value = next {
                    group.cancelAll()
                    return value
                }
                if !started.value.load(ordering: .relaxed) {
                    group.cancelAll()
                    throw BankError(
                        BankError.store, status: 503, "bank database (\(configuration.description)) unreachable: no connection within \(self.connectionWait)")
                }
            }
            throw BankError(BankError.store, status: 500, "bank database (\(configuration.description)): the request ended without an answer")
        }
    }

    /// 503 for a database the receiver cannot reach (the gateway retries), 500 for anything else.
    static func storeError(_ error: any Error, _ configuration: PostgresBankConfiguration) -> BankError {
        if let e = error as? BankError { return e }
        if let e = error as? PSQLError {
            if let state = e.serverInfo?[.sqlState], let message = e.serverInfo?[.message] {
                return BankError(BankError.store, status: 500, "bank database (\(configuration.description)): \(message) (SQLSTATE \(state))")
            }
            return BankError(BankError.store, status: 503, "bank database (\(configuration.description)) unreachable: \(e.code)\(e.underlying.map { ": \($0)" } ?? "")")
        }
        return BankError(BankError.store, status: 500, "bank database (\(configuration.description)): \(error)")
    }
}

/// An upload waiting for a writer.
struct PendingUpload: Sendable {
    let batch: VerifiedBatch
    let records: [EvidenceRecord]
    let device: EnrolledDevice
    let nowMs: Int64
    let signReceipt: @Sendable (Receipt) -> String
}

struct QueuedUpload: Sendable {
    let upload: PendingUpload
    let done: @Sendable (Result<IngestResult, BankError>) -> Void
}

/// The uploads waiting for this receiver's writers; a writer takes every upload queued while it was
/// busy (up to a group's size). A lock, not an actor: putting an upload in costs no task and no hop.
final class UploadQueue: Sendable {
    private struct State {
        var items: [QueuedUpload] = []
        var waiters: [CheckedContinuation<[QueuedUpload], Never>] = []
        var closed = false
    }

    private let state = Mutex(State())
    static let shuttingDown = BankError(BankError.store, status: 503, "the receiver is shutting down; send the batch again")

    func put(_ item: QueuedUpload) {
        let refused = state.withLock { s -> Bool in
            if s.closed { return true }
            if !s.waiters.isEmpty {
                s.waiters.removeFirst().resume(returning: [item])
            } else {
                s.items.append(item)
            }
            return false
        }
        if refused { item.done(.failure(Self.shuttingDown)) }
    }

    func take(max: Int) async -> [QueuedUpload] {
        await withCheckedContinuation { continuation in
            state.withLock { s in
                if !s.items.isEmpty {
                    let group = Array(s.items.prefix(max))
                    s.items.removeFirst(group.count)
                    continuation.resume(returning: group)
                } else if s.closed {
                    continuation.resume(returning: [])
                } else {
                    s.waiters.append(continuation)
                }
            }
        }
    }

    func close() {
        let left = state.withLock { s -> [QueuedUpload] in
            s.closed = true
            for waiter in s.waiters { waiter.resume(returning: []) }
            s.waiters = []
            defer { s.items = [] }
            return s.items
        }
        for item in left { item.done(.failure(Self.shuttingDown)) }
    }
}

final class StartedFlag: Sendable {
    let value = Atomic<Bool>(false)
}

final class CommitCounters: Sendable {
    private let state = Mutex((transactions: 0, uploads: 0))
    func add(uploads: Int) { state.withLock { $0.transactions += 1; $0.uploads += uploads } }
    var value: (transactions: Int, uploads: Int) { state.withLock { $0 } }
}
