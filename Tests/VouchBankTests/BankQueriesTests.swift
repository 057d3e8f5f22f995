import Foundation
import GRDB
import Logging
import Testing
import VouchEvidence

@testable import VouchBank

/// Summaries and gaps as the query API reads them, the same on either store: this file runs the
/// checks on SQLite; PostgresBankStoreTests runs them on PostgreSQL.
enum BankQueryChecks {
    /// A device whose chain holds summaries of two channels, a gap the gateway reported (agent down)
    /// and records that never arrived (rseq 7-9), uploaded to `store`.
    static func load(_ store: any BankStore, ingest: BankIngest) async throws -> TestDevice {
        let device = TestDevice()
        try await store.enroll(device.enrollment())
        var builder = ChainBuilder(device)
        let other = EvidenceRecord.summary(
            ReadingSummary(
                stamp: Fixture.stamp(3), channel: "press.power", intervalMs: 60_000, unit: "W", scale: 0, count: 60, errors: 2, min: 10, max: 900,
                mean: 450, last: 300, lastError: "timeout"))
        let gap = EvidenceRecord.gap(
            GapRecord(
                stamp: Fixture.stamp(5), reason: .agentDown, channel: nil, fromBoot: 1, fromMonoMs: 62_000, fromWallMs: Fixture.t0 + 2_000, toMonoMs: 64_000,
                toWallMs: Fixture.t0 + 4_500, missing: 12, detail: "agent stopped"))
        builder.next(records: [Fixture.summary(rseq: 1), Fixture.summary(rseq: 2), other])
        builder.next(records: [Fixture.summary(rseq: 4), gap, Fixture.summary(rseq: 6)])
        builder.next(records: [Fixture.summary(rseq: 10), Fixture.summary(rseq: 11)])
        for b in builder.batches { _ = try await ingest.ingestAsync(file: b.file, nowMs: Fixture.t0 + 60_000) }
        return device
    }

    static func check(_ store: any BankStore, _ device: TestDevice) async throws {
        let all = try await store.records(device: device.id, kind: "sum", channel: nil, fromMs: nil, untilMs: nil, afterRseq: nil, limit: 100)
        #expect(all.map(\.rseq) == [1, 2, 3, 4, 6, 10, 11])
        #expect(all.map(\.bseq) == [1, 1, 1, 2, 2, 3, 3])
        let power = try await store.records(device: device.id, kind: "sum", channel: "press.power", fromMs: nil, untilMs: nil, afterRseq: nil, limit: 100)
        #expect(power.map(\.rseq) == [3])
        // Wall time: [t0 + 2 s, t0 + 6 s) holds rseq 2, 3, 4 (6 is at t0 + 6 s).
        let window = try await store.records(
            device: device.id, kind: "sum", channel: nil, fromMs: Fixture.t0 + 2_000, untilMs: Fixture.t0 + 6_000, afterRseq: nil, limit: 100)
        #expect(window.map(\.rseq) == [2, 3, 4])
        let page = try await store.records(device: device.id, kind: "sum", channel: nil, fromMs: nil, untilMs: nil, afterRseq: 3, limit: 2)
        #expect(page.map(\.rseq) == [4, 6])

        let gaps = try await store.gaps(device: device.id, sinceMs: nil)
        #expect(gaps.map(\.kind) == ["agent_down", "records-missing"])
        #expect(gaps.first?.fromWallMs == Fixture.t0 + 2_000 && gaps.first?.toWallMs == Fixture.t0 + 4_500 && gaps.first?.missing == 12)
        #expect(gaps.first?.rseq == 5 && gaps.first?.bseq == 2)
        let missing = gaps.last
        #expect(missing?.missing == 3 && missing?.bseq == 3 && missing?.rseq == nil)
        // Bounded by the records on either side: rseq 6 and rseq 10.
        #expect(missing?.fromWallMs == Fixture.t0 + 6_000 && missing?.toWallMs == Fixture.t0 + 10_000)
        #expect(try await store.gaps(device: device.id, sinceMs: Fixture.t0 + 5_000).map(\.kind) == ["records-missing"])
    }
}

struct BankQueriesTests {
    @Test func summariesAndGapsOnSQLite() async throws {
        let bank = try TestBank()
        defer { bank.remove() }
        let device = try await BankQueryChecks.load(bank.store, ingest: bank.ingest)
        try await BankQueryChecks.check(bank.store, device)
    }

    /// Records stored before migration v4 get their wall time and channel from their own line.
    @Test func migrationV4FillsInRecordsStoredBeforeIt() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("vouch-bank-v4-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("bank.sqlite").path
        let device = TestDevice()
        let chain = ChainBuilder.chain(device, batches: 2)
        try Self.bankAtV3(path: path, device: device, chain: chain)
        let store = try SQLiteBankStore(path: path)
        let summaries = try store.records(device: device.id, kind: "sum", channel: "press.current", fromMs: Fixture.t0 + 2_000, untilMs: nil, afterRseq: nil, limit: 100)
        #expect(summaries.map(\.rseq) == [2, 3, 4, 5, 6])
        #expect(try store.recordWallMs(device: device.id, rseq: 4) == Fixture.t0 + 4_000)
    }

    /// A bank as it was at v3, holding the chain's records.
    static func bankAtV3(path: String, device: TestDevice, chain: [SealedBatch]) throws {
        do {
            let queue = try DatabaseQueue(path: path)
            try BankSchema.migrator.migrate(queue, upTo: "v3: alert queue")
            try queue.write { db in
                try db.execute(
                    sql: "INSERT INTO device(id, kid, jwk, enrolled_at_ms) VALUES(?, ?, ?, 0)",
                    arguments: [device.id, device.key.kid, CanonicalJSON.string(device.key.publicJWK.json)])
                try db.execute(
                    sql: "INSERT INTO device_key(kid, device, jwk, from_bseq) VALUES(?, ?, ?, 1)",
                    arguments: [device.key.kid, device.id, CanonicalJSON.string(device.key.publicJWK.json)])
                for (i, b) in chain.enumerated() {
                    for line in b.records {
                        let record = try EvidenceRecord(json: CanonicalJSON.decode(line))
                        try db.execute(
                            sql: "INSERT INTO record(device, rseq, bseq, kind, body) VALUES(?, ?, ?, ?, ?)",
                            arguments: [device.id, record.stamp.rseq, i + 1, record.kind, String(decoding: line, as: UTF8.self)])
                    }
                }
            }
        }
    }
}
