/// Finds which addresses of one register kind a device lets read (`vouch modbus scan --range`), when
/// its manual is missing or wrong.
///
/// A read succeeds only if every address it covers exists, so the scan reads blocks and halves each
/// refused block until the refused parts are single addresses: the readable ranges come out with exact
/// edges. A block of at most ``singlesBelow`` addresses is probed address by address (cheaper than
/// halving it further). Pure: the reads are the `probe` closure's business.
public enum RegisterRangeScan {
    public static let singlesBelow = 5

    public struct Outcome: Sendable, Equatable {
        /// Readable addresses as maximal contiguous ranges, in address order.
        public var readable: [ClosedRange<Int>]
        /// Reads made.
        public var requests: Int

        public init(readable: [ClosedRange<Int>], requests: Int) {
            self.readable = readable
            self.requests = requests
        }
    }

    /// Scans `range` in blocks of `block` addresses. `probe(address, count)` returns true when the
    /// device answered that read and false when it refused it; a thrown error ends the scan.
    public static func scan<E: Error>(
        _ range: ClosedRange<Int>, block: Int, probe: (_ address: Int, _ count: Int) throws(E) -> Bool
    ) throws(E) -> Outcome {
        precondition(block >= 1, "block must be at least 1")
        var readable: [ClosedRange<Int>] = []
        var requests = 0

        func mark(_ start: Int, _ count: Int) {
            let new = start...(start + count - 1)
            if let last = readable.last, last.upperBound + 1 == start {
                readable[readable.count - 1] = last.lowerBound...new.upperBound
            } else {
                readable.append(new)
            }
        }

        func explore(_ start: Int, _ count: Int) throws(E) {
            requests += 1
            if try probe(start, count) {
                mark(start, count)
                return
            }
            guard count > 1 else { return }
            if count < singlesBelow {
                for a in start..<(start + count) {
                    requests += 1
                    if try probe(a, 1) { mark(a, 1) }
                }
            } else {
                let half = count / 2
                try explore(start, half)
                try explore(start + half, count - half)
            }
        }

        var start = range.lowerBound
        while start <= range.upperBound {
            let count = min(block, range.upperBound - start + 1)
            try explore(start, count)
            start += count
        }
        return Outcome(readable: readable, requests: requests)
    }
}
