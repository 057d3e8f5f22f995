import Foundation
import Logging
import Testing
import VouchBank
import VouchEvidence

/// Two receivers (two SQLiteBankStore instances, i.e. two connection pools) on one SQLite file:
/// only SQLite's own locking stands between them.
@Suite("Concurrent ingest on one SQLite file")
struct ConcurrentIngestTests {
    /// Runs the (blocking) ingest on a Dispatch thread of its own, released at `start`, so the 20
    /// ingests really overlap instead of queueing on the few threads of the cooperative pool.
    static func onOwnThread(
        startingAt start: ContinuousClock.Instant, _ work: @escaping @Sendable () throws(BankError) -> IngestResult
    ) async -> Result<IngestResult, BankError> {
        await withCheckedContinuation { continuation in
            Thread.detachNewThread {
                while ContinuousClock.now < start { usleep(200) }
                do throws(BankError) { continuation.resume(returning: .success(try work())) } catch {
                    continuation.resume(returning: .failure(error))
                }
            }
        }
    }

    @Test("the same batch raced through two stores is accepted exactly once")
    func sameBatchTwoStores() async throws {
        try await TestBank.with { bank in
            let device = TestDevice()
            try bank.enroll(device)
            let second = try SQLiteBankStore(path: bank.path)
            var logger = Logger(label: "vouch-bank-test-2")
            logger.logLevel = .critical
            let ingests = [bank.ingest, BankIngest(store: second, bankKey: bank.bankKey, logger: logger)]
            let chain = ChainBuilder.chain(device, batches: 4, perBatch: 5)

            for batch in chain {
                let start = ContinuousClock.now.advanced(by: .milliseconds(100))
                let results = await withTaskGroup(of: Result<IngestResult, BankError>.self) { group in
                    for i in 0..<20 {
                        let ingest = ingests[i % 2]
                        group.addTask { await Self.onOwnThread(startingAt: start) { () throws(BankError) in try ingest.ingest(batch) } }
                    }
                    return await group.reduce(into: []) { $0.append($1) }
                }
                let failures = results.compactMap { if case .failure(let e) = $0 { e } else { nil } }
                #expect(failures.isEmpty, "\(failures)")
                let ok = results.compactMap { try? $0.get() }
                #expect(ok.count == 20)
                #expect(ok.filter { $0.verdict == .accepted }.count == 1, "bseq \(batch.bseq)")
                #expect(ok.filter { $0.verdict == .duplicate }.count == 19, "bseq \(batch.bseq)")
                #expect(Set(ok.map(\.receipt)).count == 1, "every answer carries the one receipt")
                #expect(Set(ok.map(\.bseq)) == [batch.bseq])
                let receipt = try Receipt.verify(try #require(ok.first?.receipt), bankKey: bank.bankKey.publicJWK).0
                #expect(receipt.bseq == batch.bseq && receipt.deviceLogSize == batch.bseq && receipt.batch == batch.signingInputHash)
            }
            for store in [bank.store, second] {
                let stored = try store.batches(device: device.id)
                #expect(stored.map(\.bseq) == [1, 2, 3, 4])
                #expect(stored.map(\.hash) == chain.map(\.signingInputHash))
                #expect(try store.recordCount(device: device.id) == 20)
            }
        }
    }

    @Test("two different batches 1 raced through two stores: one accepted, the other a fork")
    func raceOfTwoHistories() async throws {
        try await TestBank.with { bank in
            let device = TestDevice()
            try bank.enroll(device)
            let second = try SQLiteBankStore(path: bank.path)
            var logger = Logger(label: "vouch-bank-test-2")
            logger.logLevel = .critical
            let ingests = [bank.ingest, BankIngest(store: second, bankKey: bank.bankKey, logger: logger)]
            let a = ChainBuilder.chain(device, batches: 1, perBatch: 2)[0]
            let b = Fixture.seal(device: device.id, bseq: 1, prev: Digest256.zeroHex, records: [Fixture.summary(rseq: 1, last: 1)], key: device.key)
            let start = ContinuousClock.now.advanced(by: .milliseconds(100))
            let results = await withTaskGroup(of: (String, Result<IngestResult, BankError>).self) { group in
                for i in 0..<20 {
                    let ingest = ingests[i % 2]
                    let batch = i % 4 < 2 ? a : b
                    let token = batch.token
                    group.addTask { (token, await Self.onOwnThread(startingAt: start) { () throws(BankError) in try ingest.ingest(batch) }) }
                }
                return await group.reduce(into: []) { $0.append($1) }
            }
            let accepted = results.filter { (try? $0.1.get().verdict) == .accepted }
            #expect(accepted.count == 1)
            let winner = try #require(accepted.first?.0)
            for (token, result) in results {
                switch result {
                case .success(let r): #expect(token == winner && (r.verdict == .accepted || r.verdict == .duplicate))
                case .failure(let e):
                    #expect(token != winner)
                    #expect(e.code == "E_CHAIN_FORK" && e.status == 409, "\(e)")
                }
            }
            #expect(try bank.store.batches(device: device.id).map(\.token) == [winner])
            // The loser is kept as fork evidence, however many times it lost.
            let forks = try bank.store.incidents(device: device.id, nowMs: Fixture.t0)
            #expect(!forks.isEmpty && forks.allSatisfy { $0.code == "E_CHAIN_FORK" && $0.bseq == 1 })
            #expect(forks.allSatisfy { $0.evidence == (winner == a.token ? b : a).fileText })
        }
    }
}
