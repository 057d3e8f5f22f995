import Foundation
import Hummingbird
import Synchronization
import Testing
import VouchBank
import VouchEvidence
import VouchStore
@testable import VouchUplink

/// What the uplink does when the bank says "later" (429/503 with Retry-After) or "never, as it stands"
/// (any other 4xx): wait as asked, or park the batch, record it, and never loop on it.
@Suite struct BankRefusalTests {
    /// A bank stand-in that answers every upload with `status` (and `Retry-After` when given), counting them.
    final class Counter: Sendable {
        private let value = Mutex(0)
        func increment() { value.withLock { $0 += 1 } }
        var count: Int { value.withLock { $0 } }
    }

    struct ScriptedBank: Sendable {
        let uploads = Counter()
        let gzipped = Counter()
        let status: HTTPResponse.Status
        let retryAfter: String?

        func serving<T: Sendable>(_ body: (String) async throws -> T) async throws -> T {
            let router = Router()
            router.get("/healthz") { _, _ in Response(status: .ok, body: .init(byteBuffer: ByteBuffer(string: "ok"))) }
            let uploads = self.uploads
            let gzipped = self.gzipped
            let status = self.status
            let retryAfter = self.retryAfter
            router.post("/v1/batches") { request, _ -> Response in
                uploads.increment()
                if request.headers[.contentEncoding] == "gzip" { gzipped.increment() }
                var headers: HTTPFields = [.contentType: "application/json"]
                if let retryAfter { headers[.retryAfter] = retryAfter }
                let body = #"{"error":{"code":"E_TEST","message":"scripted"}}"#
                return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: body)))
            }
            let port = try Net.freePort()
            let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: port)), logger: Fixture.quietLogger)
            return try await Net.serve(app, port: port) { try await body("http://127.0.0.1:\(port)") }
        }
    }

    @Test("503 with Retry-After: 7 waits at least 7 s, and the batch stays undelivered, not quarantined")
    func serviceUnavailableRetryAfterSeconds() async throws {
        let dir = try TempDir()
        defer { dir.remove() }
        let bank = ScriptedBank(status: .serviceUnavailable, retryAfter: "7")
        try await bank.serving { url in
            let gateway = try Gateway(dir: dir, bankURL: url, maxBatchRecords: 10)
            try gateway.outbox.append(Fixture.summaries(2))
            _ = try gateway.uplink.sealPending()
            let result = await gateway.uplink.deliver()
            let failure = try #require(result.failure)
            #expect(failure.error.code == .bankBusy && !failure.error.isPermanent)
            #expect(failure.error.httpStatus == 503 && failure.error.bankCode == "E_TEST")
            #expect(failure.error.retryAfter == .seconds(7))

            var failures = 0
            let before = ContinuousClock.now
            let next = try #require(await gateway.uplink.round(failures: &failures))
            #expect(next - before >= .seconds(7), "the bank's Retry-After wins over a shorter backoff")
            #expect(failures == 1)
            #expect(try gateway.outbox.quarantined().isEmpty)
            #expect(try gateway.outbox.status().undeliveredBatches == 1)
            #expect(bank.uploads.count == 2 && bank.gzipped.count == 2, "every upload is gzipped on the wire")
        }
    }

    @Test("429 with a huge Retry-After is capped at maxRetryAfter, and is not a refusal")
    func tooManyRequestsCapped() async throws {
        let dir = try TempDir()
        defer { dir.remove() }
        let bank = ScriptedBank(status: .tooManyRequests, retryAfter: "999999")
        try await bank.serving { url in
            let gateway = try Gateway(dir: dir, bankURL: url, maxBatchRecords: 10)
            try gateway.outbox.append(Fixture.summaries(1))
            _ = try gateway.uplink.sealPending()
            let failure = try #require(await gateway.uplink.deliver().failure)
            #expect(!failure.error.isPermanent && failure.error.httpStatus == 429)
            #expect(failure.error.retryAfter == gateway.settings.maxRetryAfter)
        }
    }

    @Test("Retry-After as delay-seconds or an HTTP-date (RFC 9110 §10.2.3)")
    func retryAfterForms() throws {
        let now = Date(timeIntervalSince1970: 1_790_000_000)
        #expect(RetryAfter.parse("Wed, 21 Oct 2026 07:28:00 GMT", now: Date(timeIntervalSince1970: 1_792_567_660)) == .seconds(20))
        #expect(RetryAfter.parse("120", now: now) == .seconds(120))
        #expect(RetryAfter.parse(" 0 ", now: now) == .seconds(0))
        #expect(RetryAfter.parse("-5", now: now) == nil)
        #expect(RetryAfter.parse("soon", now: now) == nil)
        #expect(RetryAfter.parse("Wed, 21 Oct 2015 07:28:00 GMT", now: now) == .zero, "a date in the past means now")
    }

    @Test("a 400 quarantines the batch: one event, no tight loop, later batches wait behind it")
    func badRequestQuarantines() async throws {
        let dir = try TempDir()
        defer { dir.remove() }
        let bank = ScriptedBank(status: .badRequest, retryAfter: nil)
        try await bank.serving { url in
            var gateway = try Gateway(dir: dir, bankURL: url, maxBatchRecords: 2)
            gateway = gateway.withSettings { $0.parkInterval = .seconds(3_600) }
            try gateway.outbox.append(Fixture.summaries(4))
            var failures = 0
            let before = ContinuousClock.now
            let next = try #require(await gateway.uplink.round(failures: &failures))
            #expect(next - before >= .seconds(3_599), "parked for parkInterval")
            #expect(bank.uploads.count == 1, "batch 2 is not sent past the refused batch 1")
            let quarantined = try gateway.outbox.quarantined()
            #expect(quarantined.map(\.bseq) == [1])
            #expect(quarantined.first?.code == "E_TEST")
            #expect(try gateway.outbox.undelivered().map(\.bseq) == [1, 2], "kept, never dropped")

            // Rounds inside the park interval send nothing (an event's sendSoon included).
            for _ in 0..<5 { _ = await gateway.uplink.round(failures: &failures) }
            #expect(bank.uploads.count == 1)
            #expect(try gateway.outbox.quarantined().count == 1)

            // The refusal is itself evidence: one event record, however often the round runs.
            let status = try gateway.outbox.status()
            #expect(status.unsealedRecords + status.records > 4)
            let events = try Self.quarantineEvents(gateway)
            #expect(events.count == 1)
            #expect(events.first?.phase == .start && events.first?.params["bseq"] == .int(1))
        }
    }

    @Test("an unenrolled device's batch is parked, then delivered byte for byte once the bank enrolls it")
    func quarantineReleasedAfterTheBankFixesTheCause() async throws {
        let dir = try TempDir()
        defer { dir.remove() }
        let bank = try Bank(dir: dir)
        try await bank.serving { url in
            var gateway = try Gateway(dir: dir, bankURL: url, maxBatchRecords: 10)
            gateway = gateway.withSettings { $0.parkInterval = .milliseconds(300) }
            try gateway.outbox.append(Fixture.summaries(3))
            var failures = 0
            _ = await gateway.uplink.round(failures: &failures)
            #expect(try gateway.outbox.quarantined().map(\.code) == ["E_DEVICE_UNKNOWN"])
            let sealed = try gateway.outbox.undelivered()

            try bank.store.enroll(gateway.enrollment)
            try await Task.sleep(for: .milliseconds(400))
            #expect(await gateway.uplink.round(failures: &failures) == nil, "delivered after the park interval")
            #expect(try gateway.outbox.quarantined().isEmpty)
            let held = try bank.store.batches(device: gateway.deviceID)
            #expect(held.first?.token == sealed.first?.token, "the parked batch went out unchanged")
            #expect(try gateway.outbox.status().undeliveredBatches == 0)
            // Start and end of the quarantine are in the chain.
            let events = try Self.quarantineEvents(gateway)
            #expect(events.map(\.phase) == [.start, .end])
        }
    }

    static func quarantineEvents(_ gateway: Gateway) throws -> [EventRecord] {
        _ = try gateway.uplink.sealPending()
        return try gateway.outbox.sealedBatches().flatMap { entry in
            entry.batch.records.compactMap { line -> EventRecord? in
                guard case .event(let e)? = try? EvidenceRecord(json: CanonicalJSON.decode(line)), e.rule == "uplink-quarantine" else { return nil }
                return e
            }
        }
    }
}

extension Gateway {
    /// The same gateway with changed uplink settings (a new Uplink on the same outbox and key).
    func withSettings(_ change: (inout Uplink.Settings) -> Void) -> Gateway {
        var copy = self
        var settings = self.settings
        change(&settings)
        copy.settingsOverride(settings)
        return copy
    }
}
