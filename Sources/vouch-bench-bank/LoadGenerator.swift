import AsyncHTTPClient
import Foundation
import NIOCore
import VouchEvidence

/// Many simulated gateways uploading to running receivers (scripts/bench-bank's PostgreSQL figures,
/// and the two-receiver test): enrolls the fleet through the first receiver's API, uploads each
/// device's batches in order (`concurrency` devices at once), then asks the last receiver for every
/// device's chain. Prints one line of figures and a JSON summary; exits non-zero when any upload was
/// refused, any batch was stored twice or not at all, or (with `duplicate`) a batch sent to every
/// receiver at once was not accepted exactly once and answered with one receipt.
struct LoadGenerator {
    let targets: [String]
    let token: String
    let fleet: [Gateway]
    let concurrency: Int
    let duplicate: Bool
    /// Where to write each device's enrollment document (for `vouch-bank verify` afterwards).
    let enrollments: String?

    struct Outcome: Sendable {
        var latenciesMs: [Double] = []
        var accepted = 0
        var duplicates = 0
        var refusals: [String] = []
    }

    func run() async throws {
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: concurrency)
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        do {
            try await enroll(client)
            let started = ContinuousClock.now
            let outcome = try await upload(client)
            let elapsed = BankBench.seconds(ContinuousClock.now - started)
            let stored = try await storedBatches(client)
            try await client.shutdown()
            report(outcome, elapsed: elapsed, stored: stored)
        } catch {
            try? await client.shutdown()
            throw error
        }
    }

    func enroll(_ client: HTTPClient) async throws {
        if let enrollments { try FileManager.default.createDirectory(atPath: enrollments, withIntermediateDirectories: true) }
        for g in fleet {
            let document: JSONValue = ["device": .string(g.id), "kid": .string(g.key.kid), "jwk": g.key.publicJWK.json, "alg": "ES256", "created_ms": .int(0)]
            let (status, body) = try await send(client, "POST", targets[0] + "/v1/devices", body: CanonicalJSON.encode(document), contentType: "application/json")
            guard status == 201 else { throw BenchError("enrolling \(g.id) answered \(status): \(String(decoding: body, as: UTF8.self))") }
            if let enrollments {
                try Data(CanonicalJSON.encode(document)).write(to: URL(fileURLWithPath: enrollments).appendingPathComponent("\(g.id).json"))
            }
        }
    }

    func upload(_ client: HTTPClient) async throws -> Outcome {
        let queue = WorkQueue(fleet.indices.map { $0 })
        let fleet = fleet
        let targets = targets
        let duplicate = duplicate
        return try await withThrowingTaskGroup(of: Outcome.self) { group in
            for _ in 0..<concurrency {
                group.addTask {
                    var mine = Outcome()
                    while let d = await queue.next() {
                        for (k, file) in fleet[d].files.enumerated() {
                            let t0 = ContinuousClock.now
                            let chosen = duplicate ? targets : [targets[k % targets.count]]
                            let answers = try await withThrowingTaskGroup(of: (Int, [UInt8]).self) { each in
                                for target in chosen {
                                    each.addTask { try await Self.send(client, "POST", target + "/v1/batches", body: file, contentType: BatchFile.mediaType, token: nil) }
                                }
                                var all: [(Int, [UInt8])] = []
                                for try await a in each { all.append(a) }
                                return all
                            }
                            mine.latenciesMs.append(BankBench.seconds(ContinuousClock.now - t0) * 1000)
                            var receipts = Set<String>()
                            var verdicts: [String] = []
                            for (status, body) in answers {
                                let json = (try? CanonicalJSON.decode(body))?.objectValue
                                guard status == 200, let verdict = json?["verdict"]?.stringValue, let receipt = json?["receipt"]?.stringValue else {
                                    mine.refusals.append("\(fleet[d].id) batch \(k + 1): \(status) \(String(decoding: body.prefix(300), as: UTF8.self))")
                                    continue
                                }
                                verdicts.append(verdict)
                                receipts.insert(receipt)
                            }
                            mine.accepted += verdicts.filter { $0 == "accepted" }.count
                            mine.duplicates += verdicts.filter { $0 == "duplicate" }.count
                            if verdicts.count == chosen.count && (verdicts.filter { $0 == "accepted" }.count != 1 || receipts.count != 1) {
                                mine.refusals.append("\(fleet[d].id) batch \(k + 1): answers \(verdicts) with \(receipts.count) different receipt(s); expected one accepted and one receipt")
                            }
                        }
                    }
                    return mine
                }
            }
            var all = Outcome()
            for try await part in group {
                all.latenciesMs += part.latenciesMs
                all.accepted += part.accepted
                all.duplicates += part.duplicates
                all.refusals += part.refusals
            }
            all.latenciesMs.sort()
            return all
        }
    }

    /// Batches each device has at the last receiver, by device id.
    func storedBatches(_ client: HTTPClient) async throws -> [String: (batches: Int64, incidents: Int64)] {
        let (status, body) = try await send(client, "GET", targets[targets.count - 1] + "/v1/devices", body: nil, contentType: nil)
        guard status == 200, case .array(let devices)? = (try? CanonicalJSON.decode(body))?.objectValue?["devices"] else {
            throw BenchError("listing devices answered \(status): \(String(decoding: body.prefix(300), as: UTF8.self))")
        }
        var stored: [String: (Int64, Int64)] = [:]
        for d in devices {
            let chain = d.objectValue?["chain"]?.objectValue
            guard let id = d.objectValue?["id"]?.stringValue, let batches = chain?["batches"]?.intValue, let incidents = chain?["incidents"]?.intValue else { continue }
            stored[id] = (batches, incidents)
        }
        return stored
    }

    func report(_ outcome: Outcome, elapsed: Double, stored: [String: (batches: Int64, incidents: Int64)]) {
        let total = fleet.reduce(0) { $0 + $1.files.count }
        let rate = Double(total) / elapsed
        func percentile(_ p: Double) -> Double { outcome.latenciesMs.isEmpty ? 0 : outcome.latenciesMs[min(outcome.latenciesMs.count - 1, Int(Double(outcome.latenciesMs.count) * p))] }
        var problems = outcome.refusals
        for g in fleet {
            let s = stored[g.id]
            if s?.batches != Int64(g.files.count) { problems.append("\(g.id): the bank holds \(s?.batches ?? 0) batches, \(g.files.count) were sent") }
            if let incidents = s?.incidents, incidents > 0 { problems.append("\(g.id): \(incidents) incident(s)") }
        }
        print(
            "bench-bank: load on \(targets.count) receiver(s)\(duplicate ? ", every batch sent to each at once" : ""): \(BankBench.format(rate)) batches/s, "
                + "latency p50 \(String(format: "%.2f", percentile(0.5))) ms, p99 \(String(format: "%.2f", percentile(0.99))) ms; "
                + "\(outcome.accepted) accepted, \(outcome.duplicates) duplicate, \(problems.count) problem(s)")
        let summary: JSONValue = [
            "receivers": .int(Int64(targets.count)), "batches": .int(Int64(total)), "devices": .int(Int64(fleet.count)), "batches_per_s": .int(Int64(rate.rounded())),
            "p50_ms": .string(String(format: "%.2f", percentile(0.5))), "p99_ms": .string(String(format: "%.2f", percentile(0.99))),
            "accepted": .int(Int64(outcome.accepted)), "duplicate": .int(Int64(outcome.duplicates)), "problems": .array(problems.prefix(20).map(JSONValue.string)),
            "problem_count": .int(Int64(problems.count)),
        ]
        print("bench-bank: summary " + CanonicalJSON.string(summary))
        fflush(nil)
        if !problems.isEmpty {
            for p in problems.prefix(20) { FileHandle.standardError.write(Data("bench-bank: \(p)\n".utf8)) }
            exit(1)
        }
    }

    func send(_ client: HTTPClient, _ method: String, _ url: String, body: [UInt8]?, contentType: String?) async throws -> (Int, [UInt8]) {
        try await Self.send(client, method, url, body: body, contentType: contentType, token: token)
    }

    static func send(_ client: HTTPClient, _ method: String, _ url: String, body: [UInt8]?, contentType: String?, token: String?) async throws -> (Int, [UInt8]) {
        var request = HTTPClientRequest(url: url)
        request.method = .init(rawValue: method)
        if let contentType { request.headers.add(name: "Content-Type", value: contentType) }
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        if let body { request.body = .bytes(ByteBuffer(bytes: body)) }
        let response = try await client.execute(request, timeout: .seconds(60))
        let collected = try await response.body.collect(upTo: 16 << 20)
        return (Int(response.status.code), Array(collected.readableBytesView))
    }
}
