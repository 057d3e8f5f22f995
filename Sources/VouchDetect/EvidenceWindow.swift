/// The samples an event carries as evidence: the last `before` samples up to its start, and up to
/// `after` samples from the start on. Every buffer is allocated when the window is made, so feeding a
/// sample never allocates; 24 bytes a sample, `(before + after) × 24` bytes in all.
///
/// While an event is collected the ring of earlier samples stands still (it is the event's "before").
/// When the event finishes, ``samples`` still gives its window until the next sample is observed;
/// then the window starts empty again, so the next event's "before" holds only samples seen since
/// the last one finished.
public struct EvidenceWindow: Sendable {
    /// A sample in three words; `Int64.min` stands for a failed reading (no decoder produces it).
    struct Packed: Sendable {
        var monoMs: Int64
        var wallMs: Int64
        var value: Int64

        init(_ s: DetectorSample) {
            monoMs = s.monoMs
            wallMs = s.wallMs
            value = s.value ?? .min
        }

        var sample: DetectorSample { DetectorSample(monoMs: monoMs, wallMs: wallMs, value: value == .min ? nil : value) }
    }

    public let beforeCapacity: Int
    public let afterCapacity: Int
    /// The most recent samples, a ring (oldest at `head` once full); frozen while collecting.
    private var ring: [Packed]
    private var head = 0
    /// From the start sample on.
    private var after: [Packed]
    /// The start's monotonic time: ring samples from it on are not "before".
    private var startMonoMs: Int64 = .max
    public private(set) var isCollecting = false
    /// Finished: the next observed sample starts a fresh ring.
    private var finished = false

    public init(before: Int, after: Int) {
        beforeCapacity = max(0, before)
        afterCapacity = max(1, after)
        ring = []
        ring.reserveCapacity(beforeCapacity)
        self.after = []
        self.after.reserveCapacity(afterCapacity)
    }

    /// Every sample, in order. While collecting, kept as an "after" sample until there are enough.
    public mutating func observe(_ sample: DetectorSample) {
        if finished {
            ring.removeAll(keepingCapacity: true)
            after.removeAll(keepingCapacity: true)
            head = 0
            startMonoMs = .max
            finished = false
        }
        if isCollecting {
            if after.count < afterCapacity, after.last?.monoMs != sample.monoMs { after.append(Packed(sample)) }
            return
        }
        guard beforeCapacity > 0 else { return }
        if ring.count < beforeCapacity {
            ring.append(Packed(sample))
        } else {
            ring[head] = Packed(sample)
            head = (head + 1) % beforeCapacity
        }
    }

    /// An event (or a candidate for one) begins at `start`, which was the last sample observed or is
    /// the next: the samples before it are kept as they are now.
    public mutating func begin(at start: DetectorSample) {
        after.removeAll(keepingCapacity: true)
        after.append(Packed(start))
        startMonoMs = start.monoMs
        isCollecting = true
        finished = false
    }

    /// The event ended or the candidate was dropped.
    public mutating func finish() {
        isCollecting = false
        finished = true
    }

    /// Before and after the start, oldest first.
    public var samples: [DetectorSample] {
        var out: [DetectorSample] = []
        out.reserveCapacity(ring.count + after.count)
        for i in 0..<ring.count {
            let p = ring[(head + i) % ring.count]
            if p.monoMs < startMonoMs { out.append(p.sample) }
        }
        for p in after { out.append(p.sample) }
        return out
    }

    /// Bytes this window keeps.
    public var stateBytes: Int {
        MemoryLayout<Self>.size + (beforeCapacity + afterCapacity) * MemoryLayout<Packed>.stride
    }
}
