import Foundation
import GRDB
import Testing
@testable import VouchBank

/// The bank signs a receipt only for a batch that survives a power cut: its writer commits with
/// `synchronous = FULL` (GRDB's DatabasePool sets NORMAL on the writer when it turns WAL on).
@Suite struct BankDurabilityTests {
    @Test("the connection that commits is in WAL mode with synchronous = FULL")
    func writerIsFull() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("vouch-bank-durability-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try SQLiteBankStore(path: directory.appendingPathComponent("bank.sqlite").path)
        let (level, mode) = try store.pool.writeWithoutTransaction { db in
            (try Int.fetchOne(db, sql: "PRAGMA synchronous"), try String.fetchOne(db, sql: "PRAGMA journal_mode"))
        }
        #expect(level == 2, "synchronous must be FULL (2) on the writer")
        #expect(mode == "wal")
    }
}
