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

    public static func nodeHash(_ left: [UInt8], _ right: [UInt8]) -> [UInt8] {
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

    public static func root(hashes: [[UInt8]]) -> [UInt8] {
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

extension Merkle {
    /// RFC 6962 §2.1.1 `PATH(m, D[n])`: the sibling hashes from leaf `index` up to the root, leaf side first.
    public static func auditPath(index: Int, leaves: [[UInt8]]) -> [[UInt8]] {
        precondition(index >= 0 && index < leaves.count, "audit path for leaf \(index) of \(leaves.count)")
        return path(index, leaves.map(leafHash)[...])
    }

    private static func path(_ m: Int, _ hashes: ArraySlice<[UInt8]>) -> [[UInt8]] {
        let n = hashes.count
        if n <= 1 { return [] }
        let k = largestPowerOfTwo(below: n)
        let start = hashes.startIndex
        if m < k {
            return path(m, hashes[start..<start + k]) + [root(hashes: Array(hashes[(start + k)...]))]
        }
        return path(m - k, hashes[(start + k)...]) + [root(hashes: Array(hashes[start..<start + k]))]
    }

    static func largestPowerOfTwo(below n: Int) -> Int {
        var k = 1
        while k << 1 < n { k <<= 1 }
        return k
    }

    /// Recomputes the root from a leaf and its audit path (RFC 9162 §2.1.3.2); nil when the path does
    /// not fit a tree of `size` leaves.
    public static func rootFromPath(leaf: [UInt8], index: Int, size: Int, path: [[UInt8]]) -> [UInt8]? {
        guard index >= 0, index < size else { return nil }
        var fn = index
        var sn = size - 1
        var r = leafHash(leaf)
        for p in path {
            guard p.count == 32, sn != 0 else { return nil }
            if fn & 1 == 1 || fn == sn {
                r = nodeHash(p, r)
                if fn & 1 == 0 {
                    while fn & 1 == 0 && fn != 0 {
                        fn >>= 1
                        sn >>= 1
                    }
                }
            } else {
                r = nodeHash(r, p)
            }
            fn >>= 1
            sn >>= 1
        }
        return sn == 0 ? r : nil
    }
}

/// An append-only Merkle log kept as its frontier: the roots of the perfect subtrees that make up the
/// tree of `size` leaves, largest first (one per set bit of `size`). Appending and computing the
/// RFC 6962 root are O(log n) and need no earlier leaves, so the bank can keep a running root of
/// everything it ever accepted in one row.
public struct MerkleLog: Sendable, Equatable {
    public private(set) var size: Int64
    public private(set) var frontier: [[UInt8]]

    public init() {
        size = 0
        frontier = []
    }

    public init(size: Int64, frontier: [[UInt8]]) throws(EvidenceError) {
        guard size >= 0, frontier.count == size.nonzeroBitCount, frontier.allSatisfy({ $0.count == 32 }) else {
            throw EvidenceError(.malformedPayload, "a log frontier of \(size) leaves has \(size.nonzeroBitCount) hashes of 32 bytes")
        }
        self.size = size
        self.frontier = frontier
    }

    /// Appends a leaf (its bytes, hashed as an RFC 6962 leaf) and returns its index.
    @discardableResult
    public mutating func append(leaf: [UInt8]) -> Int64 {
        let index = size
        var hash = Merkle.leafHash(leaf)
        // Merge equal-sized subtrees the way a binary counter carries: one merge per trailing 1 bit.
        var carry = size
        while carry & 1 == 1 {
            hash = Merkle.nodeHash(frontier.removeLast(), hash)
            carry >>= 1
        }
        frontier.append(hash)
        size += 1
        return index
    }

    /// RFC 6962 `MTH` of all leaves appended so far.
    public var root: [UInt8] {
        guard var r = frontier.last else { return Merkle.root(leaves: []) }
        for h in frontier.dropLast().reversed() { r = Merkle.nodeHash(h, r) }
        return r
    }
}
