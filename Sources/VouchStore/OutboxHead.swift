import Foundation
import VouchEvidence

/// A copy, outside the database, of what the chain needs to go on if the outbox database is lost:
/// the last batch the bank acknowledged (its `bseq`, signing input hash and receipt hash), the highest
/// `rseq` the agent had assigned by then, and the boot count. Written atomically (temporary file,
/// fsync, rename, fsync of the directory) after each receipt and each start.
///
/// Why the last *delivered* batch and not the last sealed one: after a corruption the batches sealed
/// but never delivered are gone; the bank never saw them, so the chain continues after the last batch
/// it did see, and a signed gap record says what was lost.
public struct OutboxHead: Sendable, Equatable {
    public var bseq: Int64
    public var hash: String
    public var receiptHash: String?
    public var lastRseq: Int64
    public var bootCount: Int64

    public init(bseq: Int64, hash: String, receiptHash: String?, lastRseq: Int64, bootCount: Int64) {
        self.bseq = bseq
        self.hash = hash
        self.receiptHash = receiptHash
        self.lastRseq = lastRseq
        self.bootCount = bootCount
    }

    var json: JSONValue {
        [
            "v": 1, "bseq": .int(bseq), "hash": .string(hash), "rcpt": receiptHash.map(JSONValue.string) ?? .null, "rseq": .int(lastRseq),
            "boot": .int(bootCount),
        ]
    }

    init?(json: JSONValue) {
        guard let o = json.objectValue, o["v"]?.intValue == 1, let bseq = o["bseq"]?.intValue, let hash = o["hash"]?.stringValue,
            let rseq = o["rseq"]?.intValue, let boot = o["boot"]?.intValue
        else { return nil }
        self.init(bseq: bseq, hash: hash, receiptHash: o["rcpt"]?.stringValue, lastRseq: rseq, bootCount: boot)
    }

    public static func path(forOutbox outbox: String) -> String { outbox + ".head" }

    /// nil when there is no file (a fresh site) or it does not parse.
    public static func read(outbox: String) -> OutboxHead? {
        guard let data = FileManager.default.contents(atPath: path(forOutbox: outbox)),
            let json = try? CanonicalJSON.decode(Array(data))
        else { return nil }
        return OutboxHead(json: json)
    }

    func write(outbox: String) throws(StoreError) {
        let target = Self.path(forOutbox: outbox)
        let temporary = target + ".tmp"
        let bytes = CanonicalJSON.encode(json)
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw StoreError(.io, "cannot write \(temporary): \(String(cString: strerror(errno)))") }
        let written = bytes.withUnsafeBytes { Foundation.write(fd, $0.baseAddress, $0.count) }
        let synced = fsync(fd)
        close(fd)
        guard written == bytes.count, synced == 0 else { throw StoreError(.io, "cannot write \(temporary): \(String(cString: strerror(errno)))") }
        guard rename(temporary, target) == 0 else { throw StoreError(.io, "cannot replace \(target): \(String(cString: strerror(errno)))") }
        let directory = (target as NSString).deletingLastPathComponent
        let dfd = open(directory.isEmpty ? "." : directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 {
            fsync(dfd)
            close(dfd)
        }
    }
}

/// What opening the outbox found: a database that could not be used is moved aside (kept, never read
/// again as evidence) and a fresh one carries the chain on from ``OutboxHead``.
public struct OutboxRecovery: Sendable, Equatable {
    /// Where the unusable database now lies.
    public var movedTo: String
    /// Why it could not be used.
    public var reason: String
    /// What the chain goes on from; nil when no head was ever written (nothing was delivered).
    public var head: OutboxHead?

    public init(movedTo: String, reason: String, head: OutboxHead?) {
        self.movedTo = movedTo
        self.reason = reason
        self.head = head
    }
}
