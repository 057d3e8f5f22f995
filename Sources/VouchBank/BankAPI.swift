import Foundation
import Hummingbird
import NIOCore
import Synchronization
import VouchEvidence

/// The query and admin API (`/v1/devices…`, `/v1/events`, `/v1/incidents`) behind the API token, and
/// the public `/openapi.yaml` and `/metrics`. Described by `openapi.yaml` beside this file, which the
/// tests hold every answer to.
enum BankAPI {
    static let maxEnrollmentBytes = 64 * 1024

    /// Every path the bank serves and its methods, as in openapi.yaml (a test compares them through
    /// the 405 answers' Allow header): `{device}` matches one path segment.
    static let paths: [(template: [Substring], methods: [String])] = [
        ("/healthz", ["GET"]), ("/metrics", ["GET"]), ("/openapi.yaml", ["GET"]), ("/v1/batches", ["POST"]), ("/v1/devices", ["GET", "POST"]),
        ("/v1/devices/{device}", ["GET"]), ("/v1/devices/{device}/revoke", ["POST"]), ("/v1/devices/{device}/proof", ["GET"]),
        ("/v1/devices/{device}/summaries", ["GET"]), ("/v1/events", ["GET"]), ("/v1/incidents", ["GET"]), ("/v1/gaps", ["GET"]),
    ].map { ($0.0.split(separator: "/"), $0.1) }

    /// The methods `path` takes, or nil when the bank serves no such path.
    static func methods(path: String) -> [String]? {
        let parts = path.split(separator: "/")
        return paths.first { entry in
            entry.template.count == parts.count && zip(entry.template, parts).allSatisfy { $0 == "{device}" || $0 == $1 }
        }?.methods
    }

    static func register(on router: Router<BasicRequestContext>, ingest: BankIngest, settings: BankServerSettings, metrics: BankMetrics) {
        let store = ingest.store
        let token = settings.apiToken.map(APIToken.init)
        router.get("/openapi.yaml") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "application/yaml"],
                body: .init(byteBuffer: ByteBuffer(bytes: PackageResources.openapi_yaml)))
        }
        router.get("/metrics") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"], body: .init(byteBuffer: ByteBuffer(string: metrics.exposition())))
        }
        router.get("/v1/devices") { request, _ in
            try await answer(request, token) { () async throws(BankError) -> Response in
                let now = nowMs()
                var devices: [JSONValue] = []
                for d in try await store.devices() { devices.append(deviceJSON(d, chain: try await store.chainStatus(device: d.id, nowMs: now))) }
                return jsonResponse(.ok, ["devices": .array(devices)])
            }
        }
        router.post("/v1/devices") { request, _ in
            let body: ByteBuffer? = try? await request.body.collect(upTo: maxEnrollmentBytes)
            return try await answer(request, token) { () async throws(BankError) -> Response in
                try requireJSON(request)
                guard let body else {
                    throw BankError(BankError.tooLarge, status: 413, "an enrollment document is at most \(maxEnrollmentBytes) bytes")
                }
                let device = try EnrollmentDocument.parse(Array(body.readableBytesView), nowMs: nowMs())
                try await store.enroll(device)
                ingest.logger.notice("enrolled \(device.id) with key \(device.kid) through the API")
                let stored = try await store.device(id: device.id) ?? device
                return jsonResponse(.created, deviceJSON(stored, chain: try await store.chainStatus(device: device.id, nowMs: nowMs())))
            }
        }
        router.get("/v1/devices/:device") { request, context in
            try await answer(request, token) { () async throws(BankError) -> Response in
                let id = try deviceParameter(context)
                guard let device = try await store.device(id: id) else { throw BankError(BankError.notFound, status: 404, "no device \(id) is enrolled") }
                guard case .object(var value) = deviceJSON(device, chain: try await store.chainStatus(device: id, nowMs: nowMs())) else { return jsonResponse(.ok, .null) }
                value["keys"] = .array(
                    try await store.keys(device: id).map {
                        ["kid": .string($0.kid), "jwk": $0.key.json, "from_bseq": .int($0.keyFromBseq), "until_bseq": $0.keyUntilBseq.map(JSONValue.int) ?? .null]
                    })
                return jsonResponse(.ok, .object(value))
            }
        }
        router.post("/v1/devices/:device/revoke") { request, context in
            try await answer(request, token) { () async throws(BankError) -> Response in
                let id = try deviceParameter(context)
                let device = try await store.revoke(device: id, atMs: nowMs())
                ingest.logger.notice("revoked device \(id) through the API: its uploads are refused from now on")
                return jsonResponse(.ok, deviceJSON(device, chain: try await store.chainStatus(device: id, nowMs: nowMs())))
            }
        }
        router.get("/v1/devices/:device/proof") { request, context in
            try await answer(request, token) { () async throws(BankError) -> Response in
                let id = try deviceParameter(context)
                guard let text = request.uri.queryParameters["rseq"], let rseq = Int64(String(text)), rseq >= 1 else {
                    throw BankError(BankError.query, status: 400, "give the record as ?rseq=N, a whole number from 1")
                }
                guard try await store.device(id: id) != nil else { throw BankError(BankError.notFound, status: 404, "no device \(id) is enrolled") }
                return jsonResponse(.ok, try await store.inclusionProof(device: id, rseq: rseq).json)
            }
        }
        router.get("/v1/devices/:device/summaries") { request, context in
            try await answer(request, token) { () async throws(BankError) -> Response in
                let id = try deviceParameter(context)
                let query = request.uri.queryParameters
                let channel = query["channel"].map(String.init)
                if let channel, channel.isEmpty || channel.utf8.count > 128 { throw BankError(BankError.query, status: 400, "channel is 1 to 128 characters") }
                let from = try wholeNumber(query["from_ms"], "from_ms")
                let until = try wholeNumber(query["until_ms"], "until_ms")
                let after = try wholeNumber(query["after_rseq"], "after_rseq")
                if let from, let until, until <= from { throw BankError(BankError.query, status: 400, "until_ms (\(until)) must be after from_ms (\(from))") }
                var limit = maxSummaries
                if let text = query["limit"] {
                    guard let v = Int(String(text)), (1...maxSummaries).contains(v) else {
                        throw BankError(BankError.query, status: 400, "limit is \"\(text)\"; expected 1 to \(maxSummaries)")
                    }
                    limit = v
                }
                guard try await store.device(id: id) != nil else { throw BankError(BankError.notFound, status: 404, "no device \(id) is enrolled") }
                // One more than asked: whether the answer was cut short.
                let stored = try await store.records(device: id, kind: "sum", channel: channel, fromMs: from, untilMs: until, afterRseq: after, limit: limit + 1)
                var summaries: [JSONValue] = []
                for r in stored.prefix(limit) {
                    guard case .summary(let summary)? = try? EvidenceRecord(json: CanonicalJSON.decode(r.line)) else {
                        throw BankError(BankError.store, status: 500, "stored record \(r.rseq) of \(id) does not decode as a summary")
                    }
                    summaries.append(summary.json(bseq: r.bseq))
                }
                var answer: [String: JSONValue] = ["summaries": .array(summaries), "truncated": .bool(stored.count > limit)]
                if stored.count > limit, let last = stored.prefix(limit).last { answer["next_after_rseq"] = .int(last.rseq) }
                return jsonResponse(.ok, .object(answer))
            }
        }
        router.get("/v1/gaps") { request, _ in
            try await answer(request, token) { () async throws(BankError) -> Response in
                let device = try deviceFilter(request)
                let since = try wholeNumber(request.uri.queryParameters["since_ms"], "since_ms")
                let gaps = try await store.gaps(device: device, sinceMs: since)
                return jsonResponse(.ok, ["gaps": .array(gaps.map(\.json))])
            }
        }
        router.get("/v1/events") { request, _ in
            try await answer(request, token) { () async throws(BankError) -> Response in
                let query = request.uri.queryParameters
                let device = try deviceFilter(request)
                let status = query["status"].map(String.init)
                if let status, !["ongoing", "ended"].contains(status) {
                    throw BankError(BankError.query, status: 400, "status is \"\(status)\"; expected ongoing or ended")
                }
                let severity = query["severity"].map(String.init)
                if let severity, !["record", "warning", "alarm"].contains(severity) {
                    throw BankError(BankError.query, status: 400, "severity is \"\(severity)\"; expected record, warning or alarm")
                }
                var since: Int64?
                if let text = query["since_ms"] {
                    guard let v = Int64(String(text)) else { throw BankError(BankError.query, status: 400, "since_ms is \"\(text)\"; expected epoch milliseconds") }
                    since = v
                }
                let events = try await store.events(device: device).filter { e in
                    (status == nil || e.status == status) && (severity == nil || e.severity == severity) && (since.map { e.startWallMs >= $0 } ?? true)
                }
                return jsonResponse(.ok, ["events": .array(events.map(eventJSON))])
            }
        }
        router.get("/v1/incidents") { request, _ in
            try await answer(request, token) { () async throws(BankError) -> Response in
                let incidents = try await store.incidents(device: try deviceFilter(request), nowMs: nowMs())
                return jsonResponse(
                    .ok,
                    [
                        "incidents": .array(
                            incidents.map {
                                [
                                    "device": .string($0.device), "kind": .string($0.kind), "code": .string($0.code), "bseq": .int($0.bseq),
                                    "detail": .string($0.detail), "evidence": $0.evidence.map(JSONValue.string) ?? .null, "at_ms": .int($0.atMs),
                                ]
                            })
                    ])
            }
        }
    }

    /// Runs `body` once the request carries the API token; any refusal becomes its JSON error.
    static func answer(_ request: Request, _ token: APIToken?, _ body: () async throws(BankError) -> Response) async throws -> Response {
        do {
            try authorize(request, token)
            return try await body()
        } catch {
            return errorResponse(error)
        }
    }

    static func authorize(_ request: Request, _ token: APIToken?) throws(BankError) {
        guard let token else {
            throw BankError(BankError.apiDisabled, status: 401, "this receiver was started without --api-token-file: the query and admin API is off")
        }
        guard let header = request.headers[.authorization], header.lowercased().hasPrefix("bearer ") else {
            throw BankError(BankError.apiToken, status: 401, "send the API token as Authorization: Bearer TOKEN")
        }
        guard token.matches(String(header.dropFirst("bearer ".count)).trimmingCharacters(in: .whitespaces)) else {
            throw BankError(BankError.apiToken, status: 401, "the API token is wrong")
        }
    }

    static func requireJSON(_ request: Request) throws(BankError) {
        let type = request.headers[.contentType]?.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        guard type == "application/json" else {
            throw BankError(BankError.contentType, status: 415, "send the enrollment document as Content-Type: application/json (got \(type ?? "none"))")
        }
    }

    /// Most summaries one answer holds (page on with `after_rseq`).
    static let maxSummaries = 5_000

    static func wholeNumber(_ text: Substring?, _ name: String) throws(BankError) -> Int64? {
        guard let text else { return nil }
        guard let v = Int64(String(text)), v >= 0 else {
            throw BankError(BankError.query, status: 400, "\(name) is \"\(text)\"; expected \(name.hasSuffix("rseq") ? "a record sequence number" : "epoch milliseconds")")
        }
        return v
    }

    static func deviceParameter(_ context: BasicRequestContext) throws(BankError) -> String {
        guard let id = context.parameters.get("device"), !id.isEmpty, id.utf8.count <= 128 else {
            throw BankError(BankError.query, status: 400, "a device id is 1 to 128 characters")
        }
        return id
    }

    static func deviceFilter(_ request: Request) throws(BankError) -> String? {
        guard let text = request.uri.queryParameters["device"] else { return nil }
        guard !text.isEmpty, text.utf8.count <= 128 else { throw BankError(BankError.query, status: 400, "device is 1 to 128 characters") }
        return String(text)
    }

    static func deviceJSON(_ d: EnrolledDevice, chain c: ChainStatus) -> JSONValue {
        [
            "id": .string(d.id), "kid": .string(d.kid), "status": .string(d.revokedAtMs == nil ? "active" : "revoked"),
            "enrolled_at_ms": .int(d.enrolledAtMs), "revoked_at_ms": d.revokedAtMs.map(JSONValue.int) ?? .null,
            "chain": [
                "batches": .int(c.batches), "last_bseq": .int(c.lastBseq), "last_batch_at_ms": c.lastBatchAtMs.map(JSONValue.int) ?? .null,
                "records": .int(c.records), "incidents": .int(c.incidents), "silent_for_ms": c.silentForMs.map(JSONValue.int) ?? .null,
            ],
        ]
    }

    static func eventJSON(_ e: StoredEvent) -> JSONValue {
        [
            "device": .string(e.device), "event_id": .string(e.eventId), "rule": .string(e.rule), "channel": .string(e.channel),
            "severity": .string(e.severity), "start_wall_ms": .int(e.startWallMs), "end_wall_ms": e.endWallMs.map(JSONValue.int) ?? .null,
            "duration_ms": .int(e.durationMs), "status": .string(e.status), "explanation": .string(e.explanation), "bseq": .int(e.bseq),
        ]
    }

    static func nowMs() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }
}

/// The API token, kept as its SHA-256 and compared in constant time.
struct APIToken: Sendable {
    let digest: [UInt8]

    init(_ token: String) { digest = Digest256.sha256(Array(token.utf8)) }

    func matches(_ candidate: String) -> Bool {
        let other = Digest256.sha256(Array(candidate.utf8))
        var difference: UInt8 = 0
        for (a, b) in zip(digest, other) { difference |= a ^ b }
        return difference == 0
    }
}

/// Reads the token of `vouch-bank serve --api-token-file`.
public enum BankAPITokenFile {
    public static let minimumLength = 32

    public static func load(path: String) throws(BankError) -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw BankError(BankError.apiToken, status: 500, "--api-token-file \(path) \(FileManager.default.fileExists(atPath: path) ? "cannot be read" : "does not exist")")
        }
        let token = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard token.count >= minimumLength, token.unicodeScalars.allSatisfy({ $0.isASCII && $0.value > 0x20 && $0.value < 0x7F }) else {
            throw BankError(
                BankError.apiToken, status: 500,
                "--api-token-file \(path) must hold one token of at least \(minimumLength) printable characters without spaces (e.g. from `openssl rand -hex 32`)")
        }
        if let mode = (try? FileManager.default.attributesOfItem(atPath: path))?[.posixPermissions] as? Int, mode & 0o077 != 0 {
            throw BankError(BankError.apiToken, status: 500, "--api-token-file \(path) is readable by other users (mode \(String(mode, radix: 8))): chmod 600 it")
        }
        return token
    }
}

/// Counters since start, in Prometheus text format: no device ids (a scrape must not list borrowers).
public final class BankMetrics: Sendable {
    private let counters = Mutex<[String: Int]>([:])

    public init() {}

    func count(_ key: String) { counters.withLock { $0[key, default: 0] += 1 } }

    func exposition() -> String {
        let snapshot = counters.withLock { $0 }
        var lines = [
            "# HELP vouch_bank_uploads_total Batches uploaded, by verdict (accepted, duplicate, refused) and refusal code.",
            "# TYPE vouch_bank_uploads_total counter",
        ]
        for key in snapshot.keys.sorted() { lines.append("vouch_bank_uploads_total{\(key)} \(snapshot[key] ?? 0)") }
        return lines.joined(separator: "\n") + "\n"
    }

    func upload(verdict: String, code: String? = nil) {
        count("verdict=\"\(verdict)\"" + (code.map { ",code=\"\($0)\"" } ?? ""))
    }
}

/// Per-device upload rate: a token bucket of `burst` uploads refilled at `perSecond`, kept in this
/// receiver's memory (several receivers each allow the rate).
public final class UploadRateLimiter: Sendable {
    public let perSecond: Double
    public let burst: Double
    private let buckets = Mutex<[String: (tokens: Double, atMs: Int64)]>([:])

    public init(perSecond: Double, burst: Int) {
        self.perSecond = perSecond
        self.burst = Double(max(1, burst))
    }

    /// nil when `device` may upload now (one token taken), else the seconds until it may.
    public func take(_ device: String, nowMs: Int64) -> Int? {
        buckets.withLock { buckets in
            var bucket = buckets[device] ?? (burst, nowMs)
            bucket.tokens = min(burst, bucket.tokens + Double(max(0, nowMs - bucket.atMs)) / 1000 * perSecond)
            bucket.atMs = nowMs
            defer { buckets[device] = bucket }
            guard bucket.tokens >= 1 else { return max(1, Int(((1 - bucket.tokens) / perSecond).rounded(.up))) }
            bucket.tokens -= 1
            return nil
        }
    }
}

func errorResponse(_ error: BankError) -> Response {
    var response = jsonResponse(HTTPResponse.Status(code: error.status), ["error": ["code": .string(error.code), "message": .string(error.message)]])
    if error.status == 401 { response.headers[.wwwAuthenticate] = "Bearer realm=\"vouch-bank\"" }
    if let retry = error.retryAfterSeconds { response.headers[.retryAfter] = String(retry) }
    return response
}
