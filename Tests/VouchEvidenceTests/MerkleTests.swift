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
