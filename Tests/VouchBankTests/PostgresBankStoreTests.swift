import Foundation
import Logging
import PostgresNIO
import Testing
import VouchBank
import VouchBankPostgres
import VouchEvidence

/// A real PostgreSQL cluster (Debian's binaries, started by scripts/pg-cluster) for the suite; each
/// test gets a database of its own.
struct PostgresClusterTrait: SuiteTrait, TestScoping {
    @TaskLocal static var url: String?

    func provideScope(for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("vouch-pg-tests-\(UUID().uuidString.prefix(8))")
        let url = try Self.script(["start", directory.path])
        defer {
            _ = try? Self.script(["stop", directory.path])
            try? FileManager.default.removeItem(at: directory)
        }
        try await Self.$url.withValue(url) { try await function() }
    }

    /// Runs scripts/pg-cluster and returns what it printed. posix_spawn and waitpid, not Process:
    /// Foundation's Process never saw the script exit inside the test runner (a zombie, waited on forever).
    static func script(_ arguments: [String]) throws -> String {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("pg-cluster-\(UUID().uuidString).out").path
        defer { try? FileManager.default.removeItem(atPath: output) }
        let command = ([root.appendingPathComponent("scripts/pg-cluster").path] + arguments).map { "'\($0)'" }.joined(separator: " ") + " > '\(output)'"
        let argv: [UnsafeMutablePointer<CChar>?] = [strdup("/bin/sh"), strdup("-c"), strdup(command), nil]
        defer { for p in argv { free(p) } }
        var pid: pid_t = 0
        guard posix_spawn(&pid, "/bin/sh", nil, nil, argv, environ) == 0 else { throw PostgresTestError("cannot start /bin/sh for scripts/pg-cluster") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        guard status == 0 else { throw PostgresTestError("scripts/pg-cluster \(arguments.joined(separator: " ")) failed (wait status \(status))") }
        return String(decoding: (try? Data(contentsOf: URL(fileURLWithPath: output))) ?? Data(), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

struct PostgresTestError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// A fresh database on the suite's cluster, and receivers (stores with their own connection pools,
/// as two `serve` processes have) on it.
struct PostgresTestBank {
    let configuration: PostgresBankConfiguration
    let bankKey = SigningKey.generate()
    static let logger: Logger = {
        var l = Logger(label: "vouch-bank-pg-test")
        l.logLevel = .critical
        return l
    }()

    static func make() async throws -> PostgresTestBank {
        guard let url = PostgresClusterTrait.url else { throw PostgresTestError("no cluster: the suite needs .postgresCluster") }
        let base = try PostgresBankConfiguration(url: url)
        let name = "t_\(UUID().uuidString.prefix(12).lowercased().replacingOccurrences(of: "-", with: "_"))"
        var admin = base
        admin.database = "vouch"
        let client = PostgresClient(configuration: Self.clientConfiguration(admin))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            try await client.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(name)"))
            group.cancelAll()
        }
        var configuration = base
        configuration.database = name
        return PostgresTestBank(configuration: configuration)
    }

    static func clientConfiguration(_ c: PostgresBankConfiguration) -> PostgresClient.Configuration {
        guard case .socket(let dir, let port) = c.endpoint else { fatalError("the test cluster listens on a socket") }
        return PostgresClient.Configuration(unixSocketPath: "\(dir)/.s.PGSQL.\(port)", username: c.user, password: nil, database: c.database)
    }

    /// Runs `body` with `count` receivers on this database, each running and migrated.
    func receivers<T: Sendable>(_ count: Int = 1, alerts: Bool = false, _ body: @Sendable ([PostgresBankStore]) async throws -> T) async throws -> T {
        let stores = (0..<count).map { _ in PostgresBankStore(configuration: configuration, alerts: alerts, logger: Self.logger) }
        return try await withThrowingTaskGroup(of: Void.self) { group in
            for s in stores { group.addTask { try await s.run() } }
            defer { group.cancelAll() }
            // All at once: migrations must be safe when receivers start together.
            try await withThrowingTaskGroup(of: Void.self) { prepare in
                for s in stores { prepare.addTask { try await s.prepare() } }
                try await prepare.waitForAll()
            }
            return try await body(stores)
        }
    }

    func ingest(_ store: PostgresBankStore) -> BankIngest { BankIngest(store: store, bankKey: bankKey, logger: Self.logger) }

    /// Reads one number from the database directly.
    func count(_ sql: String) async throws -> Int64 {
        let client = PostgresClient(configuration: Self.clientConfiguration(configuration))
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            for try await n in try await client.query(PostgresQuery(unsafeSQL: sql)).decode(Int64.self) { return n }
            return -1
        }
    }
}

extension Trait where Self == PostgresClusterTrait {
    static var postgresCluster: Self { PostgresClusterTrait() }
}

@Suite(.postgresCluster)
struct PostgresBankStoreTests {
    @Test func storesAChainAndAnswersAResendWithTheSameReceipt() async throws {
        let bank = try await PostgresTestBank.make()
        let device = TestDevice()
        let chain = ChainBuilder.chain(device, batches: 4)
        try await bank.receivers { stores in
            let store = stores[0]
            try await store.enroll(device.enrollment())
            let ingest = bank.ingest(store)
            var receipts: [String] = []
            for b in chain { receipts.append(try await ingest.ingestAsync(file: b.file, nowMs: Fixture.t0).receipt) }
            let again = try await ingest.ingestAsync(file: chain[2].file, nowMs: Fixture.t0 + 5)
            #expect(again.verdict == .duplicate)
            #expect(again.receipt == receipts[2])
            let (receipt, _) = try Receipt.verify(receipts[3], bankKey: bank.bankKey.publicJWK)
            #expect(receipt.deviceLogSize == 4)
            #expect(receipt.logSize == 4)
            let status = try await store.chainStatus(device: device.id, nowMs: Fixture.t0)
            #expect(status.batches == 4 && status.lastBseq == 4 && status.records == 12 && status.incidents == 0)
            // What the bank hands out is exactly what the device signed, and it verifies offline.
            let stored = try await store.batches(device: device.id)
            #expect(stored.map(\.file) == chain.map(\.file))
            #expect(stored.map(\.receipt) == receipts)
            let head = try await store.logHead()
            #expect(head.size == 4 && head.root == receipt.logRoot)
            let proof = try await store.inclusionProof(device: device.id, rseq: 5)
            let (payload, record) = try proof.verify(key: device.key.publicJWK)
            #expect(payload.bseq == 2 && record.stamp.rseq == 5)
        }
    }

    @Test func refusesAGapAndKeepsAForkAsAnIncident() async throws {
        let bank = try await PostgresTestBank.make()
        let device = TestDevice()
        var builder = ChainBuilder(device)
        let one = builder.next()
        let two = builder.next()
        var other = ChainBuilder(device)
        other.next(records: Fixture.summaries(1...3))
        let twoForked = other.next(records: Fixture.summaries(4...5))
        var aheadBuilder = ChainBuilder(device)
        for _ in 0..<4 { aheadBuilder.next() }
        let ahead = aheadBuilder.batches[3]
        try await bank.receivers { stores in
            let ingest = bank.ingest(stores[0])
            try await stores[0].enroll(device.enrollment())
            _ = try await ingest.ingestAsync(file: one.file, nowMs: Fixture.t0)
            _ = try await ingest.ingestAsync(file: two.file, nowMs: Fixture.t0)
            await #expect(throws: BankError.self) { try await ingest.ingestAsync(file: ahead.file, nowMs: Fixture.t0) }
            do throws(BankError) {
                _ = try await ingest.ingestAsync(file: twoForked.file, nowMs: Fixture.t0)
                Issue.record("a second batch 2 was accepted")
            } catch { #expect(error.code == BankError.chainFork) }
            let incidents = try await stores[0].incidents(device: device.id, nowMs: Fixture.t0)
            #expect(incidents.map(\.kind) == ["fork"])
            #expect(incidents.first?.evidence.map { Array($0.utf8) } == twoForked.file)
            #expect(try await stores[0].chainStatus(device: device.id, nowMs: Fixture.t0).batches == 2)
        }
    }

    /// Two receivers on one database, many devices uploading, every batch sent to both at once:
    /// each is stored once (one `accepted`, one `duplicate` with the same receipt), every chain is
    /// whole, the bank log holds each batch once.
    @Test func twoReceiversRacingOnTheSameBatchesStoreEachOnce() async throws {
        let bank = try await PostgresTestBank.make()
        let devices = (0..<12).map { _ in TestDevice() }
        let chains = devices.map { ChainBuilder.chain($0, batches: 8) }
        try await bank.receivers(2) { stores in
            for d in devices { try await stores[0].enroll(d.enrollment()) }
            let ingests = stores.map { bank.ingest($0) }
            let outcomes = try await withThrowingTaskGroup(of: [(IngestResult, IngestResult)].self) { group in
                for chain in chains {
                    group.addTask {
                        var pairs: [(IngestResult, IngestResult)] = []
                        for b in chain {
                            async let a = ingests[0].ingestAsync(file: b.file, nowMs: Fixture.t0)
                            async let c = ingests[1].ingestAsync(file: b.file, nowMs: Fixture.t0)
                            pairs.append(try await (a, c))
                        }
                        return pairs
                    }
                }
                var all: [(IngestResult, IngestResult)] = []
                for try await part in group { all += part }
                return all
            }
            #expect(outcomes.count == 96)
            for (a, b) in outcomes {
                #expect(Set([a.verdict, b.verdict]) == [.accepted, .duplicate], "batch \(a.bseq) of \(a.device)")
                #expect(a.receipt == b.receipt)
            }
            for (d, chain) in zip(devices, chains) {
                let stored = try await stores[1].batches(device: d.id)
                #expect(stored.map(\.file) == chain.map(\.file))
                var verifier = OfflineVerifier(device: d.enrollment())
                let entries = try BatchFile.decodeStream(stored.map(\.file).reduce([], +))
                let verdicts = verifier.verify([(name: d.id, entries: entries)], expectedLast: 8)
                #expect(verdicts.count == 8 && verdicts.allSatisfy(\.ok))
            }
            #expect(try await stores[0].incidents(device: nil, nowMs: Fixture.t0).isEmpty)
            #expect(try await stores[0].logHead().size == 96)
        }
        #expect(try await bank.count("SELECT COUNT(*) FROM batch") == 96)
        #expect(try await bank.count("SELECT COUNT(DISTINCT log_idx) FROM batch") == 96)
        #expect(try await bank.count("SELECT COUNT(*) FROM batch WHERE receipt = ''") == 0)
    }

    @Test func aRevocationOnOneReceiverStopsUploadsOnTheOther() async throws {
        let bank = try await PostgresTestBank.make()
        let device = TestDevice()
        let chain = ChainBuilder.chain(device, batches: 3)
        try await bank.receivers(2) { stores in
            try await stores[0].enroll(device.enrollment())
            _ = try await bank.ingest(stores[1]).ingestAsync(file: chain[0].file, nowMs: Fixture.t0)
            let revoked = try await stores[0].revoke(device: device.id, atMs: Fixture.t0 + 10)
            #expect(revoked.revokedAtMs == Fixture.t0 + 10)
            do throws(BankError) {
                _ = try await bank.ingest(stores[1]).ingestAsync(file: chain[1].file, nowMs: Fixture.t0 + 10)
                Issue.record("a revoked device's batch was accepted")
            } catch { #expect(error.code == BankError.revokedDevice && error.status == 403) }
            // Kept: what it sent before.
            #expect(try await stores[1].chainStatus(device: device.id, nowMs: Fixture.t0).batches == 1)
            // A second revocation keeps the first time.
            #expect(try await stores[1].revoke(device: device.id, atMs: Fixture.t0 + 99).revokedAtMs == Fixture.t0 + 10)
        }
    }

    @Test func aRotatedKeyIsAcceptedOnlyAfterItsSignedRotation() async throws {
        let bank = try await PostgresTestBank.make()
        let device = TestDevice()
        let newKey = SigningKey.generate()
        var builder = ChainBuilder(device)
        builder.next()
        var early = builder
        early.key = newKey
        let signedEarly = early.next()
        builder.rotate(to: newKey)
        let afterRotation = builder.next()
        let batches = builder.batches
        try await bank.receivers { stores in
            let ingest = bank.ingest(stores[0])
            try await stores[0].enroll(device.enrollment())
            _ = try await ingest.ingestAsync(file: batches[0].file, nowMs: Fixture.t0)
            // Signed by the new key before any rotation: the bank does not know that key.
            do throws(BankError) {
                _ = try await ingest.ingestAsync(file: signedEarly.file, nowMs: Fixture.t0)
                Issue.record("a batch signed by an unrotated key was accepted")
            } catch { #expect(error.code == BankError.unknownDevice) }
            let rotated = try await ingest.ingestAsync(file: batches[1].file, nowMs: Fixture.t0)
            #expect(rotated.rotatedTo == newKey.kid)
            #expect(try await ingest.ingestAsync(file: afterRotation.file, nowMs: Fixture.t0).verdict == .accepted)
            let keys = try await stores[0].keys(device: device.id)
            #expect(keys.map(\.kid) == [device.key.kid, newKey.kid])
            #expect(keys.map(\.keyUntilBseq) == [2, nil])
        }
    }

    @Test func queuesAlertsOnceAndHandsEachToOneReceiver() async throws {
        let bank = try await PostgresTestBank.make()
        let device = TestDevice()
        var builder = ChainBuilder(device)
        builder.next(records: [Fixture.summary(rseq: 1), Fixture.eventStart(rseq: 2)])
        builder.next(records: [Fixture.summary(rseq: 5)])  // records 3-4 never arrived
        let batches = builder.batches
        try await bank.receivers(2, alerts: true) { stores in
            try await stores[0].enroll(device.enrollment())
            for b in batches { _ = try await bank.ingest(stores[0]).ingestAsync(file: b.file, nowMs: Fixture.t0) }
            async let first = stores[0].dueAlerts(nowMs: Fixture.t0 + 1, limit: 50)
            async let second = stores[1].dueAlerts(nowMs: Fixture.t0 + 1, limit: 50)
            let taken = try await (first, second)
            let kinds = (taken.0 + taken.1).map(\.kind).sorted()
            #expect(kinds == ["event", "record-gap"])
            // Taken alerts are not handed out again until their claim runs out.
            #expect(try await stores[1].dueAlerts(nowMs: Fixture.t0 + 2, limit: 50).isEmpty)
            for a in taken.0 + taken.1 { try await stores[1].alertDelivered(a.id, nowMs: Fixture.t0 + 3) }
            #expect(try await stores[0].dueAlerts(nowMs: Fixture.t0 + BankAlert.claimMs + 10, limit: 50).isEmpty)
        }
    }

    @Test func summariesAndGaps() async throws {
        let bank = try await PostgresTestBank.make()
        try await bank.receivers { stores in
            let device = try await BankQueryChecks.load(stores[0], ingest: bank.ingest(stores[0]))
            try await BankQueryChecks.check(stores[0], device)
        }
    }

    @Test func aDatabaseThatIsNotThereIsA503ThatNamesIt() async throws {
        var configuration = try PostgresBankConfiguration(url: "postgres://vouch@/vouch?host=/nonexistent-vouch-dir&port=5999")
        configuration.maximumConnections = 2
        let store = PostgresBankStore(configuration: configuration, connectionWait: .seconds(1), logger: PostgresTestBank.logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await store.run() }
            defer { group.cancelAll() }
            do throws(BankError) {
                _ = try await store.devices()
                Issue.record("a missing database answered")
            } catch {
                #expect(error.status == 503, "\(error.message)")
                #expect(error.message.contains("/nonexistent-vouch-dir/.s.PGSQL.5999"))
            }
        }
    }
}

/// `--db` URLs: what is accepted, and what each mistake says.
struct PostgresBankConfigurationTests {
    @Test func readsTCPAndSocketURLs() throws {
        let tcp = try PostgresBankConfiguration(url: "postgres://bank:s3cret@db.bank.internal:6432/vouch?sslmode=require", environment: [:])
        #expect(tcp.endpoint == .tcp(host: "db.bank.internal", port: 6432))
        #expect(tcp.user == "bank" && tcp.password == "s3cret" && tcp.database == "vouch" && tcp.tls == .require)
        let socket = try PostgresBankConfiguration(url: "postgresql://vouch@/bank?host=/run/postgresql", environment: ["PGPASSWORD": "pw"])
        #expect(socket.endpoint == .socket(directory: "/run/postgresql", port: 5432))
        #expect(socket.password == "pw")
        #expect(PostgresBankConfiguration.redacted("postgres://bank:s3cret@db/vouch") == "postgres://bank:***@db/vouch")
    }

    @Test(arguments: [
        ("postgres://db.bank.internal/vouch", "no user"),
        ("postgres://bank@db.bank.internal/", "no database name"),
        ("postgres://bank@db.bank.internal:99999/vouch", "port"),
        ("postgres://bank@db/vouch?sslmode=maybe", "sslmode \"maybe\""),
        ("postgres://bank@db/vouch?pool=3", "unknown parameter \"pool\""),
        ("postgres://bank@db/vouch?max_connections=1", "max_connections \"1\""),
        ("postgres://bank@/vouch", "no host"),
        ("mysql://bank@db/vouch", "not a postgres:// URL"),
    ])
    func namesWhatIsWrong(url: String, expected: String) {
        do throws(BankError) {
            _ = try PostgresBankConfiguration(url: url, environment: [:])
            Issue.record("\(url) was accepted")
        } catch {
            #expect(error.message.contains(expected), "\(error.message)")
            #expect(!error.message.contains("s3cret"))
        }
    }
}
