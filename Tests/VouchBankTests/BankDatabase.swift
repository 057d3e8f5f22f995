import Foundation
import GRDB

/// Reads what the bank's SQLite file holds beyond the BankStore API (incidents), read-only.
enum BankDatabase {
    struct Incident: Equatable {
        var device: String
        var kind: String
        var bseq: Int64
        var detail: String
    }

    static func incidents(_ path: String) throws -> [Incident] {
        var configuration = Configuration()
        configuration.readonly = true
        let queue = try DatabaseQueue(path: path, configuration: configuration)
        return try queue.read { db in
            try Row.fetchAll(db, sql: "SELECT device, kind, bseq, detail FROM incident ORDER BY id").map {
                Incident(device: $0["device"], kind: $0["kind"], bseq: $0["bseq"], detail: $0["detail"])
            }
        }
    }
}
