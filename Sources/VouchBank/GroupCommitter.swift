import Dispatch
import GRDB
import Synchronization

/// Group commit for the bank's SQLite writes. With `synchronous=FULL` every commit waits for the disk
/// to flush, and that wait, not the work, bounds how many uploads a receiver can store per second.
/// Callers that arrive while a transaction is running queue up; the next leader runs all of them in one
/// transaction, each inside its own savepoint (a refusal rolls back that upload alone), commits once,
/// and only then hands every caller its result: no answer, so no receipt, before its batch is durable.
///
/// Leader/follower: the caller that finds no transaction running becomes the leader and keeps
/// committing groups until the queue is empty; the others block on their own semaphore. Callers must
/// therefore not be on the Swift cooperative pool (the HTTP route hands uploads to a dispatch queue),
/// or a 2-core pool would hold at most two uploads per group.
final class GroupCommitter: Sendable {
    /// Most uploads one transaction holds: bounds the time the first of them waits.
    static let maxGroup = 256

    private final class Item: Sendable {
        let work: @Sendable (Database) throws -> Result<IngestResult, BankError>
        let done = DispatchSemaphore(value: 0)
        let result = Mutex<Result<IngestResult, BankError>?>(nil)
        init(_ work: @escaping @Sendable (Database) throws -> Result<IngestResult, BankError>) { self.work = work }
    }

    private struct State {
        var queue: [Item] = []
        var leading = false
        /// Transactions committed, and the uploads they held (the group sizes, for tests and figures).
        var transactions = 0
        var uploads = 0
    }

    /// (transactions, uploads) committed since this store opened.
    var counts: (transactions: Int, uploads: Int) { state.withLock { ($0.transactions, $0.uploads) } }

    private let pool: DatabasePool
    private let path: String
    private let state = Mutex(State())

    init(pool: DatabasePool, path: String) {
        self.pool = pool
        self.path = path
    }

    /// Runs `work` inside a transaction shared with other callers; returns once that transaction has
    /// committed (or failed, then with the failure).
    func run(_ work: @escaping @Sendable (Database) throws -> Result<IngestResult, BankError>) throws(BankError) -> Result<IngestResult, BankError> {
        let item = Item(work)
        let lead = state.withLock { s -> Bool in
            s.queue.append(item)
            guard !s.leading else { return false }
            s.leading = true
            return true
        }
        if lead { leadUntilEmpty() } else { item.done.wait() }
        guard let result = item.result.withLock({ $0 }) else {
            throw BankError(BankError.store, status: 500, "bank database \(path): an upload was left without a result")
        }
        return result
    }

    private func leadUntilEmpty() {
        while true {
            let group = state.withLock { s -> [Item] in
                let taken = Array(s.queue.prefix(Self.maxGroup))
                s.queue.removeFirst(taken.count)
                if taken.isEmpty { s.leading = false }
                return taken
            }
            guard !group.isEmpty else { return }
            commit(group)
            state.withLock {
                $0.transactions += 1
                $0.uploads += group.count
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
        // Every item is signalled; the leader's own semaphore is never waited on, which is harmless.
        for (item, result) in zip(group, results) {
            item.result.withLock { $0 = result }
            item.done.signal()
        }
    }
}
