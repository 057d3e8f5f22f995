import Foundation
import Testing
@testable import VouchBank
import VouchEvidence

/// Uploads that arrive together share one transaction (one fsync), each in its own savepoint.
@Suite("Group commit")
struct GroupCommitTests {
    typealias Upload = @Sendable () -> Result<IngestResult, BankError>

    static func upload(_ ingest: BankIngest, _ batch: SealedBatch) -> Upload {
        { Result { () throws(BankError) -> IngestResult in try ingest.ingest(batch) } }
    }

    /// Runs every upload on a thread of its own, all released at once.
    static func together(_ uploads: [Upload]) async -> [Result<IngestResult, BankError>] {
        let start = ContinuousClock.now.advanced(by: .milliseconds(100))
        return await withTaskGroup(of: (Int, Result<IngestResult, BankError>).self) { group in
            for (i, upload) in uploads.enumerated() {
                group.addTask {
                    let result = await withCheckedContinuation { continuation in
                        Thread.detachNewThread {
                            while ContinuousClock.now < start { usleep(200) }
                            continuation.resume(returning: upload())
                        }
                    }
                    return (i, result)
                }
            }
            var out = [(Int, Result<IngestResult, BankError>)]()
            for await r in group { out.append(r) }
            return out.sorted { $0.0 < $1.0 }.map(\.1)
        }
    }

    @Test("forty devices uploading at once are all stored, in fewer transactions than uploads")
    func uploadsShareTransactions() async throws {
        try await TestBank.with { bank in
            let devices = (0..<40).map { _ in TestDevice() }
            for d in devices { try bank.enroll(d) }
            let batches = devices.map { ChainBuilder.chain($0, batches: 1, perBatch: 60)[0] }
            let ingest = bank.ingest
            let results = await Self.together(batches.map { Self.upload(ingest, $0) })
            #expect(results.allSatisfy { (try? $0.get())?.verdict == .accepted }, "\(results)")
            for d in devices { #expect(try bank.store.chainStatus(device: d.id, nowMs: 0).batches == 1) }
            let (transactions, uploads) = bank.store.committer.counts
            #expect(uploads == 40)
            #expect(transactions < 40, "\(transactions) transactions for 40 uploads arriving together")
            // Every receipt is the bank's, for its batch, and the log grew by one per upload.
            let logSizes = try results.map { try Receipt.verify(try $0.get().receipt, bankKey: bank.bankKey.publicJWK).0.logSize }
            #expect(Set(logSizes).count == 40 && logSizes.max() == 40)
        }
    }

    @Test("a refused upload in a group is rolled back alone; the others are stored")
    func oneRefusalDoesNotUndoTheGroup() async throws {
        try await TestBank.with { bank in
            let good = (0..<12).map { _ in TestDevice() }
            let skipping = (0..<6).map { _ in TestDevice() }
            for d in good + skipping { try bank.enroll(d) }
            let ingest = bank.ingest
            var uploads = good.map { Self.upload(ingest, ChainBuilder.chain($0, batches: 1)[0]) }
            uploads += skipping.map { Self.upload(ingest, ChainBuilder.chain($0, batches: 3)[2]) }  // batches 1 and 2 never sent
            let results = await Self.together(uploads)
            #expect(results.prefix(12).allSatisfy { (try? $0.get())?.verdict == .accepted })
            for r in results.suffix(6) {
                guard case .failure(let e) = r else {
                    Issue.record("a batch that skips ahead was accepted")
                    continue
                }
                #expect(e.code == BankError.chainGap)
            }
            for d in good { #expect(try bank.store.chainStatus(device: d.id, nowMs: 0).batches == 1) }
            for d in skipping { #expect(try bank.store.chainStatus(device: d.id, nowMs: 0).batches == 0) }
        }
    }
}
