/// The samples an event carries as evidence: the last `before` samples up to its start, and up to
/// `after` samples from the start on. Every buffer is allocated when the window is made, so feeding a
/// sample never allocates.
public struct EvidenceWindow: Sendable {
    public let beforeCapacity: Int
    public let afterCapacity: Int
    /// The most recent samples, a ring (oldest at `head` once full).
    private var ring: [DetectorSample]
    private var head = 0
    /// The ring as it was when the event began, oldest first.
    private var frozenBefore: [DetectorSample]
    /// From the start sample on.
    private var after: [DetectorSample]
    public private(set) var isCollecting = false

    public init(before: Int, after: Int) {
        beforeCapacity = max(0, before)
        afterCapacity = max(1, after)
        ring = []
        ring.reserveCapacity(beforeCapacity)
        frozenBefore = []
        frozenBefore.reserveCapacity(beforeCapacity)
        self.after = []
        self.after.reserveCapacity(afterCapacity)
    }

    /// Every sample, in order. While collecting, also kept as an "after" sample until there are enough.
    public mutating func observe(_ sample: DetectorSample) {
        if isCollecting, after.count < afterCapacity, after.last != sample { after.append(sample) }
        guard beforeCapacity > 0 else { return }
        if ring.count < beforeCapacity {
            ring.append(sample)
        } else {
            ring[head] = sample
            head = (head + 1) % beforeCapacity
        }
    }

    /// An event (or a candidate for one) begins at `start`, which was the last sample observed or is
    /// the next: the samples before it are kept as they are now.
    public mutating func begin(at start: DetectorSample) {
        frozenBefore.removeAll(keepingCapacity: true)
        for i in 0..<ring.count {
            let s = ring[(head + i) % ring.count]
            if s.monoMs < start.monoMs { frozenBefore.append(s) }
        }
        after.removeAll(keepingCapacity: true)
        after.append(start)
        isCollecting = true
    }

    /// The event ended or the candidate was dropped.
    public mutating func finish() {
        isCollecting = false
    }

    /// Before and after the start, oldest first.
    public var samples: [DetectorSample] { frozenBefore + after }

    /// Bytes this window keeps.
    public var stateBytes: Int {
        MemoryLayout<Self>.size + (beforeCapacity * 2 + afterCapacity) * MemoryLayout<DetectorSample>.stride
    }
}
