import Foundation
import GRDB
import Logging
import ServiceLifecycle
import VouchEvidence

/// Alerts: what a credit officer must hear of without asking. Recorded by the store, in the
/// transaction that accepted the batch (or found the incident), so none is lost to a crash between
/// storing and telling; delivered by ``AlertService`` to a command (`vouch-bank serve
/// --alert-command`), retried with backoff until the command succeeds.
///
/// Kinds: `event` (a start or end of an event whose severity is not `record`), `fork`, `record-gap`,
/// `silence` (a device quiet for more than twice its heartbeat; once per quiet spell).
public struct BankAlert: Sendable, Equatable {
    public var id: Int64
    public var kind: String
    public var device: String
    /// The JSON the command reads on its standard input.
    public var body: String
    public var attempts: Int64

    public init(id: Int64, kind: String, device: String, body: String, attempts: Int64) {
        self.id = id
        self.kind = kind
        self.device = device
        self.body = body
        self.attempts = attempts
    }
}

/// The alert queue a store keeps beside its batches. Several receivers may share one queue
/// (PostgreSQL): ``dueAlerts(nowMs:limit:)`` then hands each alert to one of them at a time.
public protocol AlertQueue: Sendable {
    /// Queues a `silence` alert for every device quiet now (once per quiet spell: keyed by its last batch).
    func queueSilenceAlerts(nowMs: Int64) async throws(BankError)
    /// Alerts due for delivery at `nowMs`, oldest first, each taken by this caller until it reports
    /// the outcome (or ``BankAlert/claimMs`` passes).
    func dueAlerts(nowMs: Int64, limit: Int) async throws(BankError) -> [BankAlert]
    func alertDelivered(_ id: Int64, nowMs: Int64) async throws(BankError)
    func alertFailed(_ id: Int64, error: String, retryAtMs: Int64) async throws(BankError)
}

extension BankAlert {
    /// How long a receiver holds an alert it took for delivery before another may take it: longer
    /// than the command may run.
    public static let claimMs: Int64 = 120_000

    /// The JSON of each kind of alert, the same whichever store queued it.
    public static func forkBody(device: String, bseq: Int64, refusal: BankError) -> JSONValue {
        ["kind": "fork", "device": .string(device), "bseq": .int(bseq), "code": .string(refusal.code), "message": .string(refusal.message)]
    }

    public static func recordGapBody(device: String, bseq: Int64, missing: ClosedRange<Int64>) -> JSONValue {
        [
            "kind": "record-gap", "device": .string(device), "bseq": .int(bseq), "from_rseq": .int(missing.lowerBound), "to_rseq": .int(missing.upperBound),
            "message": .string("records \(missing.lowerBound)-\(missing.upperBound) of \(device) never arrived (deleted or lost before batch \(bseq))"),
        ]
    }

    public static func eventBody(device: String, event e: EventRecord, bseq: Int64) -> JSONValue {
        [
            "kind": "event", "device": .string(device), "phase": .string(e.phase.rawValue), "event_id": .string(e.eventId),
            "rule": .string(e.rule), "channel": .string(e.channel), "severity": .string(e.severity), "start_wall_ms": .int(e.startWallMs),
            "end_wall_ms": e.endWallMs.map(JSONValue.int) ?? .null, "duration_ms": .int(e.durationMs), "message": .string(e.explanation),
            "bseq": .int(bseq),
        ]
    }

    public static func silenceBody(_ s: Silence) -> JSONValue {
        [
            "kind": "silence", "device": .string(s.device), "last_bseq": .int(s.lastBseq), "last_batch_at_ms": .int(s.lastBatchAtMs),
            "heartbeat_ms": .int(s.heartbeatMs), "silent_for_ms": .int(s.silentForMs),
            "message": .string("\(s.device) has sent nothing for \(s.silentForMs / 1000) s (its heartbeat is every \(s.heartbeatMs / 1000) s)"),
        ]
    }
}

extension SQLiteBankStore: AlertQueue {
    /// Queues an alert (`key` makes it once only: a second with the same kind, device and key is ignored).
    static func queueAlert(_ db: Database, kind: String, device: String, key: String, body: JSONValue, nowMs: Int64) throws {
        try db.execute(
            sql: "INSERT INTO alert(kind, device, key, body, created_at_ms, next_at_ms) VALUES(?, ?, ?, ?, ?, ?) ON CONFLICT(kind, device, key) DO NOTHING",
            arguments: [kind, device, key, CanonicalJSON.string(body), nowMs, nowMs])
    }

    /// Alerts due for delivery at `nowMs`, oldest first.
    public func dueAlerts(nowMs: Int64, limit: Int = 50) throws(BankError) -> [BankAlert] {
        // One receiver per SQLite file: nothing else takes alerts from this queue.
        try read { db in
            try Row.fetchAll(
                db, sql: "SELECT id, kind, device, body, attempts FROM alert WHERE delivered_at_ms IS NULL AND next_at_ms <= ? ORDER BY id LIMIT ?",
                arguments: [nowMs, limit]
            ).map { BankAlert(id: $0["id"], kind: $0["kind"], device: $0["device"], body: $0["body"], attempts: $0["attempts"]) }
        }
    }

    public func alertDelivered(_ id: Int64, nowMs: Int64) throws(BankError) {
        try write { db in try db.execute(sql: "UPDATE alert SET delivered_at_ms = ?, attempts = attempts + 1 WHERE id = ?", arguments: [nowMs, id]) }
    }

    public func alertFailed(_ id: Int64, error: String, retryAtMs: Int64) throws(BankError) {
        try write { db in
            try db.execute(sql: "UPDATE alert SET attempts = attempts + 1, next_at_ms = ?, last_error = ? WHERE id = ?", arguments: [retryAtMs, error, id])
        }
    }

    /// Queues a `silence` alert for every device quiet now (once per quiet spell: keyed by its last batch).
    public func queueSilenceAlerts(nowMs: Int64) throws(BankError) {
        let quiet = try silentDevices(nowMs: nowMs)
        guard !quiet.isEmpty else { return }
        try write { db in
            for s in quiet {
                try Self.queueAlert(db, kind: "silence", device: s.device, key: "bseq-\(s.lastBseq)", body: BankAlert.silenceBody(s), nowMs: nowMs)
            }
        }
    }
}

/// Delivers queued alerts to a command: `/bin/sh -c COMMAND` with the alert's JSON on standard input
/// (e.g. `curl -fsS -H 'Content-Type: application/json' --data-binary @- https://hooks.example/vouch`).
/// Exit status 0 is delivered; anything else (or 30 s without an answer) is retried after 1 s, 2 s,
/// 4 s… up to an hour between attempts, for as long as it takes.
public struct AlertService: Service {
    public let store: any AlertQueue
    public let command: String
    public let logger: Logger
    public static let commandTimeout: Duration = .seconds(30)

    public init(store: any AlertQueue, command: String, logger: Logger) {
        self.store = store
        self.command = command
        self.logger = logger
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            var lastSilenceCheck: Int64 = 0
            while !Task.isCancelled {
                let now = Int64(Date().timeIntervalSince1970 * 1000)
                if now - lastSilenceCheck >= 10_000 {
                    lastSilenceCheck = now
                    do { try await store.queueSilenceAlerts(nowMs: now) } catch { logger.error("could not check for silent devices: \(error)") }
                }
                let due: [BankAlert]
                do { due = try await store.dueAlerts(nowMs: now, limit: 50) } catch {
                    logger.error("could not read the alert queue: \(error)")
                    due = []
                }
                for alert in due {
                    let outcome = await Self.deliver(alert.body, command: command)
                    let at = Int64(Date().timeIntervalSince1970 * 1000)
                    do {
                        if let failure = outcome {
                            let wait = min(Int64(3_600_000), Int64(1_000) << min(alert.attempts, 12))
                            try await store.alertFailed(alert.id, error: failure, retryAtMs: at + wait)
                            logger.warning("alert \(alert.id) (\(alert.kind), \(alert.device)) not delivered (attempt \(alert.attempts + 1)): \(failure); retrying in \(wait / 1000) s")
                        } else {
                            try await store.alertDelivered(alert.id, nowMs: at)
                            logger.info("alert \(alert.id) (\(alert.kind), \(alert.device)) delivered")
                        }
                    } catch { logger.error("could not record the alert's delivery: \(error)") }
                }
                do { try await Task.sleep(for: .seconds(1)) } catch { return }
            }
        }
    }

    /// nil when the command took the alert (exit 0), else why not.
    static func deliver(_ body: String, command: String) async -> String? {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                let process = Process()
                process.executableURL = URL(fileURLWithPath: "/bin/sh")
                process.arguments = ["-c", command]
                let input = Pipe()
                let errors = Pipe()
                process.standardInput = input
                process.standardOutput = FileHandle.nullDevice
                process.standardError = errors
                let finished = DispatchSemaphore(value: 0)
                process.terminationHandler = { _ in finished.signal() }
                do { try process.run() } catch {
                    continuation.resume(returning: "cannot start /bin/sh: \(error)")
                    return
                }
                input.fileHandleForWriting.write(Data((body + "\n").utf8))
                try? input.fileHandleForWriting.close()
                let deadline = DispatchTime.now() + .seconds(Int(commandTimeout.components.seconds))
                if finished.wait(timeout: deadline) == .timedOut {
                    process.terminate()
                    continuation.resume(returning: "the command did not finish within \(commandTimeout)")
                    return
                }
                process.waitUntilExit()
                let stderr = String(decoding: errors.fileHandleForReading.availableData, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
                continuation.resume(returning: process.terminationStatus == 0 ? nil : "exit status \(process.terminationStatus)\(stderr.isEmpty ? "" : ": \(stderr.prefix(300))")")
            }
        }
    }
}
