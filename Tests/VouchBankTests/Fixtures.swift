import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import VouchBank
@testable import VouchEvidence

/// Test data: device keys, enrollments, records and chains of sealed batches.
enum Fixture {
    /// 2025-06-15T15:06:40Z, a fixed wall clock for records.
    static let t0: Int64 = 1_750_000_000_000

    static func stamp(_ rseq: Int64) -> RecordStamp {
        RecordStamp(rseq: rseq, boot: 1, monoMs: 60_000 + rseq * 1_000, wallMs: t0 + rseq * 1_000, timeQuality: .synchronized)
    }

    static func summary(rseq: Int64, last: Int64 = 2_150) -> EvidenceRecord {
        .summary(
            ReadingSummary(
                stamp: stamp(rseq), channel: "press.current", intervalMs: 60_000, unit: "A", scale: -2, count: 60, errors: 0,
                min: 2_000, max: 2_300, mean: 2_140, last: last, lastError: nil))
    }

    static let eventStartMono: Int64 = 120_000
    static let eventStartWall: Int64 = t0 + 120_000

    static func eventStart(rseq: Int64, eventId: String = "1-120000-stoppage-press.current") -> EvidenceRecord {
        .event(
            EventRecord(
                stamp: stamp(rseq), eventId: eventId, phase: .start, rule: "stoppage", ruleVersion: 1, channel: "press.current",
                severity: "warning", startMonoMs: eventStartMono, startWallMs: eventStartWall, endMonoMs: nil, endWallMs: nil,
                durationMs: 30_000, unit: "A", scale: -2, params: ["below": 50, "for_ms": 30_000],
                window: [
                    WindowSample(monoMs: eventStartMono - 1_000, wallMs: eventStartWall - 1_000, value: 2_100),
                    WindowSample(monoMs: eventStartMono, wallMs: eventStartWall, value: 10),
                    WindowSample(monoMs: eventStartMono + 1_000, wallMs: eventStartWall + 1_000, value: nil),
                ],
                explanation: "press current below 0.50 A for 30 s"))
    }

    static func eventEnd(rseq: Int64, durationMs: Int64, eventId: String = "1-120000-stoppage-press.current") -> EvidenceRecord {
        .event(
            EventRecord(
                stamp: stamp(rseq), eventId: eventId, phase: .end, rule: "stoppage", ruleVersion: 1, channel: "press.current",
                severity: "warning", startMonoMs: eventStartMono, startWallMs: eventStartWall,
                endMonoMs: eventStartMono + durationMs, endWallMs: eventStartWall + durationMs, durationMs: durationMs,
                unit: "A", scale: -2, params: ["below": 50, "for_ms": 30_000], window: [],
                explanation: "press stopped for \(durationMs / 1000) s"))
    }

    /// "I am alive; you will hear from me at least every `intervalMs`."
    static func heartbeat(rseq: Int64, intervalMs: Int64) -> EvidenceRecord {
        .heartbeat(Heartbeat(stamp: stamp(rseq), intervalMs: intervalMs, uptimeMs: rseq * 1_000, backlog: 0))
    }

    /// A key rotation record of `device` from `oldKid` to `newKey`. `proofSigner` signs the proof
    /// (the new key when honest).
    static func rotation(rseq: Int64, device: String, oldKid: String, newKey: SigningKey, proofSigner: SigningKey? = nil) -> EvidenceRecord {
        let signer = proofSigner ?? newKey
        let proof: String
        if signer.kid == newKey.kid {
            proof = KeyRotation.proof(device: device, oldKid: oldKid, newKey: newKey)
        } else {
            // Same payload as an honest proof, signed (and kid'ed) by someone else.
            let payload: JSONValue = ["dev": .string(device), "old": .string(oldKid), "new": .string(newKey.kid)]
            proof = JWS.sign(payload: CanonicalJSON.encode(payload), key: signer, typ: KeyRotation.proofType).token
        }
        return .keyRotation(KeyRotation(stamp: stamp(rseq), newKey: newKey.publicJWK, proof: proof))
    }

    static func summaries(_ range: ClosedRange<Int64>) -> [EvidenceRecord] { range.map { summary(rseq: $0) } }

    static func payload(
        device: String, bseq: Int64, prev: String, records: [EvidenceRecord], receipt: String? = nil
    ) -> BatchPayload {
        BatchPayload(
            device: device, bseq: bseq, prev: prev, bootId: "boot-0001", bootCount: 1, sealedWallMs: t0 + bseq * 60_000,
            sealedMonoMs: 60_000 + bseq * 60_000, timeQuality: .synchronized, records: records, receipt: receipt)
    }

    /// Seals a batch whose manifest is built from `records` and carries the same records.
    static func seal(device: String, bseq: Int64, prev: String, records: [EvidenceRecord], key: SigningKey) -> SealedBatch {
        SealedBatch.seal(payload(device: device, bseq: bseq, prev: prev, records: records), records: records, key: key)
    }

    /// Splits a token into its three base64url parts.
    static func parts(_ token: String) -> [String] { token.split(separator: ".", omittingEmptySubsequences: false).map(String.init) }

    static func decodedPayload(_ token: String) throws -> JSONValue {
        let p = parts(token)
        guard p.count == 3, let bytes = Base64URL.decode(p[1]) else { throw FixtureError("not a JWS: \(token.prefix(40))") }
        return try CanonicalJSON.decode(bytes)
    }

    /// The `kid` in a token's header.
    static func kid(_ token: String) throws -> String {
        guard let kid = try JWS.parse(token).header["kid"]?.stringValue else { throw FixtureError("no kid in \(token.prefix(40))") }
        return kid
    }

    /// Record line `index` decoded, `edit` applied, and re-encoded canonically.
    static func editRecord(_ line: [UInt8], _ edit: (inout [JSONValue]) -> Void) throws -> [UInt8] {
        guard var items = try CanonicalJSON.decode(line).arrayValue else { throw FixtureError("record is not an array") }
        edit(&items)
        return CanonicalJSON.encode(.array(items))
    }
}

extension SealedBatch {
    /// The same manifest (token, hash) with other record lines: what an editor of the file makes.
    func withRecords(_ lines: [[UInt8]]) -> SealedBatch {
        SealedBatch(bseq: bseq, token: token, signingInputHash: signingInputHash, records: lines)
    }

    /// The same record lines under another token (re-encoded signature, edited manifest…).
    func withToken(_ token: String) -> SealedBatch {
        SealedBatch(bseq: bseq, token: token, signingInputHash: signingInputHash, records: records)
    }
}

/// Tokens built by hand, for what `JWS.sign` refuses to produce.
enum HandToken {
    /// `header.payload.signature` with `signer`'s ES256 signature over exactly this signing input,
    /// whatever the header says (e.g. another key's kid).
    static func sign(header: JSONValue, payload: [UInt8], signer: SigningKey) throws -> String {
        let input = Base64URL.encode(CanonicalJSON.encode(header)) + "." + Base64URL.encode(payload)
        // `privateKey` is internal to VouchEvidence (hence @testable): the key object of `signer`.
        let signature = try signer.privateKey.signature(for: Array(input.utf8)).rawRepresentation
        return input + "." + Base64URL.encode(signature)
    }

    /// The token with its payload part replaced by `payload`, header and signature unchanged.
    static func replacingPayload(of token: String, with payload: JSONValue) -> String {
        let p = Fixture.parts(token)
        return p[0] + "." + Base64URL.encode(CanonicalJSON.encode(payload)) + "." + p[2]
    }

    /// The token with one manifest member changed, header and signature unchanged.
    static func editingManifest(of token: String, _ edit: (inout [String: JSONValue]) -> Void) throws -> String {
        guard var manifest = try Fixture.decodedPayload(token).objectValue else { throw FixtureError("manifest is not an object") }
        edit(&manifest)
        return replacingPayload(of: token, with: .object(manifest))
    }
}

struct FixtureError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// A gateway: its id and key, and the chain it has sealed so far.
struct TestDevice: Sendable {
    let id: String
    let key: SigningKey

    init(id: String = "acme-press-\(UUID().uuidString.prefix(8).lowercased())", key: SigningKey = .generate()) {
        self.id = id
        self.key = key
    }

    func enrollment(nowMs: Int64 = Fixture.t0) -> EnrolledDevice { EnrolledDevice(id: id, key: key.publicJWK, enrolledAtMs: nowMs) }

    /// The document `vouch enroll` prints (see DeviceKeyFile.enrollmentDocument).
    var enrollmentDocument: JSONValue {
        ["device": .string(id), "kid": .string(key.kid), "jwk": key.publicJWK.json, "alg": "ES256", "created_ms": .int(Fixture.t0)]
    }
}

/// Builds a device's chain of sealed batches: bseq 1, 2, …; prev = previous signingInputHash.
struct ChainBuilder {
    let device: TestDevice
    var payloadDevice: String
    /// The key the next batch is signed with (the device key until a rotation).
    var key: SigningKey
    private(set) var bseq: Int64 = 0
    private(set) var prev: String = Digest256.zeroHex
    private(set) var nextRseq: Int64 = 1
    private(set) var batches: [SealedBatch] = []

    init(_ device: TestDevice) {
        self.device = device
        payloadDevice = device.id
        key = device.key
    }

    /// Seals the next batch with `count` summaries (rseq continuing), or the given records.
    @discardableResult
    mutating func next(records: [EvidenceRecord]? = nil, count: Int = 3, receipt: String? = nil) -> SealedBatch {
        let recs = records ?? Fixture.summaries(nextRseq...(nextRseq + Int64(count) - 1))
        if let last = recs.last?.stamp.rseq { nextRseq = max(nextRseq, last + 1) }
        bseq += 1
        let sealed = SealedBatch.seal(
            Fixture.payload(device: payloadDevice, bseq: bseq, prev: prev, records: recs, receipt: receipt), records: recs, key: key)
        prev = sealed.signingInputHash
        batches.append(sealed)
        return sealed
    }

    /// Seals the next batch with `count` summaries and then a rotation record to `newKey`, signed by
    /// the current key; later batches are signed by `newKey`.
    @discardableResult
    mutating func rotate(to newKey: SigningKey, count: Int = 2, proofSigner: SigningKey? = nil) -> SealedBatch {
        var recs = count > 0 ? Fixture.summaries(nextRseq...(nextRseq + Int64(count) - 1)) : []
        recs.append(Fixture.rotation(rseq: nextRseq + Int64(count), device: device.id, oldKid: key.kid, newKey: newKey, proofSigner: proofSigner))
        let sealed = next(records: recs)
        key = newKey
        return sealed
    }

    /// A chain of `n` batches of `perBatch` summaries each.
    static func chain(_ device: TestDevice, batches n: Int, perBatch: Int = 3) -> [SealedBatch] {
        var b = ChainBuilder(device)
        for _ in 0..<n { b.next(count: perBatch) }
        return b.batches
    }
}

/// A bank on a real SQLite file in its own temporary directory.
struct TestBank: Sendable {
    let directory: URL
    let path: String
    let store: SQLiteBankStore
    let bankKey: SigningKey
    let ingest: BankIngest
    let settings: BankServerSettings

    init(settings: BankServerSettings = BankServerSettings()) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("vouch-bank-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        path = directory.appendingPathComponent("bank.sqlite").path
        store = try SQLiteBankStore(path: path)
        bankKey = SigningKey.generate()
        var logger = Logger(label: "vouch-bank-test")
        logger.logLevel = .critical
        ingest = BankIngest(store: store, bankKey: bankKey, logger: logger)
        self.settings = settings
    }

    func enroll(_ device: TestDevice) throws { try store.enroll(device.enrollment()) }

    /// The refusal of `batch`, or nil when it was accepted (or a duplicate).
    func refusal(_ batch: SealedBatch, nowMs: Int64 = Fixture.t0) -> BankError? {
        do {
            _ = try ingest.ingest(batch, nowMs: nowMs)
            return nil
        } catch { return error }
    }

    /// The refusal of an uploaded file, or nil when it was accepted (or a duplicate).
    func refusal(file: [UInt8], nowMs: Int64 = Fixture.t0) -> BankError? {
        do {
            _ = try ingest.ingest(file: file, nowMs: nowMs)
            return nil
        } catch { return error }
    }

    var application: some ApplicationProtocol { Application(router: buildBankRouter(ingest: ingest, settings: settings)) }

    func remove() { try? FileManager.default.removeItem(at: directory) }

    /// Runs `body` with a bank, removing its files afterwards whatever happens.
    static func with<T>(
        settings: BankServerSettings = BankServerSettings(), _ body: (TestBank) async throws -> T
    ) async throws -> T {
        let bank = try TestBank(settings: settings)
        defer { bank.remove() }
        return try await body(bank)
    }

    /// Runs `body` with a router test client for this bank.
    func http<T: Sendable>(_ body: @escaping @Sendable (BankClient) async throws -> T) async throws -> T {
        try await application.test(.router) { client in try await body(BankClient(client: client)) }
    }
}

/// A bank answer: status code and JSON body.
struct BankReply: Sendable {
    let status: Int
    let body: JSONValue
    let text: String

    var verdict: String? { body.objectValue?["verdict"]?.stringValue }
    var receipt: String? { body.objectValue?["receipt"]?.stringValue }
    var bseq: Int64? { body.objectValue?["bseq"]?.intValue }
    var errorCode: String? { body.objectValue?["error"]?.objectValue?["code"]?.stringValue }
    var errorMessage: String? { body.objectValue?["error"]?.objectValue?["message"]?.stringValue }
}

struct BankClient: Sendable {
    let client: any TestClientProtocol

    /// Uploads a batch file, as the uplink does.
    func post(_ batch: SealedBatch, contentType: String? = BatchFile.mediaType) async throws -> BankReply {
        try await post(bytes: batch.file, contentType: contentType)
    }

    /// Uploads arbitrary text as a batch file.
    func post(text: String, contentType: String? = BatchFile.mediaType) async throws -> BankReply {
        try await post(body: ByteBuffer(string: text), contentType: contentType)
    }

    func post(bytes: [UInt8], contentType: String? = BatchFile.mediaType) async throws -> BankReply {
        try await post(body: ByteBuffer(bytes: bytes), contentType: contentType)
    }

    func post(body: ByteBuffer, contentType: String?, contentEncoding: String? = nil) async throws -> BankReply {
        var headers: HTTPFields = [:]
        if let contentType { headers[.contentType] = contentType }
        if let contentEncoding { headers[.contentEncoding] = contentEncoding }
        let response = try await client.executeRequest(uri: "/v1/batches", method: .post, headers: headers, body: body)
        return try Self.reply(response)
    }

    func get(_ uri: String) async throws -> BankReply {
        try Self.reply(try await client.executeRequest(uri: uri, method: .get, headers: [:], body: nil))
    }

    static func reply(_ response: TestResponse) throws -> BankReply {
        let text = String(buffer: response.body)
        let body = (try? CanonicalJSON.decode(Array(text.utf8))) ?? .null
        return BankReply(status: Int(response.status.code), body: body, text: text)
    }
}

/// Export streams for the offline verifier.
enum ExportStream {
    /// The batches' files concatenated, as `vouch-bank export` writes them, split again.
    static func entries(_ batches: [SealedBatch]) throws -> [BatchFile.Entry] {
        try BatchFile.decodeStream(batches.flatMap(\.file))
    }

    /// Verifies `batches` as one export file named `name`.
    static func verify(
        _ batches: [SealedBatch], device: EnrolledDevice, name: String = "export", expectedLast: Int64? = nil
    ) throws -> [OfflineVerifier.Verdict] {
        var verifier = OfflineVerifier(device: device)
        return verifier.verify([(name: name, entries: try entries(batches))], expectedLast: expectedLast)
    }
}

/// The code of the EvidenceError `body` throws; nil when it throws nothing (or something else).
func evidenceCode(_ body: () throws -> Void) -> EvidenceError.Code? {
    do {
        try body()
        return nil
    } catch let e as EvidenceError { return e.code } catch { return nil }
}

/// The BankError `body` throws; nil when it throws nothing (or something else).
func bankError(_ body: () throws -> Void) -> BankError? {
    do {
        try body()
        return nil
    } catch let e as BankError { return e } catch { return nil }
}
