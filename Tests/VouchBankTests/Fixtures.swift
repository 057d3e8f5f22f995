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

    static func summaries(_ range: ClosedRange<Int64>) -> [EvidenceRecord] { range.map { summary(rseq: $0) } }

    static func payload(
        device: String, bseq: Int64, prev: String, records: [EvidenceRecord], receipt: String? = nil
    ) -> BatchPayload {
        BatchPayload(
            device: device, bseq: bseq, prev: prev, bootId: "boot-0001", bootCount: 1, sealedWallMs: t0 + bseq * 60_000,
            sealedMonoMs: 60_000 + bseq * 60_000, timeQuality: .synchronized, records: records, receipt: receipt)
    }

    /// Splits a token into its three base64url parts.
    static func parts(_ token: String) -> [String] { token.split(separator: ".", omittingEmptySubsequences: false).map(String.init) }

    static func decodedPayload(_ token: String) throws -> JSONValue {
        let p = parts(token)
        guard p.count == 3, let bytes = Base64URL.decode(p[1]) else { throw FixtureError("not a JWS: \(token.prefix(40))") }
        return try CanonicalJSON.decode(bytes)
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
    private(set) var bseq: Int64 = 0
    private(set) var prev: String = Digest256.zeroHex
    private(set) var nextRseq: Int64 = 1
    private(set) var batches: [SealedBatch] = []

    init(_ device: TestDevice) {
        self.device = device
        payloadDevice = device.id
    }

    /// Seals the next batch with `count` summaries (rseq continuing), or the given records.
    @discardableResult
    mutating func next(records: [EvidenceRecord]? = nil, count: Int = 3, receipt: String? = nil) -> SealedBatch {
        let recs = records ?? Fixture.summaries(nextRseq...(nextRseq + Int64(count) - 1))
        if let last = recs.last?.stamp.rseq { nextRseq = max(nextRseq, last + 1) }
        bseq += 1
        let sealed = SealedBatch.seal(Fixture.payload(device: payloadDevice, bseq: bseq, prev: prev, records: recs, receipt: receipt), key: device.key)
        prev = sealed.signingInputHash
        batches.append(sealed)
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

    func post(_ token: String, contentType: String = "application/jose") async throws -> BankReply {
        try await post(body: ByteBuffer(string: token), contentType: contentType)
    }

    func post(body: ByteBuffer, contentType: String?) async throws -> BankReply {
        var headers: HTTPFields = [:]
        if let contentType { headers[.contentType] = contentType }
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
