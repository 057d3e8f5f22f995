import AsyncHTTPClient
import Foundation
import Hummingbird
import Logging
import NIOCore
import VouchBank
import VouchEvidence

/// Ingest throughput of `vouch-bank` (scripts/bench-bank): many simulated gateways upload pre-sealed
/// batches of ~60 records over HTTP to a real receiver on loopback (SQLite file, `synchronous=FULL`),
/// each device's batches in order, several devices at once. Prints batches/s with p50/p99 latency,
/// beside two baselines measured in the same process on the same batches: verification alone (the
/// signature and Merkle checks, no storage) and in-process ingest (verify and store, no HTTP).
///
/// Usage: vouch-bench-bank [--devices N] [--batches B] [--records R] [--concurrency C]
///        vouch-bank-bench --targets URL[,URL…] --api-token-file F [--duplicate] [--enrollments DIR] [--prefix P] […]
///
/// With --targets, it is a load generator for running receivers (`vouch-bank serve`, one database):
/// it enrolls its fleet through the API of the first, then uploads each device's batches in order,
/// spread over the receivers (batch k of a device to receiver k mod n), or with --duplicate every
/// batch to every receiver at once. See ``LoadGenerator``.
@main
struct BankBench {
    static func main() async throws {
        let args = CommandLine.arguments
        func option(_ name: String, _ fallback: Int) -> Int {
            guard let i = args.firstIndex(of: name), i + 1 < args.count, let v = Int(args[i + 1]), v > 0 else { return fallback }
            return v
        }
        func text(_ name: String) -> String? {
            guard let i = args.firstIndex(of: name), i + 1 < args.count else { return nil }
            return args[i + 1]
        }
        let devices = option("--devices", 100)
        let perDevice = option("--batches", 20)
        let recordsPerBatch = option("--records", 60)
        let concurrency = option("--concurrency", 32)
        #if DEBUG
        print("bench-bank: WARNING: a debug build; figures are meaningless (build with -c release)")
        #endif
        var logger = Logger(label: "vouch-bench-bank")
        logger.logLevel = .critical

        let started = ContinuousClock.now
        let prefix = text("--prefix") ?? "bench-gw-"
        let fleet = (0..<devices).map { Gateway(index: $0, batches: perDevice, records: recordsPerBatch, prefix: prefix) }
        if let targets = text("--targets") {
            guard let tokenFile = text("--api-token-file"),
                let token = try? String(contentsOfFile: tokenFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            else { throw BenchError("--targets needs --api-token-file (the receivers' API token, to enroll the fleet)") }
            let load = LoadGenerator(
                targets: targets.split(separator: ",").map(String.init), token: token, fleet: fleet, concurrency: concurrency,
                duplicate: args.contains("--duplicate"), enrollments: text("--enrollments"))
            try await load.run()
            return
        }
        let total = devices * perDevice
        print("bench-bank: \(devices) devices × \(perDevice) batches of \(recordsPerBatch) records sealed in \(String(format: "%.1f", seconds(ContinuousClock.now - started))) s (\(total) batches, \(fleet[0].files[0].count) bytes each)")

        // Baseline 1: verification alone (signature, Merkle root, records), one core.
        let verifyStart = ContinuousClock.now
        var verified = 0
        for g in fleet {
            for b in g.batches {
                if (try? VerifiedBatch.verify(token: b.token, records: b.records, key: g.key.publicJWK)) != nil { verified += 1 }
            }
        }
        let verifyRate = Double(verified) / seconds(ContinuousClock.now - verifyStart)
        print("bench-bank: verification alone (no storage, one core): \(format(verifyRate)) batches/s")

        // Baseline 2: ingest in process (verify and store in SQLite, synchronous=FULL), one caller.
        let inProcess = try Bank(fleet: fleet, logger: logger)
        defer { inProcess.remove() }
        let ingestStart = ContinuousClock.now
        for g in fleet {
            for b in g.batches { _ = try inProcess.ingest.ingest(b) }
        }
        let ingestRate = Double(total) / seconds(ContinuousClock.now - ingestStart)
        print("bench-bank: ingest in process (verify + store, SQLite, one caller): \(format(ingestRate)) batches/s")

        // The receiver over HTTP on loopback, with a fresh database.
        let bank = try Bank(fleet: fleet, logger: logger)
        defer { bank.remove() }
        let port = freePort()
        var settings = BankServerSettings(host: "127.0.0.1", port: port)
        settings.apiToken = nil
        let app = try buildBankApplication(ingest: BankIngest(store: bank.store, bankKey: bank.key, logger: logger), settings: settings, logger: logger)
        let server = Task { try await app.runService() }
        defer { server.cancel() }
        try await waitForPort(port)

        var configuration = HTTPClient.Configuration()
        configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: concurrency)
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        let url = "http://127.0.0.1:\(port)/v1/batches"
        let queue = WorkQueue(fleet.indices.map { $0 })
        let httpStart = ContinuousClock.now
        let latencies = try await withThrowingTaskGroup(of: [Double].self) { group in
            for _ in 0..<concurrency {
                group.addTask {
                    var mine: [Double] = []
                    while let d = await queue.next() {
                        for file in fleet[d].files {
                            var request = HTTPClientRequest(url: url)
                            request.method = .POST
                            request.headers.add(name: "Content-Type", value: BatchFile.mediaType)
                            request.body = .bytes(ByteBuffer(bytes: file))
                            let t0 = ContinuousClock.now
                            let response = try await client.execute(request, timeout: .seconds(30))
                            _ = try await response.body.collect(upTo: 1 << 20)
                            mine.append(seconds(ContinuousClock.now - t0) * 1000)
                            guard response.status == .ok else { throw BenchError("upload answered \(response.status)") }
                        }
                    }
                    return mine
                }
            }
            var all: [Double] = []
            for try await part in group { all += part }
            return all.sorted()
        }
        let elapsed = seconds(ContinuousClock.now - httpStart)
        try await client.shutdown()
        let stored = try bank.store.devices().reduce(0) { $0 + Int((try? bank.store.chainStatus(device: $1.id, nowMs: 0).batches) ?? 0) }
        guard stored == total else { throw BenchError("the bank holds \(stored) batches, \(total) were sent") }
        let rate = Double(total) / elapsed
        let commits = bank.store.uploadCommits
        print("bench-bank: \(commits.uploads) uploads committed in \(commits.transactions) transactions (\(String(format: "%.1f", Double(commits.uploads) / Double(max(1, commits.transactions)))) a transaction)")
        func percentile(_ p: Double) -> Double { latencies[min(latencies.count - 1, Int(Double(latencies.count) * p))] }
        print(
            "bench-bank: over HTTP, \(concurrency) devices uploading at once: \(format(rate)) batches/s (\(String(format: "%.2f", rate / ingestRate)) of in-process ingest), "
                + "latency p50 \(String(format: "%.2f", percentile(0.5))) ms, p99 \(String(format: "%.2f", percentile(0.99))) ms; all \(stored) batches stored and chained  "
                + "goal: >= 5,000 batches/s \(rate >= 5_000 ? "met" : "NOT met")")
    }

    static func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18 }
    static func format(_ rate: Double) -> String { String(format: "%.0f", rate) }

    static func freePort() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    static func waitForPort(_ port: Int) async throws {
        for _ in 0..<200 {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = UInt16(port).bigEndian
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            let ok = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } } == 0
            close(fd)
            if ok { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw BenchError("the receiver did not listen on \(port)")
    }
}

/// One simulated gateway: its key and its chain of sealed batches.
struct Gateway: Sendable {
    let id: String
    let key: SigningKey
    let batches: [SealedBatch]
    let files: [[UInt8]]

    init(index: Int, batches count: Int, records: Int, prefix: String = "bench-gw-") {
        id = "\(prefix)\(index)"
        key = SigningKey.generate()
        var prev = Digest256.zeroHex
        var rseq: Int64 = 1
        var sealed: [SealedBatch] = []
        let t0: Int64 = 1_764_547_200_000
        for bseq in 1...Int64(count) {
            let recs = (0..<records).map { k -> EvidenceRecord in
                defer { rseq += 1 }
                let stamp = RecordStamp(rseq: rseq, boot: 1, monoMs: rseq * 1_000, wallMs: t0 + rseq * 1_000, timeQuality: .synchronized)
                let v = 40_000 + Int64((k * 37) % 900)
                return .summary(
                    ReadingSummary(
                        stamp: stamp, channel: "meter\(k % 8).power", intervalMs: 60_000, unit: "W", scale: -1, count: 60, errors: 0, min: v - 300,
                        max: v + 300, mean: v, last: v, lastError: nil))
            }
            let payload = BatchPayload(
                device: id, bseq: bseq, prev: prev, bootId: "bench-boot", bootCount: 1, sealedWallMs: t0 + bseq * 60_000, sealedMonoMs: bseq * 60_000,
                timeQuality: .synchronized, records: recs, receipt: nil)
            let batch = SealedBatch.seal(payload, records: recs, key: key)
            prev = batch.signingInputHash
            sealed.append(batch)
        }
        batches = sealed
        files = sealed.map(\.file)
    }
}

/// A receiver's database with the fleet enrolled, in a temporary directory.
struct Bank {
    let directory: URL
    let store: SQLiteBankStore
    let key: SigningKey
    let ingest: BankIngest

    init(fleet: [Gateway], logger: Logger) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("vouch-bench-bank-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        store = try SQLiteBankStore(path: directory.appendingPathComponent("bank.sqlite").path)
        key = SigningKey.generate()
        for g in fleet { try store.enroll(EnrolledDevice(id: g.id, key: g.key.publicJWK, enrolledAtMs: 0)) }
        ingest = BankIngest(store: store, bankKey: key, logger: logger)
    }

    func remove() { try? FileManager.default.removeItem(at: directory) }
}

/// Hands out device indices to the upload workers, each once.
actor WorkQueue {
    private var items: [Int]
    init(_ items: [Int]) { self.items = items.reversed() }
    func next() -> Int? { items.popLast() }
}

struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}
