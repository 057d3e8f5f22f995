import AsyncHTTPClient
import CompressNIO
import Foundation
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization
import VouchCore
import VouchEvidence
import VouchStore

/// Seals outstanding records into signed batches and delivers them to the bank, in `bseq` order.
///
/// Invariants:
/// - A batch is sealed and stored before its first send; every resend sends the stored bytes.
/// - Batches go out strictly in `bseq` order; a failed send stops the round, so nothing overtakes it.
/// - A batch counts as delivered only when the bank's receipt names this device, this `bseq` and this
///   batch's signing input hash.
/// - Failures are retried with exponential backoff and full jitter, capped; nothing is dropped. A TLS failure
///   (`E_UPLINK_TLS`) is retried the same way and never parks a batch: its cause is never in the batch.
/// - An HTTP client the uplink made itself (``withOwnHTTPClient(outbox:key:rotation:settings:clock:logger:)``)
///   is shut down when ``run()`` ends; one passed in belongs to the caller.
public final class Uplink: Service, Sendable {
    public struct Settings: Sendable {
        public var bankURL: String
        public var deviceID: String
        public var bootID: String
        public var bootCount: Int64
        public var batchInterval: Duration
        public var maxBatchRecords: Int
        public var requestTimeout: Duration
        public var backoff: Backoff
        /// When set, receipts must be signed by this key.
        public var bankKey: PublicJWK?
        /// How long a batch the bank refused for good (a 4xx) is parked before it is offered again: the
        /// cause is usually fixed at the bank (enrolment, revocation, limits), and the chain cannot go on
        /// past it, so it is retried slowly, never in a tight loop.
        public var parkInterval: Duration = .seconds(3_600)
        /// The longest `Retry-After` honoured.
        public var maxRetryAfter: Duration = .seconds(3_600)
        /// Delivered batches older than this (by their receipt) are pruned from the outbox, hourly.
        public var retention: Duration = .seconds(30 * 86_400)
        /// Sealed batches allowed to wait for the bank. Records beyond them stay unsealed in the outbox
        /// (stored, not yet signed), where the disk budget can still coarsen readings during a long
        /// outage; a signed batch never changes. They are sealed as the bank acknowledges the others.
        public var sealAhead: Int = 4
        /// `[bank] ca_file`, `client_cert`, `client_key`: what ``Uplink/withOwnHTTPClient(outbox:key:rotation:settings:clock:logger:)``
        /// builds its client from, and the files a TLS error names.
        public var tls = BankTLSSettings()

        public init(bankURL: String, deviceID: String, bootID: String, bootCount: Int64, batchInterval: Duration, maxBatchRecords: Int, requestTimeout: Duration, backoff: Backoff = Backoff(), bankKey: PublicJWK? = nil) {
            self.bankURL = bankURL
            self.deviceID = deviceID
            self.bootID = bootID
            self.bootCount = bootCount
            self.batchInterval = batchInterval
            self.maxBatchRecords = maxBatchRecords
            self.requestTimeout = requestTimeout
            self.backoff = backoff
            self.bankKey = bankKey
        }
    }

    /// A rotation to `newKey` recorded as record `rseq`: batches up to and including the one that
    /// holds it are signed by the current key, every later one by `newKey`.
    public struct PendingRotation: Sendable {
        public var newKey: SigningKey
        public var rseq: Int64
        /// Called once the rotation record is sealed, before anything is signed with the new key
        /// (the agent makes the new key its key file there).
        public var onSealed: @Sendable (_ bseq: Int64) -> Void
        public init(newKey: SigningKey, rseq: Int64, onSealed: @escaping @Sendable (_ bseq: Int64) -> Void) {
            self.newKey = newKey
            self.rseq = rseq
            self.onSealed = onSealed
        }
    }

    struct Signing {
        var key: SigningKey
        var rotation: PendingRotation?
    }

    let outbox: Outbox
    let settings: Settings
    let clock: any AgentClock
    let http: HTTPClient
    /// True when `http` was made here (for `settings.tls`): then it is shut down at the end of ``run()``.
    let ownsHTTPClient: Bool
    private let httpClientShutDown = Mutex(false)
    let logger: Logger
    private let wake = Mutex(false)
    private let signing: Mutex<Signing>
    /// The batch the bank refused for good, and when to offer it again.
    private let parked = Mutex<(bseq: Int64, until: ContinuousClock.Instant)?>(nil)
    private let lastPrune = Mutex<ContinuousClock.Instant?>(nil)
    private let deliveryState = Mutex(DeliveryState())

    /// How delivery has gone, for `vouch status`: wall times of the clock the records carry.
    public struct DeliveryState: Sendable, Equatable, Codable {
        /// The last round that tried to send (nil: nothing to send yet).
        public var lastAttemptWallMs: Int64?
        /// The last batch the bank acknowledged with a receipt, and when.
        public var lastReceiptBseq: Int64?
        public var lastReceiptWallMs: Int64?
        /// Why the last round failed; nil once a round succeeds.
        public var lastError: String?
        /// Rounds failed in a row.
        public var failures: Int = 0

        public init() {}
    }

    public var delivery: DeliveryState { deliveryState.withLock { $0 } }

    /// An uplink sending with `http`, which stays the caller's (it is not shut down here).
    public convenience init(
        outbox: Outbox, key: SigningKey, rotation: PendingRotation? = nil, settings: Settings, clock: any AgentClock, http: HTTPClient = .shared,
        logger: Logger
    ) {
        self.init(outbox: outbox, key: key, rotation: rotation, settings: settings, clock: clock, http: http, owned: false, logger: logger)
    }

    private init(
        outbox: Outbox, key: SigningKey, rotation: PendingRotation?, settings: Settings, clock: any AgentClock, http: HTTPClient, owned: Bool, logger: Logger
    ) {
        self.outbox = outbox
        self.signing = Mutex(Signing(key: key, rotation: rotation))
        self.settings = settings
        self.clock = clock
        self.http = http
        self.ownsHTTPClient = owned
        self.logger = logger
    }

    /// An uplink with an HTTP client of its own, which ``run()`` shuts down when it ends: TLS as
    /// `settings.tls` says (pinned CA, client certificate; the system trust store when no file is set),
    /// and no connection retries hidden inside the client. Those would keep backing off through a long
    /// outage and fail the first requests after the bank is back (measured: 16 failed attempts over
    /// 7.5 s after a simulated week); the uplink's own backoff decides when to try again. Throws
    /// `E_UPLINK_TLS` when a file does not load.
    public static func withOwnHTTPClient(
        outbox: Outbox, key: SigningKey, rotation: PendingRotation? = nil, settings: Settings, clock: any AgentClock, logger: Logger
    ) throws(UplinkError) -> Uplink {
        let client = try UplinkTLS.makeHTTPClient(settings.tls, bankURL: settings.bankURL)
        return Uplink(outbox: outbox, key: key, rotation: rotation, settings: settings, clock: clock, http: client, owned: true, logger: logger)
    }

    /// Shuts down the HTTP client this uplink made, once; does nothing for a client passed in.
    public func shutdownHTTPClient() async {
        guard ownsHTTPClient, httpClientShutDown.withLock({ done in defer { done = true }; return !done }) else { return }
        do { try await http.shutdown() } catch { logger.warning("shutting down the uplink's HTTP client: \(error)") }
    }

    /// True once ``shutdownHTTPClient()`` shut down the client this uplink made.
    var isHTTPClientShutDown: Bool { ownsHTTPClient && httpClientShutDown.withLock { $0 } }

    deinit {
        // A safety net for an uplink that never ran (the client asserts it was shut down): start the shutdown
        // without waiting for it.
        if ownsHTTPClient, httpClientShutDown.withLock({ done in defer { done = true }; return !done }) {
            http.shutdown { _ in }
        }
    }

    /// The key the next batch will be signed with.
    public var currentKey: SigningKey { signing.withLock { $0.key } }

    /// Asks for a seal-and-send round now (e.g. an event was detected) instead of at the next interval.
    public func sendSoon() { wake.withLock { $0 = true } }

    // MARK: sealing

    /// Seals outstanding records into batches of at most `maxBatchRecords`: all of them, or (with
    /// `ahead`) only while fewer than `ahead` sealed batches wait for the bank. Sealing is synchronous
    /// and the outbox serialises writers, so two rounds never interleave.
    @discardableResult
    public func sealPending(ahead: Int? = nil) throws(StoreError) -> [SealedBatch] {
        var sealed: [SealedBatch] = []
        var waiting = try ahead.map { _ throws(StoreError) in try outbox.undeliveredCount() } ?? 0
        while ahead.map({ waiting < $0 }) ?? true {
            waiting += 1
            let (key, rotation) = signing.withLock { ($0.key, $0.rotation) }
            let sealer = { (input: Outbox.SealInput) in self.seal(input, key: key) }
            guard let batch = try outbox.sealNext(maxRecords: settings.maxBatchRecords, throughRseq: rotation?.rseq, seal: sealer) else {
                if let rotation {
                    switch try outbox.keyRotationState(newKid: rotation.newKey.kid) {
                    case .sealed(_, let bseq):
                        // Sealed in an earlier round that stopped before switching: switch now.
                        switchKey(to: rotation, bseq: bseq)
                        continue
                    case .recorded(let rseq) where rseq == rotation.rseq:
                        break
                    case let state:
                        // Never switch without a sealed rotation: the bank would not know the new key.
                        logger.error("key rotation to \(rotation.newKey.kid) expected as record \(rotation.rseq), outbox says \(state); keeping the current key")
                    }
                }
                break
            }
            sealed.append(batch)
            // After the commit (the "sealed batch" line above is logged while the transaction is open).
            logger.debug("committed batch \(batch.bseq)")
            if let rotation, case .sealed(_, let bseq) = try outbox.keyRotationState(newKid: rotation.newKey.kid) {
                switchKey(to: rotation, bseq: bseq)
            }
        }
        return sealed
    }

    private func switchKey(to rotation: PendingRotation, bseq: Int64) {
        signing.withLock { state in
            state.key = rotation.newKey
            state.rotation = nil
        }
        logger.notice("key rotation sealed in batch \(bseq), signed by the old key; later batches are signed by \(rotation.newKey.kid)")
        rotation.onSealed(bseq)
    }

    func seal(_ input: Outbox.SealInput, key: SigningKey) -> SealedBatch {
        let now = clock.now()
        let payload = BatchPayload(
            device: settings.deviceID, bseq: input.bseq, prev: input.prev, bootId: settings.bootID, bootCount: settings.bootCount,
            sealedWallMs: now.wallMs, sealedMonoMs: now.monoMs, timeQuality: now.quality, records: input.records, receipt: input.receiptHash)
        let batch = SealedBatch.seal(payload, records: input.records, key: key)
        var kinds: [String: Int] = [:]
        for r in input.records { kinds[r.kind, default: 0] += 1 }
        let breakdown = kinds.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
        logger.info(
            "sealed batch \(input.bseq): \(input.records.count) records (\(breakdown)), \(batch.file.count) bytes, signed by \(key.kid.prefix(12))…",
            metadata: ["bseq": "\(input.bseq)"])
        return batch
    }

    // MARK: delivery

    public enum SendOutcome: Sendable, Equatable {
        case delivered(count: Int)
        case failed(delivered: Int, reason: String)
    }

    /// Sends undelivered batches in order until all are delivered or one fails.
    public func sendPending() async -> SendOutcome {
        let result = await deliver()
        if let failure = result.failure { return .failed(delivered: result.delivered, reason: failure.error.description) }
        return .delivered(count: result.delivered)
    }

    struct DeliveryResult {
        var delivered: Int
        var failure: (bseq: Int64, error: UplinkError)?
    }

    func deliver() async -> DeliveryResult {
        var delivered = 0
        while true {
            let batches: [SealedBatch]
            do { batches = try outbox.undelivered(limit: 16) } catch {
                return DeliveryResult(delivered: delivered, failure: (0, UplinkError(.store, error.description)))
            }
            if batches.isEmpty { return DeliveryResult(delivered: delivered, failure: nil) }
            for batch in batches {
                do {
                    try await send(batch)
                    delivered += 1
                } catch {
                    try? outbox.noteAttempt(bseq: batch.bseq, error: error.description)
                    return DeliveryResult(delivered: delivered, failure: (batch.bseq, error))
                }
            }
        }
    }

    func send(_ batch: SealedBatch) async throws(UplinkError) {
        var request = HTTPClientRequest(url: settings.bankURL + "/v1/batches")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: BatchFile.mediaType)
        request.headers.add(name: "User-Agent", value: "vouch/\(VouchCoreInfo.agentVersion)")
        // gzip on the wire (the benchmark's figures are gzipped sizes); the stored bytes stay as signed.
        var plain = ByteBuffer(bytes: batch.file)
        if let compressed = try? plain.compress(with: .gzip()) {
            request.headers.add(name: "Content-Encoding", value: "gzip")
            request.body = .bytes(compressed)
        } else {
            request.body = .bytes(ByteBuffer(bytes: batch.file))
        }
        let status: UInt
        let body: ByteBuffer
        let retryAfter: String?
        do {
            let response = try await http.execute(request, timeout: .nanoseconds(Int64(settings.requestTimeout.components.seconds) * 1_000_000_000 + settings.requestTimeout.components.attoseconds / 1_000_000_000))
            status = response.status.code
            retryAfter = response.headers.first(name: "Retry-After")
            body = try await response.body.collect(upTo: 1 << 20)
        } catch {
            if let why = UplinkTLS.explain(error, bankURL: settings.bankURL, tls: settings.tls) {
                throw UplinkError(.tls, "batch \(batch.bseq): TLS with the bank failed: \(why)")
            }
            throw UplinkError(.unreachable, "batch \(batch.bseq): bank at \(settings.bankURL) unreachable: \(error)")
        }
        let text = String(buffer: body)
        guard status == 200 else {
            // 408, 429 and 5xx say "later"; any other 4xx says this batch will not be accepted as it stands.
            let transient = status >= 500 || status == 429 || status == 408
            let bankCode = (try? CanonicalJSON.decode(Array(text.utf8)))?.objectValue?["error"]?.objectValue?["code"]?.stringValue
            var error = UplinkError(transient ? .bankBusy : .rejected, "batch \(batch.bseq): bank answered HTTP \(status): \(text.prefix(300))")
            error.httpStatus = Int(status)
            error.bankCode = bankCode
            error.retryAfter = retryAfter.flatMap { RetryAfter.parse($0, now: Date()) }.map { min($0, settings.maxRetryAfter) }
            throw error
        }
        guard let answer = try? CanonicalJSON.decode(Array(text.utf8)).objectValue, let receiptToken = answer["receipt"]?.stringValue else {
            throw UplinkError(.badReceipt, "batch \(batch.bseq): bank answered 200 without a receipt: \(text.prefix(300))")
        }
        let receipt: Receipt
        let receiptHash: String
        do {
            if let bankKey = settings.bankKey {
                (receipt, receiptHash) = try Receipt.verify(receiptToken, bankKey: bankKey)
            } else {
                (receipt, receiptHash) = try Receipt.parseUnverified(receiptToken)
            }
        } catch {
            let why = settings.bankKey == nil ? "unreadable receipt" : "receipt does not verify with the bank key in [bank] receipt_key"
            throw UplinkError(.badReceipt, "batch \(batch.bseq): \(why): \(error)")
        }
        do { try receipt.check(device: settings.deviceID, bseq: batch.bseq, batch: batch.signingInputHash) } catch {
            throw UplinkError(.badReceipt, "batch \(batch.bseq): \(error)")
        }
        do { try outbox.markDelivered(bseq: batch.bseq, receiptToken: receiptToken, receiptHash: receiptHash) } catch {
            throw UplinkError(.store, "batch \(batch.bseq): receipt could not be stored: \(error)")
        }
        let verdict = answer["verdict"]?.stringValue ?? "accepted"
        let receivedAt = clock.now().wallMs
        deliveryState.withLock {
            $0.lastReceiptBseq = batch.bseq
            $0.lastReceiptWallMs = receivedAt
        }
        let receiptState = settings.bankKey == nil ? "receipt stored (unverified: no [bank] receipt_key)" : "receipt signature verified and stored"
        logger.info("bank \(verdict) batch \(batch.bseq): verified signature and chain; \(receiptState) (bank holds \(receipt.deviceLogSize) batches of \(settings.deviceID))", metadata: ["bseq": "\(batch.bseq)"])
    }

    // MARK: the service

    public func run() async throws {
        let stopping = Mutex(false)
        await withGracefulShutdownHandler {
            var failures = 0
            var nextRound = ContinuousClock.now.advanced(by: settings.batchInterval)
            while !stopping.withLock({ $0 }) && !Task.isCancelled {
                let due = ContinuousClock.now >= nextRound || wake.withLock { w in defer { w = false }; return w }
                if due {
                    let retryAt = await round(failures: &failures)
                    nextRound = retryAt ?? ContinuousClock.now.advanced(by: settings.batchInterval)
                }
                try? await Task.sleep(for: .milliseconds(200))
            }
            // Shutting down: the detectors have flushed, so seal what is left and try once to send it.
            // Whatever is not delivered stays sealed in the outbox for the next start.
            _ = await round(failures: &failures)
        } onGracefulShutdown: {
            stopping.withLock { $0 = true }
        }
        await shutdownHTTPClient()
    }

    /// One seal-and-send round; returns when to try again if sending failed. Seals at most
    /// `sealAhead` batches ahead of the bank and drains the backlog in `bseq` order, sealing more as
    /// batches are acknowledged, until everything is delivered or a send fails.
    func round(failures: inout Int) async -> ContinuousClock.Instant? {
        do { try sealPending(ahead: settings.sealAhead) } catch { logger.error("sealing failed: \(error)") }
        if let parked = parked.withLock({ $0 }), ContinuousClock.now < parked.until {
            return parked.until  // a batch the bank refused waits its turn; nothing can overtake it
        }
        var result = await deliver()
        while result.failure == nil {
            let more: [SealedBatch]
            do { more = try sealPending(ahead: settings.sealAhead) } catch {
                logger.error("sealing failed: \(error)")
                break
            }
            guard !more.isEmpty else { break }
            let next = await deliver()
            result.delivered += next.delivered
            result.failure = next.failure
        }
        if result.delivered > 0 {
            releaseQuarantine()
            pruneIfDue()
        }
        if result.delivered > 0 || result.failure != nil {
            let at = clock.now().wallMs
            deliveryState.withLock { state in
                state.lastAttemptWallMs = at
                state.lastError = result.failure.map { "\($0.error)" }
                state.failures = result.failure == nil ? 0 : state.failures + 1
            }
        }
        guard let failure = result.failure else {
            failures = 0
            parked.withLock { $0 = nil }
            return nil
        }
        if failure.error.isPermanent {
            quarantine(bseq: failure.bseq, error: failure.error)
            let until = ContinuousClock.now.advanced(by: settings.parkInterval)
            parked.withLock { $0 = (failure.bseq, until) }
            return until
        }
        failures += 1
        var delay = settings.backoff.delay(afterFailures: failures)
        if let retryAfter = failure.error.retryAfter, retryAfter > delay { delay = retryAfter }
        let retrying = "retrying in \(delay.formatted(.units(allowed: [.seconds, .milliseconds])))"
        if failure.error.code == .tls {
            // Not a passing outage: a certificate, a CA file or a name needs a technician. Nothing is dropped.
            logger.error("upload failed (attempt \(failures)): \(failure.error); the batch stays sealed, \(retrying)")
        } else {
            logger.warning("upload failed (attempt \(failures)): \(failure.error); \(retrying)")
        }
        return ContinuousClock.now.advanced(by: delay)
    }

    /// At most hourly: drops delivered batches past the retention (never undelivered ones).
    func pruneIfDue() {
        let due = lastPrune.withLock { last -> Bool in
            guard last.map({ ContinuousClock.now - $0 >= .seconds(3_600) }) ?? true else { return false }
            last = ContinuousClock.now
            return true
        }
        guard due else { return }
        let c = settings.retention.components
        let cutoff = clock.now().wallMs - (c.seconds * 1000 + c.attoseconds / 1_000_000_000_000_000)
        do {
            let pruned = try outbox.prune(deliveredBeforeMs: cutoff)
            if pruned.batches > 0 {
                logger.info("pruned \(pruned.batches) delivered batch(es) through \(pruned.throughBseq ?? 0) (\(pruned.records) records) past the retention")
            }
        } catch { logger.error("pruning the outbox failed: \(error)") }
    }

    /// A batch the bank refused for good: kept (never dropped, never re-signed), marked, recorded as an
    /// event in the chain, and offered again only after `parkInterval`.
    func quarantine(bseq: Int64, error: UplinkError) {
        let code = error.bankCode ?? "HTTP \(error.httpStatus.map(String.init) ?? "?")"
        let newly: Bool
        do { newly = try outbox.quarantine(bseq: bseq, code: code, reason: error.message, atMs: clock.now().wallMs) } catch {
            logger.error("could not mark batch \(bseq) quarantined: \(error)")
            return
        }
        logger.error(
            "the bank refused batch \(bseq) for good (\(code)): \(error.message). It stays sealed and is offered again every \(settings.parkInterval.formatted(.units(allowed: [.hours, .minutes, .seconds]))); later batches wait behind it. Fix the cause at the bank (enrolment, revocation, limits).")
        guard newly else { return }
        record(eventFor: bseq, code: code, phase: .start, detail: error.message)
    }

    private func releaseQuarantine() {
        guard let released = try? outbox.releaseQuarantines(), !released.isEmpty else { return }
        for (bseq, code) in released {
            logger.notice("batch \(bseq), refused before (\(code)), has now been accepted by the bank")
            record(eventFor: bseq, code: code, phase: .end, detail: "accepted by the bank")
        }
    }

    private func record(eventFor bseq: Int64, code: String, phase: EventRecord.Phase, detail: String) {
        let now = clock.now()
        let stamp = RecordStamp(rseq: 0, boot: now.bootCount, monoMs: now.monoMs, wallMs: now.wallMs, timeQuality: now.quality)
        let text =
            phase == .start
            ? "the bank refused batch \(bseq) (\(code)); delivery waits until the cause is fixed at the bank: \(detail)"
            : "batch \(bseq), refused before (\(code)), was accepted by the bank; delivery goes on"
        let event = EventRecord(
            stamp: stamp, eventId: "uplink-quarantine@\(bseq)", phase: phase, rule: "uplink-quarantine", ruleVersion: 1, channel: "uplink",
            severity: "high", startMonoMs: now.monoMs, startWallMs: now.wallMs, endMonoMs: phase == .end ? now.monoMs : nil,
            endWallMs: phase == .end ? now.wallMs : nil, durationMs: 0, unit: "", scale: 0, params: ["bseq": .int(bseq), "code": .string(code)],
            window: [], explanation: text)
        do { try outbox.append([.event(event)]) } catch { logger.error("could not record the quarantine event: \(error)") }
    }
}

/// `Retry-After` (RFC 9110 §10.2.3): delay-seconds or an HTTP-date.
public enum RetryAfter {
    public static func parse(_ value: String, now: Date) -> Duration? {
        let trimmed = value.trimmingCharacters(in: .whitespaces)
        if let seconds = Int64(trimmed), seconds >= 0 { return .seconds(seconds) }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        guard let date = formatter.date(from: trimmed) else { return nil }
        return .milliseconds(max(0, Int64(date.timeIntervalSince(now) * 1000)))
    }
}

/// Exponential backoff with full jitter (delay uniformly drawn from 0 … min(cap, base × 2^(n−1))).
public struct Backoff: Sendable, Equatable {
    public var base: Duration = .seconds(1)
    public var cap: Duration = .seconds(60)
    public init(base: Duration = .seconds(1), cap: Duration = .seconds(60)) {
        self.base = base
        self.cap = cap
    }

    public func ceiling(afterFailures n: Int) -> Duration {
        let exponent = min(max(n - 1, 0), 30)
        let grown = base * (1 << exponent)
        return min(grown, cap)
    }

    public func delay(afterFailures n: Int, using random: inout some RandomNumberGenerator) -> Duration {
        let c = ceiling(afterFailures: n).components
        let ceilingNs = c.seconds * 1_000_000_000 + c.attoseconds / 1_000_000_000
        return .nanoseconds(Int64.random(in: 0...max(ceilingNs, 0), using: &random))
    }

    public func delay(afterFailures n: Int) -> Duration {
        var rng = SystemRandomNumberGenerator()
        return delay(afterFailures: n, using: &rng)
    }
}

public struct UplinkError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: String, Sendable {
        case unreachable = "E_UPLINK_UNREACHABLE"
        case bankBusy = "E_UPLINK_BANK_BUSY"
        case rejected = "E_UPLINK_REJECTED"
        case badReceipt = "E_UPLINK_RECEIPT"
        case store = "E_UPLINK_STORE"
        /// The TLS handshake failed or the TLS files do not load: untrusted or expired bank certificate,
        /// a name mismatch, a client certificate refused or missing. Transient for delivery (retried).
        case tls = "E_UPLINK_TLS"
    }
    public let code: Code
    public let message: String
    /// The bank's answer, when it gave one.
    public var httpStatus: Int?
    public var bankCode: String?
    /// How long the bank asked to wait (capped).
    public var retryAfter: Duration?
    /// A 4xx other than 408/429: the bank will not accept this batch as it stands. Never a TLS failure.
    public var isPermanent: Bool { code == .rejected }
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }
    public var description: String { "\(code.rawValue): \(message)" }
}
