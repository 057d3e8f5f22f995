import Testing
import VouchEvidence

/// RFC 6962 §2.1, written as the RFC states it: MTH({}) = SHA-256(), MTH({d0}) = SHA-256(0x00 ‖ d0),
/// MTH(D[n]) = SHA-256(0x01 ‖ MTH(D[0:k]) ‖ MTH(D[k:n])) with k the largest power of two < n.
func referenceMTH(_ leaves: ArraySlice<[UInt8]>) -> [UInt8] {
    switch leaves.count {
    case 0: return RefSHA256.hash([])
    case 1:
        var leaf: [UInt8] = [0x00]
        leaf += leaves.first!
        return RefSHA256.hash(leaf)
    default:
        var k = 1
        while k * 2 < leaves.count { k *= 2 }
        let mid = leaves.startIndex + k
        let left: [UInt8] = referenceMTH(leaves[leaves.startIndex..<mid])
        let right: [UInt8] = referenceMTH(leaves[mid...])
        var node: [UInt8] = [0x01]
        node += left
        node += right
        return RefSHA256.hash(node)
    }
}

@Suite struct MerkleTests {
    /// Leaves of different lengths and contents (the first one empty) so no two are alike.
    static func leaves(_ n: Int) -> [[UInt8]] {
        var out: [[UInt8]] = []
        for i in 0..<n {
            var leaf: [UInt8] = i == 0 ? [] : [UInt8(i)]
            for j in 0..<((i * 7) % 13) {
                let byte: Int = (i * 31 + j * 17 + 5) & 0xFF
                leaf.append(UInt8(byte))
            }
            out.append(leaf)
        }
        return out
    }

    @Test(arguments: 0...33)
    func rootMatchesRecursiveRFC6962Definition(_ n: Int) {
        let leaves = Self.leaves(n)
        #expect(refHex(Merkle.root(leaves: leaves)) == refHex(referenceMTH(leaves[...])), "n = \(n)")
    }

    @Test func emptyTreeIsSHA256OfNothing() {
        #expect(refHex(Merkle.root(leaves: [])) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    }

    @Test func leafHashPrefixesZeroByte() {
        #expect(Merkle.leafHash([1, 2, 3]) == RefSHA256.hash([0, 1, 2, 3]))
        #expect(Merkle.leafHash([1, 2, 3]) != RefSHA256.hash([1, 2, 3]))
    }

    // Test vector of the certificate-transparency reference implementation (merkle_tree_test).
    static let ctLeaves: [[UInt8]] = [
        "", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f",
    ].map(refUnhex)

    static let ctRoots: [(Int, String)] = [
        (1, "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
        (2, "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"),
        (3, "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77"),
        (4, "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        (5, "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4"),
        (6, "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef"),
        (7, "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c"),
        (8, "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"),
    ]

    @Test(arguments: ctRoots)
    func certificateTransparencyTestVector(_ n: Int, _ root: String) {
        #expect(refHex(Merkle.root(leaves: Array(Self.ctLeaves.prefix(n)))) == root)
        // The reference implementation above must agree too, or comparing against it proves nothing.
        #expect(refHex(referenceMTH(Self.ctLeaves.prefix(n))) == root)
    }

    @Test func leafOrderMatters() {
        let a: [UInt8] = [1], b: [UInt8] = [2]
        #expect(Merkle.root(leaves: [a, b]) != Merkle.root(leaves: [b, a]))
    }

    // Domain separation: a two-leaf tree is not the same as one leaf holding the two leaf hashes.
    @Test func interiorNodeIsNotMistakenForALeaf() {
        let a: [UInt8] = [1], b: [UInt8] = [2]
        let forged = Merkle.leafHash(a) + Merkle.leafHash(b)
        #expect(Merkle.root(leaves: [a, b]) != Merkle.root(leaves: [forged]))
        #expect(Merkle.root(leaves: [a, b]) == RefSHA256.hash([0x01] + forged))
    }
}

/// RFC 6962 §2.1.1 `PATH(m, D[n])`, written as the RFC states it, over the reference hash:
/// PATH(0, {d0}) = {}; for m < k: PATH(m, D[0:k]) : MTH(D[k:n]); for m ≥ k: PATH(m − k, D[k:n]) : MTH(D[0:k]).
func referencePath(_ m: Int, _ leaves: ArraySlice<[UInt8]>) -> [[UInt8]] {
    let n = leaves.count
    if n <= 1 { return [] }
    var k = 1
    while k * 2 < n { k *= 2 }
    let mid = leaves.startIndex + k
    if m < k {
        return referencePath(m, leaves[leaves.startIndex..<mid]) + [referenceMTH(leaves[mid...])]
    }
    return referencePath(m - k, leaves[mid...]) + [referenceMTH(leaves[leaves.startIndex..<mid])]
}

@Suite struct AuditPathTests {
    static let leaves = MerkleTests.leaves(70)

    @Test(arguments: 1...33)
    func everyIndexOfEveryTreeSizeProvesItsLeaf(_ n: Int) throws {
        let leaves = Array(Self.leaves.prefix(n))
        let root = Merkle.root(leaves: leaves)
        for index in 0..<n {
            let path = Merkle.auditPath(index: index, leaves: leaves)
            #expect(path == referencePath(index, leaves[...]), "n = \(n), index = \(index)")
            #expect(path.allSatisfy { $0.count == 32 })
            let computed = Merkle.rootFromPath(leaf: leaves[index], index: index, size: n, path: path)
            #expect(computed == root, "n = \(n), index = \(index)")
            #expect(computed.map(refHex) == refHex(referenceMTH(leaves[...])))
        }
    }

    @Test func pathLengthIsTheDepthOfTheLeaf() {
        // A perfect tree of 8: every path has 3 siblings. In a tree of 5, leaf 4 hangs off the root.
        let eight = Array(Self.leaves.prefix(8))
        for i in 0..<8 { #expect(Merkle.auditPath(index: i, leaves: eight).count == 3) }
        let five = Array(Self.leaves.prefix(5))
        #expect(Merkle.auditPath(index: 4, leaves: five) == [Merkle.root(leaves: Array(five.prefix(4)))])
        #expect(Merkle.auditPath(index: 0, leaves: [[1]]).isEmpty)
        #expect(Merkle.rootFromPath(leaf: [1], index: 0, size: 1, path: []) == Merkle.leafHash([1]))
    }

    @Test func certificateTransparencyAuditPaths() {
        // RFC 6962 §2.1.3's example tree of 7 leaves (a…f and j the leaf hashes of d0…d6, g = (a,b),
        // h = (c,d), i = (e,f), k = (g,h), l = (i,j)): the audit path of d0 is [b, h, l], of d3 [c, g, l],
        // of d4 [f, j, k], of d6 [i, k].
        let d = MerkleTests.ctLeaves.prefix(7).map { $0 }
        let h = d.map(Merkle.leafHash)
        let g = Merkle.nodeHash(h[0], h[1])
        let hNode = Merkle.nodeHash(h[2], h[3])
        let i = Merkle.nodeHash(h[4], h[5])
        let k = Merkle.nodeHash(g, hNode)
        let l = Merkle.nodeHash(i, h[6])
        #expect(Merkle.auditPath(index: 0, leaves: d) == [h[1], hNode, l])
        #expect(Merkle.auditPath(index: 3, leaves: d) == [h[2], g, l])
        #expect(Merkle.auditPath(index: 4, leaves: d) == [h[5], h[6], k])
        #expect(Merkle.auditPath(index: 6, leaves: d) == [i, k])
        #expect(Merkle.nodeHash(k, l) == Merkle.root(leaves: d))
    }

    @Test(arguments: 1...33)
    func tamperedPathsDoNotLeadToTheRoot(_ n: Int) {
        let leaves = Array(Self.leaves.prefix(n))
        let root = Merkle.root(leaves: leaves)
        for index in 0..<n {
            let path = Merkle.auditPath(index: index, leaves: leaves)
            let leaf = leaves[index]
            // Each sibling hash with one bit flipped.
            for p in path.indices {
                var bad = path
                bad[p][p % 32] ^= 0x01
                #expect(Merkle.rootFromPath(leaf: leaf, index: index, size: n, path: bad) != root, "n \(n) i \(index) p \(p)")
            }
            // Another leaf at the same position.
            #expect(Merkle.rootFromPath(leaf: leaf + [0], index: index, size: n, path: path) != root)
            // A sibling dropped, or one added.
            if !path.isEmpty {
                #expect(Merkle.rootFromPath(leaf: leaf, index: index, size: n, path: Array(path.dropLast())) != root)
                #expect(Merkle.rootFromPath(leaf: leaf, index: index, size: n, path: Array(path.dropFirst())) != root)
            }
            #expect(Merkle.rootFromPath(leaf: leaf, index: index, size: n, path: path + [root]) == nil)
            // Siblings swapped.
            if path.count >= 2 {
                var swapped = path
                swapped.swapAt(0, 1)
                #expect(Merkle.rootFromPath(leaf: leaf, index: index, size: n, path: swapped) != root)
            }
            // The path claimed for any other index.
            for other in 0..<n where other != index {
                #expect(Merkle.rootFromPath(leaf: leaf, index: other, size: n, path: path) != root, "n \(n): \(index) as \(other)")
            }
            // The path claimed for a tree of another size: it never proves the leaf in that tree.
            for size in Set([n - 1, n + 1, 2 * n, n + 7]) where size > index {
                let otherRoot = Merkle.root(leaves: Array(Self.leaves.prefix(size)))
                #expect(Merkle.rootFromPath(leaf: leaf, index: index, size: size, path: path) != otherRoot, "n \(n) i \(index) as size \(size)")
            }
        }
    }

    @Test func pathsThatCannotFitTheTreeAreNil() {
        let leaves = Array(Self.leaves.prefix(6))
        let path = Merkle.auditPath(index: 2, leaves: leaves)
        #expect(Merkle.rootFromPath(leaf: leaves[2], index: 2, size: 6, path: path) != nil)
        #expect(Merkle.rootFromPath(leaf: leaves[2], index: 6, size: 6, path: path) == nil)
        #expect(Merkle.rootFromPath(leaf: leaves[2], index: 7, size: 6, path: path) == nil)
        #expect(Merkle.rootFromPath(leaf: leaves[2], index: -1, size: 6, path: path) == nil)
        #expect(Merkle.rootFromPath(leaf: leaves[2], index: 0, size: 0, path: []) == nil)
        #expect(Merkle.rootFromPath(leaf: leaves[2], index: 2, size: 6, path: path.map { Array($0.prefix(31)) }) == nil)
        #expect(Merkle.rootFromPath(leaf: leaves[2], index: 2, size: 6, path: path.map { $0 + [0] }) == nil)
        // Too short: the walk ends before the root.
        #expect(Merkle.rootFromPath(leaf: leaves[2], index: 2, size: 6, path: []) == nil)
        // A one-leaf tree has no siblings.
        #expect(Merkle.rootFromPath(leaf: leaves[0], index: 0, size: 1, path: [Merkle.leafHash(leaves[1])]) == nil)
    }
}

@Suite struct MerkleLogTests {
    @Test func rootEqualsTheTreeRootAfterEveryAppend() throws {
        let leaves = MerkleTests.leaves(101)
        var log = MerkleLog()
        #expect(log.size == 0)
        #expect(log.frontier.isEmpty)
        #expect(log.root == Merkle.root(leaves: []))
        for (i, leaf) in leaves.enumerated() {
            #expect(log.append(leaf: leaf) == Int64(i))
            let n = i + 1
            #expect(log.size == Int64(n))
            #expect(log.root == Merkle.root(leaves: Array(leaves.prefix(n))), "n = \(n)")
            #expect(refHex(log.root) == refHex(referenceMTH(leaves.prefix(n))), "n = \(n)")
            #expect(log.frontier.count == n.nonzeroBitCount, "n = \(n)")
        }
    }

    @Test func frontierIsThePerfectSubtreeRootsLargestFirst() throws {
        let leaves = MerkleTests.leaves(13)  // 13 = 8 + 4 + 1
        var log = MerkleLog()
        for leaf in leaves { log.append(leaf: leaf) }
        #expect(log.frontier == [
            Merkle.root(leaves: Array(leaves[0..<8])), Merkle.root(leaves: Array(leaves[8..<12])), Merkle.root(leaves: Array(leaves[12..<13])),
        ])
    }

    @Test func aLogRestoredFromItsFrontierCarriesOn() throws {
        let leaves = MerkleTests.leaves(70)
        for cut in [0, 1, 2, 3, 7, 8, 31, 32, 33, 50] {
            var log = MerkleLog()
            for leaf in leaves.prefix(cut) { log.append(leaf: leaf) }
            var restored = try MerkleLog(size: log.size, frontier: log.frontier)
            #expect(restored == log)
            for leaf in leaves.dropFirst(cut) { restored.append(leaf: leaf) }
            #expect(restored.root == Merkle.root(leaves: leaves), "cut at \(cut)")
            #expect(restored.size == 70)
        }
    }

    struct Shape: Sendable, CustomTestStringConvertible {
        let size: Int64
        let hashes: [Int]  // lengths of the frontier hashes
        var testDescription: String { "size \(size), hashes \(hashes)" }
    }

    static let wrongShapes: [Shape] = [
        Shape(size: -1, hashes: []),
        Shape(size: 0, hashes: [32]),
        Shape(size: 1, hashes: []),
        Shape(size: 1, hashes: [32, 32]),
        Shape(size: 3, hashes: [32]),
        Shape(size: 4, hashes: [32, 32]),
        Shape(size: 7, hashes: [32, 32]),
        Shape(size: 7, hashes: [32, 32, 31]),
        Shape(size: 2, hashes: [33]),
        Shape(size: 2, hashes: [0]),
    ]

    @Test(arguments: wrongShapes)
    func frontierOfTheWrongShapeIsRefused(_ s: Shape) {
        let frontier = s.hashes.map { [UInt8](repeating: 7, count: $0) }
        #expect(evidenceError { try MerkleLog(size: s.size, frontier: frontier) }?.code == .malformedPayload)
    }

    @Test func frontierOfTheRightShapeIsAccepted() throws {
        #expect(try MerkleLog(size: 0, frontier: []) == MerkleLog())
        let five = try MerkleLog(size: 5, frontier: [[UInt8](repeating: 1, count: 32), [UInt8](repeating: 2, count: 32)])
        #expect(five.size == 5)
        #expect(five.root == Merkle.nodeHash([UInt8](repeating: 1, count: 32), [UInt8](repeating: 2, count: 32)))
    }
}
