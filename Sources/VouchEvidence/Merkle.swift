import Crypto

/// Merkle tree hash over the records of a batch, exactly as RFC 6962 §2.1 defines it:
/// `MTH({}) = SHA-256()`, `leaf = SHA-256(0x00 ‖ d)`, `node = SHA-256(0x01 ‖ left ‖ right)`, splitting
/// at the largest power of two smaller than n. A leaf `d` is the canonical JSON of one record.
public enum Merkle {
    public static func leafHash(_ leaf: [UInt8]) -> [UInt8] {
        var h = SHA256()
        h.update(data: [0x00])
        h.update(data: leaf)
        return Array(h.finalize())
    }

    static func nodeHash(_ left: [UInt8], _ right: [UInt8]) -> [UInt8] {
        var h = SHA256()
        h.update(data: [0x01])
        h.update(data: left)
        h.update(data: right)
        return Array(h.finalize())
    }

    public static func root(leaves: [[UInt8]]) -> [UInt8] {
        if leaves.isEmpty { return Array(SHA256.hash(data: [UInt8]())) }
        return root(hashes: leaves.map(leafHash))
    }

    static func root(hashes: [[UInt8]]) -> [UInt8] {
        var level = hashes
        // Bottom-up pairing gives the same tree as RFC 6962's recursive split: an odd node at the end of
        // a level is carried up unchanged, which is where the recursive definition puts it too.
        while level.count > 1 {
            var next: [[UInt8]] = []
            next.reserveCapacity((level.count + 1) / 2)
            var i = 0
            while i + 1 < level.count {
                next.append(nodeHash(level[i], level[i + 1]))
                i += 2
            }
            if i < level.count { next.append(level[i]) }
            level = next
        }
        return level[0]
    }
}
