/// The samples an event carries as evidence: the last `before` samples up to its start, and up to
/// `after` samples from the start on. One ring of `before + after` samples, 24 bytes each, allocated
/// when the window is made, so feeding a sample never allocates.
///
/// The ring records every sample until an event (or a candidate for one) has its `after` samples;
/// then it stands still until the event finishes, so an event confirmed long after its start (a sensor
/// stuck for two hours) still has the samples around its start. A candidate dropped and begun again
/// at a later sample takes the samples just before the new start.
public struct EvidenceWindow: Sendable {
    /// A sample in three words; `Int64.min` stands for a failed reading (no decoder produces it).
    struct Packed: Sendable, Equatable {
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
    private var ring: [Packed]
    /// Where the next sample goes once the ring is full (then also the oldest).
    private var head = 0
    private var start: Packed?
    /// Samples at or after the start recorded so far.
    private var afterCount = 0
    public private(set) var isCollecting = false

    public init(before: Int, after: Int) {
        beforeCapacity = max(0, before)
        afterCapacity = max(1, after)
        ring = []
        ring.reserveCapacity(beforeCapacity + afterCapacity)
    }

    private var isFrozen: Bool { isCollecting && afterCount >= afterCapacity }

    /// Every sample, in order.
    public mutating func observe(_ sample: DetectorSample) {
        guard !isFrozen else { return }
        if let last = newest, last.monoMs == sample.monoMs { return }  // begin(at:) may have brought it in
        push(Packed(sample))
        if isCollecting, let start, sample.monoMs >= start.monoMs { afterCount += 1 }
    }

    /// An event (or a candidate for one) begins at `start`: usually the last sample observed or the
    /// next one; the samples before it are the ones in the ring now.
    public mutating func begin(at start: DetectorSample) {
        let packed = Packed(start)
        self.start = packed
        isCollecting = true
        afterCount = 0
        for i in 0..<ring.count where ring[i].monoMs >= packed.monoMs { afterCount += 1 }
        // The start itself must be there: when it is newer than the ring, take it in now.
        if newest.map({ $0.monoMs < packed.monoMs }) ?? true {
            push(packed)
            afterCount += 1
        }
    }

    /// The event ended or the candidate was dropped: the ring records again.
    public mutating func finish() {
        isCollecting = false
    }

    /// Up to `before` samples before the start, then the start and up to `after - 1` after it, oldest first.
    public var samples: [DetectorSample] {
        guard let start else { return [] }
        var ordered: [Packed] = []
        ordered.reserveCapacity(ring.count)
        for i in 0..<ring.count { ordered.append(ring[(head + i) % ring.count]) }
        let before = ordered.filter { $0.monoMs < start.monoMs }.suffix(beforeCapacity)
        var from = ordered.filter { $0.monoMs >= start.monoMs }.prefix(afterCapacity)
        if from.first?.monoMs != start.monoMs { from = ([start] + from).prefix(afterCapacity) }
        return (before + from).map(\.sample)
    }

    /// Bytes this window keeps.
    public var stateBytes: Int {
        MemoryLayout<Self>.size + (beforeCapacity + afterCapacity) * MemoryLayout<Packed>.stride
    }

    private var newest: Packed? {
        guard !ring.isEmpty else { return nil }
        return ring.count < beforeCapacity + afterCapacity ? ring[ring.count - 1] : ring[(head + ring.count - 1) % ring.count]
    }

    private mutating func push(_ p: Packed) {
        if ring.count < beforeCapacity + afterCapacity {
            ring.append(p)
        } else {
            ring[head] = p
            head = (head + 1) % ring.count
        }
    }
}
