import Testing
@testable import VouchModbus

/// A device whose readable addresses are `map`: a read is answered only if every address it covers exists.
private struct Device {
    let readable: Set<Int>
    init(_ ranges: [ClosedRange<Int>]) { readable = Set(ranges.flatMap { Array($0) }) }
    func read(_ address: Int, _ count: Int) -> Bool { (address..<(address + count)).allSatisfy(readable.contains) }
}

struct Aborted: Error, Equatable { let address: Int }

struct RegisterRangeScanTests {
    @Test(arguments: [
        // Exact edges inside one block, across block borders, at the ends of the range, single registers.
        [0...9, 100...119],
        [3...3, 7...8, 49...50, 51...60],
        [0...999],
        [],
        [48...52, 97...102, 998...999],
        [1...1, 3...3, 5...5, 7...7],
    ] as [[ClosedRange<Int>]])
    func findsExactEdges(map: [ClosedRange<Int>]) {
        let device = Device(map)
        let outcome = RegisterRangeScan.scan(0...999, block: 50) { a, n in device.read(a, n) }
        // Adjacent ranges of the map come back merged: the scan sees addresses, not how the map was written.
        let expected = Self.merged(map.filter { $0.upperBound <= 999 })
        #expect(outcome.readable == expected)
    }

    @Test func aFullyReadableRangeCostsOneReadPerBlock() {
        let outcome = RegisterRangeScan.scan(0...999, block: 100) { _, _ in true }
        #expect(outcome.readable == [0...999])
        #expect(outcome.requests == 10)
    }

    @Test func aRefusedBlockCostsAtMostTwoReadsPerAddress() {
        let outcome = RegisterRangeScan.scan(0...49, block: 50) { _, _ in false }
        #expect(outcome.readable.isEmpty)
        #expect(outcome.requests < 2 * 50)
    }

    @Test func oneHoleCostsAboutTwoLogNReads() {
        let device = Device([0...24, 26...49])
        let outcome = RegisterRangeScan.scan(0...49, block: 50) { a, n in device.read(a, n) }
        #expect(outcome.readable == [0...24, 26...49])
        #expect(outcome.requests <= 16)
    }

    @Test func aRangeThatIsNotAMultipleOfTheBlockEndsExactly() {
        var asked: [ClosedRange<Int>] = []
        _ = RegisterRangeScan.scan(10...134, block: 50) { a, n in
            asked.append(a...(a + n - 1))
            return true
        }
        #expect(asked == [10...59, 60...109, 110...134])
    }

    @Test func aThrownErrorEndsTheScan() {
        #expect(throws: Aborted(address: 50)) {
            try RegisterRangeScan.scan(0...199, block: 50) { (a, _) throws(Aborted) -> Bool in
                if a >= 50 { throw Aborted(address: a) }
                return true
            }
        }
    }

    static func merged(_ ranges: [ClosedRange<Int>]) -> [ClosedRange<Int>] {
        var out: [ClosedRange<Int>] = []
        for r in ranges.sorted(by: { $0.lowerBound < $1.lowerBound }) {
            if let last = out.last, last.upperBound + 1 >= r.lowerBound {
                out[out.count - 1] = last.lowerBound...max(last.upperBound, r.upperBound)
            } else {
                out.append(r)
            }
        }
        return out
    }
}
