import VouchCore

/// Count/min/max/mean/last of one channel over fixed intervals of monotonic time.
///
/// An interval starts with its first reading and closes when a reading arrives at or after
/// `start + interval` (that reading opens the next one), or when flushed at shutdown; a flushed
/// interval reports the span it really covered (first to last reading), not the configured one. Integer
/// arithmetic throughout; the mean rounds half away from zero. Memory: O(1).
public struct IntervalSummarizer: Sendable {
    public struct Summary: Sendable, Equatable {
        public var channel: String
        public var start: ClockReading
        public var intervalMs: Int64
        public var count: Int64
        public var errors: Int64
        public var min: Int64?
        public var max: Int64?
        public var mean: Int64?
        public var last: Int64?
        public var lastError: String?
        public var unit: String
        public var scaleExponent: Int64
    }

    public let channel: String
    public let intervalMs: Int64
    private var open: Summary?
    private var sum: Int64 = 0  // saturating: a sum that overflows leaves the mean nil

    private var sumOverflowed = false
    private var lastMonoMs: Int64 = 0

    public init(channel: String, intervalMs: Int64) {
        self.channel = channel
        self.intervalMs = intervalMs
    }

    /// Adds a reading; returns the interval it closed, if any.
    public mutating func add(_ reading: Reading) -> Summary? {
        var closed: Summary?
        if let current = open, reading.time.monoMs - current.start.monoMs >= intervalMs {
            closed = close(span: intervalMs)
        }
        if open == nil {
            open = Summary(channel: channel, start: reading.time, intervalMs: intervalMs, count: 0, errors: 0, unit: reading.unit, scaleExponent: reading.scaleExponent)
            sum = 0
            sumOverflowed = false
        }
        if var s = open {
            lastMonoMs = reading.time.monoMs
            switch reading.quality {
            case .ok:
                if let v = reading.value {
                    s.count += 1
                    s.min = Swift.min(s.min ?? v, v)
                    s.max = Swift.max(s.max ?? v, v)
                    s.last = v
                    let (total, overflow) = sum.addingReportingOverflow(v)
                    sum = total
                    sumOverflowed = sumOverflowed || overflow
                }
            case .commError(let code, _):
                s.errors += 1
                s.lastError = code
            }
            open = s
        }
        return closed
    }

    /// Closes the open interval early (at shutdown), if any.
    public mutating func flush() -> Summary? {
        guard let s = open else { return nil }
        return close(span: lastMonoMs - s.start.monoMs)
    }

    private mutating func close(span: Int64) -> Summary? {
        guard var s = open else { return nil }
        s.intervalMs = span
        if s.count > 0, !sumOverflowed {
            let q = sum / s.count, r = sum % s.count
            s.mean = q + (2 * abs(r) >= s.count ? (sum < 0 ? -1 : 1) : 0)
        }
        open = nil
        return s
    }
}
