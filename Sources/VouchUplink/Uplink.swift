import AsyncHTTPClient
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
/// - Failures are retried with exponential backoff and full jitter, capped; nothing is dropped.
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
    let logger: Logger
    private let wake = Mutex(false)
    private let signing: Mutex<Signing>

    public init(
        outbox: Outbox, key: SigningKey, rotation: PendingRotation? = nil, settings: Settings, clock: any AgentClock, http: HTTPClient = .shared,
        logger: Logger
    ) {
        self.outbox = outbox
        self.signing = Mutex(Signing(key: key, rotation: rotation))
        self.settings = settings
        self.clock = clock
        self.http = http
        self.logger = logger
    }

    /// The key the next batch will be signed with.
    public var currentKey: SigningKey { signing.withLock { $0.key } }

    /// Asks for a seal-and-send round now (e.g. an event was detected) instead of at the next interval.
    public func sendSoon() { wake.withLock { $0 = true } }

    // MARK: sealing

    /// Seals every outstanding record into batches of at most `maxBatchRecords`. Sealing is
    /// synchronous and the outbox serialises writers, so two rounds never interleave.
    @discardableResult
    public func sealPending() throws(StoreError) -> [SealedBatch] {
        var sealed: [SealedBatch] = []
        while true {
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
        var delivered = 0
        while true {
            let batches: [SealedBatch]
            do { batches = try outbox.undelivered(limit: 16) } catch { return .failed(delivered: delivered, reason: error.description) }
            if batches.isEmpty { return .delivered(count: delivered) }
            for batch in batches {
                do {
                    try await send(batch)
                    delivered += 1
                } catch {
                    try? outbox.noteAttempt(bseq: batch.bseq, error: error.description)
                    return .failed(delivered: delivered, reason: error.description)
                }
            }
        }
    }

    func send(_ batch: SealedBatch) async throws(UplinkError) {
        var request = HTTPClientRequest(url: settings.bankURL + "/v1/batches")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: BatchFile.mediaType)
        request.headers.add(name: "User-Agent", value: "vouch/\(VouchCoreInfo.agentVersion)")
        request.body = .bytes(ByteBuffer(bytes: batch.file))
        let status: UInt
        let body: ByteBuffer
        do {
            let response = try await http.execute(request, timeout: .nanoseconds(Int64(settings.requestTimeout.components.seconds) * 1_000_000_000 + settings.requestTimeout.components.attoseconds / 1_000_000_000))
            status = response.status.code
            body = try await response.body.collect(upTo: 1 << 20)
        } catch {
            throw UplinkError(.unreachable, "batch \(batch.bseq): bank at \(settings.bankURL) unreachable: \(error)")
        }
        let text = String(buffer: body)
        guard status == 200 else {
            throw UplinkError(status >= 500 || status == 429 ? .bankBusy : .rejected, "batch \(batch.bseq): bank answered HTTP \(status): \(text.prefix(300))")
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
    }

    /// One seal-and-send round; returns when to retry if sending failed.
    func round(failures: inout Int) async -> ContinuousClock.Instant? {
        do { try sealPending() } catch { logger.error("sealing failed: \(error)") }
        switch await sendPending() {
        case .delivered:
            failures = 0
            return nil
        case .failed(_, let reason):
            failures += 1
            let delay = settings.backoff.delay(afterFailures: failures)
            logger.warning("upload failed (attempt \(failures)): \(reason); retrying in \(delay.formatted(.units(allowed: [.seconds, .milliseconds])))")
            return ContinuousClock.now.advanced(by: delay)
        }
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
    }
    public let code: Code
    public let message: String
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }
    public var description: String { "\(code.rawValue): \(message)" }
}
