import Foundation
import Logging
import VouchEvidence

/// Turns an uploaded batch file into a stored, receipted batch, or a precise refusal.
///
/// Order of checks (each refusal names the first one that failed): file shape → token shape and
/// `alg` → enrolled key by `kid` → not revoked → signature → manifest → record count, canonical
/// records, Merkle root → manifest device equals the key's device → record kinds → key rotation
/// proofs → key in force at this `bseq` and chain (inside the store's transaction).
public struct BankIngest: Sendable {
    public let store: any BankStore
    public let bankKey: SigningKey
    public let logger: Logger
    /// Per-device upload rate, checked after the key lookup and before the signature (nil: none).
    public let limiter: UploadRateLimiter?

    public init(store: any BankStore, bankKey: SigningKey, logger: Logger, limiter: UploadRateLimiter? = nil) {
        self.store = store
        self.bankKey = bankKey
        self.logger = logger
        self.limiter = limiter
    }

    public func ingest(file: some Collection<UInt8>, nowMs: Int64 = Int64(Date().timeIntervalSince1970 * 1000)) throws(BankError) -> IngestResult {
        let entry: BatchFile.Entry
        do { entry = try BatchFile.decodeOne(file) } catch { throw BankError.from(error) }
        return try ingest(token: entry.token, records: entry.records, nowMs: nowMs)
    }

    public func ingest(_ batch: SealedBatch, nowMs: Int64 = Int64(Date().timeIntervalSince1970 * 1000)) throws(BankError) -> IngestResult {
        try ingest(token: batch.token, records: batch.records, nowMs: nowMs)
    }

    /// The synchronous path, for tools and tests on an in-process store (a networked store refuses it
    /// with `E_STORE`: use ``ingestAsync(file:nowMs:)``).
    public func ingest(token: String, records lines: [[UInt8]], nowMs: Int64 = Int64(Date().timeIntervalSince1970 * 1000)) throws(BankError) -> IngestResult {
        guard let store = store as? any SynchronousBankStore else {
            throw BankError(BankError.store, status: 500, "this bank store answers asynchronously only; ingest through ingestAsync")
        }
        let kid = try Self.kid(token)
        let checked = try check(token: token, records: lines, device: try store.device(kid: kid), kid: kid, nowMs: nowMs)
        let result = try store.accept(checked.batch, records: checked.records, device: checked.device, nowMs: nowMs, signReceipt: signer)
        log(result, checked)
        return result
    }

    /// The same for the HTTP route: verification on the caller's task, storage without holding a
    /// thread (the store's writer commits uploads that arrive together in one transaction).
    public func ingestAsync(file: [UInt8], nowMs: Int64 = Int64(Date().timeIntervalSince1970 * 1000)) async throws(BankError) -> IngestResult {
        let entry: BatchFile.Entry
        do { entry = try BatchFile.decodeOne(file) } catch { throw BankError.from(error) }
        return try await ingestAsync(token: entry.token, records: entry.records, nowMs: nowMs)
    }

    public func ingestAsync(token: String, records lines: [[UInt8]], nowMs: Int64 = Int64(Date().timeIntervalSince1970 * 1000)) async throws(BankError) -> IngestResult {
        let kid = try Self.kid(token)
        let checked = try check(token: token, records: lines, device: try await store.device(kid: kid), kid: kid, nowMs: nowMs)
        let result = try await store.accept(checked.batch, records: checked.records, device: checked.device, nowMs: nowMs, signReceipt: signer)
        log(result, checked)
        return result
    }

    private var signer: @Sendable (Receipt) -> String {
        let key = bankKey
        return { receipt in receipt.sign(with: key).token }
    }

    struct Checked {
        let batch: VerifiedBatch
        let records: [EvidenceRecord]
        let device: EnrolledDevice
    }

    /// The signing key's id, from the token's header.
    static func kid(_ token: String) throws(BankError) -> String {
        let header: [String: JSONValue]
        do { header = try JWS.parse(token).header } catch { throw BankError.from(error) }
        guard let kid = header["kid"]?.stringValue else {
            throw BankError(EvidenceError.Code.malformedJWS.rawValue, status: 400, "JWS header has no kid")
        }
        return kid
    }

    /// Every check that needs no transaction, in the documented order; `device` is the store's
    /// answer for `kid`.
    func check(token: String, records lines: [[UInt8]], device: EnrolledDevice?, kid: String, nowMs: Int64) throws(BankError) -> Checked {
        guard let device else {
            throw BankError(BankError.unknownDevice, status: 401, "no device is enrolled with key \(kid); enroll it with `vouch-bank devices add`")
        }
        if let revoked = device.revokedAtMs, revoked <= nowMs {
            throw BankError(BankError.revokedDevice, status: 403, "device \(device.id) was revoked")
        }
        if let limiter, let retry = limiter.take(device.id, nowMs: nowMs) {
            throw BankError(
                BankError.rateLimited, status: 429,
                "device \(device.id) uploads faster than \(limiter.perSecond) batches/s (burst \(Int(limiter.burst))); retry in \(retry) s", retryAfterSeconds: retry)
        }
        let batch: VerifiedBatch
        let records: [EvidenceRecord]
        do { batch = try VerifiedBatch.verify(token: token, records: lines, key: device.key) } catch { throw BankError.from(error) }
        guard batch.payload.device == device.id else {
            throw BankError(BankError.deviceMismatch, status: 401, "payload names device \(batch.payload.device) but is signed with the key of \(device.id)")
        }
        do { records = try batch.typedRecords() } catch { throw BankError.from(error) }
        for case .keyRotation(let rotation) in records {
            do { try rotation.verifyProof(device: device.id, oldKid: device.kid) } catch { throw BankError.from(error) }
        }
        return Checked(batch: batch, records: records, device: device)
    }

    private func log(_ result: IngestResult, _ checked: Checked) {
        let (records, device) = (checked.records, checked.device)
        switch result.verdict {
        case .accepted:
            let events = records.compactMap { if case .event(let e) = $0 { e } else { nil } }
            var line = "accepted batch \(result.bseq) from \(device.id): signature and chain verified, \(records.count) records"
            for e in events {
                line += "; event \(e.rule) \(e.phase == .start ? "started" : "ended") on \(e.channel) at \(Self.iso(e.startWallMs))"
                if e.phase == .end { line += ", lasted \(e.durationMs / 1000) s" }
            }
            logger.info("\(line)")
            if let newKid = result.rotatedTo {
                logger.notice("device \(device.id) rotated its key in batch \(result.bseq): \(device.kid) → \(newKid); later batches must be signed by the new key")
            }
            if let missing = result.missingRecords {
                logger.warning("device \(device.id): records \(missing.lowerBound)–\(missing.upperBound) never arrived (deleted or lost before batch \(result.bseq))")
            }
        case .duplicate:
            logger.info("batch \(result.bseq) from \(device.id) was already accepted: identical resend, nothing stored")
        }
    }

    static func iso(_ ms: Int64) -> String {
        let f = ISO8601DateFormatter()
        return f.string(from: Date(timeIntervalSince1970: Double(ms) / 1000))
    }
}
