import Dispatch
import Foundation
import GRDB
import Synchronization

/// Group commit for the bank's SQLite writes. With `synchronous=FULL` every commit waits for the disk
/// to flush, and that wait, not the work, bounds how many uploads a receiver can store per second.
/// One writer thread takes every upload queued while it was busy, runs them in one transaction, each
/// inside its own savepoint (a refusal rolls back that upload alone), commits once, and only then
/// hands every caller its result: no answer, so no receipt, before its batch is durable.
///
/// Async callers (the HTTP route) suspend without holding a thread; synchronous callers (the CLI,
/// tests) block their own thread. The writer is a thread of its own, never the cooperative pool.
final class GroupCommitter: Sendable {
    /// Most uploads one transaction holds: bounds the time the first of them waits.
    static let maxGroup = 256

    typealias Work = @Sendable (Database) throws -> Result<IngestResult, BankError>
    typealias Done = @Sendable (Result<IngestResult, BankError>) -> Void

    private struct Item {
        let work: Work
        let done: Done
    }

    private struct State {
        var queue: [Item] = []
        var stopped = false
        /// Transactions committed, and the uploads they held (the group sizes, for tests and figures).
        var transactions = 0
        var uploads = 0
    }

    private let pool: DatabasePool
    private let path: String
    private let state = Mutex(State())
    private let wake = DispatchSemaphore(value: 0)

    init(pool: DatabasePool, path: String) {
        self.pool = pool
        self.path = path
        let thread = Thread { [self] in writeLoop() }
        thread.name = "vouch-bank.writer"
        thread.start()
    }

    /// Ends the writer thread once the queue is empty (it holds the committer until then).
    func stop() {
        state.withLock { $0.stopped = true }
        wake.signal()
    }

    /// (transactions, uploads) committed since this store opened.
    var counts: (transactions: Int, uploads: Int) { state.withLock { ($0.transactions, $0.uploads) } }

    /// Runs `work` in a transaction shared with the uploads queued beside it; returns once that
    /// transaction has committed (or failed, then with the failure).
    func run(_ work: @escaping Work) async -> Result<IngestResult, BankError> {
        await withCheckedContinuation { continuation in submit(work) { continuation.resume(returning: $0) } }
    }

    /// The same for a synchronous caller: blocks this thread until the commit.
    func runBlocking(_ work: @escaping Work) -> Result<IngestResult, BankError> {
        let box = Mutex<Result<IngestResult, BankError>?>(nil)
        let finished = DispatchSemaphore(value: 0)
        submit(work) { result in
            box.withLock { $0 = result }
            finished.signal()
        }
        finished.wait()
        return box.withLock { $0 } ?? .failure(BankError(BankError.store, status: 500, "bank database \(path): an upload was left without a result"))
    }

    private func submit(_ work: @escaping Work, done: @escaping Done) {
        let refused = state.withLock { s -> Bool in
            guard !s.stopped else { return true }
            s.queue.append(Item(work: work, done: done))
            return false
        }
        if refused { done(.failure(BankError(BankError.store, status: 503, "bank database \(path) is closing"))) } else { wake.signal() }
    }

    private func writeLoop() {
        while true {
            wake.wait()
            while true {
                let (group, stop) = state.withLock { s -> ([Item], Bool) in
                    let taken = Array(s.queue.prefix(Self.maxGroup))
                    s.queue.removeFirst(taken.count)
                    return (taken, s.stopped && s.queue.isEmpty)
                }
                if !group.isEmpty { commit(group) }
                if stop { return }
                if group.isEmpty { break }
            }
        }
    }

    private func commit(_ group: [Item]) {
        var results: [Result<IngestResult, BankError>] = []
        do {
            try pool.write { db in
                results = []
                for item in group {
                    var outcome: Result<IngestResult, BankError> = .failure(BankError(BankError.store, status: 500, "not run"))
                    try db.inSavepoint {
                        do {
                            outcome = try item.work(db)
                            return .commit  // accepted, duplicate, or a refusal that leaves a trace (a fork)
                        } catch let error as BankError {
                            outcome = .failure(error)
                        } catch {
                            outcome = .failure(BankError(BankError.store, status: 500, "bank database \(path): \(error)"))
                        }
                        return .rollback
                    }
                    results.append(outcome)
                }
            }
        } catch {
            // The transaction did not commit: nothing of the group is stored, and every caller hears so.
            let failure = BankError(BankError.store, status: 500, "bank database \(path): \(error)")
            results = group.map { _ in .failure(failure) }
        }
        state.withLock {
            $0.transactions += 1
            $0.uploads += group.count
        }
        for (item, result) in zip(group, results) { item.done(result) }
    }
}
