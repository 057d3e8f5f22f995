import Foundation
import VouchGPIO

/// The benchmark parts alone (VOUCH_GPIO_ONLY=bench, scripts/bench-gpio): edge-to-reading latency
/// over many more edges than the full run's 10, so a p99 means something, and the sustained
/// write-then-read rate over a longer run. Every figure is measured under TCG (qemu without KVM, one
/// emulated CPU shared by the writer, the kernel and the reader): the rate is a lower bound and the
/// latencies upper bounds of what real hardware does on the same path, not predictions of a board.
extension Checks {
    static let benchEdges = 1_000
    static let benchSustainedSeconds = 5.0

    mutating func bench(rounds: Int) {
        for round in 1...rounds {
            let tag = rounds == 1 ? "bench" : "bench-r\(round)"
            guard let (edges, latencies, toKernel) = edgeLatencies(line: "spare8", count: Self.benchEdges) else {
                check("\(tag)-latency", false, "cannot request spare8")
                continue
            }
            // Every edge must come back, in both directions, in order: a latency over lost edges would flatter.
            let alternating = edges.enumerated().allSatisfy { $0.element.rising == ($0.offset % 2 == 0) }
            let ordered = zip(edges, edges.dropFirst()).allSatisfy { $0.monoNs < $1.monoNs }
            check(
                "\(tag)-latency-edges", edges.count == Self.benchEdges && latencies.count == Self.benchEdges && alternating && ordered,
                "\(edges.count) of \(Self.benchEdges) edges back, alternating \(alternating), kernel timestamps in order \(ordered)")
            let sorted = latencies.sorted(), kernel = toKernel.sorted()
            if !sorted.isEmpty {
                figure("\(tag)-edge-to-reading-latency-median", Self.percentile(sorted, 0.5), "ms (TCG, no KVM)")
                figure("\(tag)-edge-to-reading-latency-p99", Self.percentile(sorted, 0.99), "ms (TCG, no KVM)")
                figure("\(tag)-edge-to-reading-latency-max", sorted.last ?? .nan, "ms (TCG, no KVM)")
                figure("\(tag)-write-to-kernel-timestamp-median", Self.percentile(kernel, 0.5), "ms (TCG, no KVM)")
            }
            sustainedRate(seconds: Self.benchSustainedSeconds, name: "\(tag)-sustained")
        }
    }
}
