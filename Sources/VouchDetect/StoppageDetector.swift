import VouchCore

/// Production stoppage from a power or current channel: the value stays below a threshold for at
/// least `minDuration` while the shift is on.
///
/// State machine (one per rule), fed one reading at a time:
/// - `running`: the last known value was at or above the threshold.
/// - `candidate(start)`: below since `start`, not yet long enough.
/// - `stopped(start)`: below for at least `minDuration`; the start event has been emitted.
///
/// Rules of evidence:
/// - `start` is the time of the first reading below the threshold (so the reported start is late
///   by at most one poll interval).
/// - A failed poll is neither below nor above: it neither confirms nor ends a stoppage.
/// - Out of shift, a low value does not begin a candidate (and an unconfirmed one is dropped), so a
///   stop that begins before the shift is counted from the first in-shift reading. A confirmed
///   stoppage runs until the value comes back, whatever the shift does.
///
/// Memory: O(windowSamples): a ring of the last samples before the start, and up to
/// `windowSamples` samples from the start on.
public struct StoppageDetector: Sendable {
    public struct Rule: Sendable, Equatable {
        public var id: String
        public var version: Int64 = 1
        public var channel: String
        /// Threshold in the channel's integer-scaled units.
        public var threshold: Int64
        public var minDurationMs: Int64
        public var severity: String
        public var windowSamples: Int
        public var unit: String
        public var scaleExponent: Int64

        public init(id: String, channel: String, threshold: Int64, minDurationMs: Int64, severity: String, windowSamples: Int, unit: String, scaleExponent: Int64) {
            self.id = id
            self.channel = channel
            self.threshold = threshold
            self.minDurationMs = minDurationMs
            self.severity = severity
            self.windowSamples = windowSamples
            self.unit = unit
            self.scaleExponent = scaleExponent
        }
    }

    public typealias Sample = DetectorSample

    public enum Output: Sendable, Equatable {
        /// Confirmed: below since `start`, `durationMs` so far; window = samples before and from the start.
        case started(start: Sample, durationMs: Int64, lowest: Int64?, window: [Sample])
        /// Ended at `end` (the first reading back at or above the threshold).
        case ended(start: Sample, end: Sample, durationMs: Int64)
    }

    enum Phase: Sendable, Equatable {
        case running
        case candidate(start: Sample)
        case stopped(start: Sample)
    }

    public let rule: Rule
    private(set) var phase: Phase = .running
    private var before: [Sample] = []  // ring buffer, oldest first
    private var after: [Sample] = []
    private var lowest: Int64?

    public init(rule: Rule) { self.rule = rule }

    public var isStopped: Bool { if case .stopped = phase { true } else { false } }

    public mutating func feed(_ sample: Sample, inShift: Bool) -> Output? {
        defer { remember(sample) }
        guard let value = sample.value else { return nil }
        let below = value < rule.threshold
        switch phase {
        case .running:
            guard below, inShift else { return nil }
            phase = .candidate(start: sample)
            after = [sample]
            lowest = value
            return confirmIfLongEnough(now: sample)
        case .candidate(let start):
            if !below || !inShift {
                phase = .running
                after = []
                return nil
            }
            appendAfter(sample)
            lowest = min(lowest ?? value, value)
            return confirmIfLongEnough(now: sample, start: start)
        case .stopped(let start):
            if below {
                appendAfter(sample)
                return nil
            }
            phase = .running
            after = []
            return .ended(start: start, end: sample, durationMs: sample.monoMs - start.monoMs)
        }
    }

    private mutating func confirmIfLongEnough(now: Sample, start: Sample? = nil) -> Output? {
        let start = start ?? now
        let duration = now.monoMs - start.monoMs
        guard duration >= rule.minDurationMs else { return nil }
        phase = .stopped(start: start)
        return .started(start: start, durationMs: duration, lowest: lowest, window: before + after)
    }

    private mutating func appendAfter(_ sample: Sample) {
        if after.count < rule.windowSamples { after.append(sample) }
    }

    /// Keeps the last `windowSamples` readings seen while not inside a candidate or stoppage.
    private mutating func remember(_ sample: Sample) {
        guard case .running = phase, rule.windowSamples > 0 else { return }
        if before.count == rule.windowSamples { before.removeFirst() }
        before.append(sample)
    }
}
