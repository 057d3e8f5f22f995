/// A value outside its allowed range for a while: tilt or vibration on parked equipment (someone is
/// loading it onto a truck), a temperature or pressure out of range.
///
/// State machine:
/// - `inside`: the last readable value was within [`below`, `above`] (a nil limit is no limit), or
///   `when` does not hold.
/// - `candidate(start)`: outside since `start`, the first outside sample while `when` holds; not yet
///   `minDurationMs` long. Dropped by any readable sample back within the limits (the condition
///   must hold throughout), or by `when` ceasing to hold before it is confirmed.
/// - `outside(start)`: outside for at least `minDurationMs` → `.start` with `severity`. Ends (`.end`)
///   at the first sample back inside by `hysteresis` (≤ above − hysteresis and ≥ below +
///   hysteresis), so a value hovering at a limit does not flap; the calendar no longer matters.
///
/// Rules of evidence:
/// - The start is the first outside sample while `when` holds; confirmed at the first sample at least
///   `minDurationMs` after it. The finding reports the farthest value outside seen so far.
/// - A failed poll is neither inside nor outside: it neither confirms, drops nor ends.
///
/// State: 496 bytes on a 64-bit target with the default 5/5 window (``stateBytes``): 256 of
/// the detector itself, 240 of the window's ring (24 bytes a sample), inside the 512 B per channel.
public struct ThresholdDetector: Detector {
    public static let kind = "threshold"
    public static let version: Int64 = 1

    public typealias When = DetectorWhen

    public struct Parameters: Sendable, Equatable {
        /// Values above this are outside (channel units, scaled); nil: no upper limit.
        public var above: Int64?
        /// Values below this are outside; nil: no lower limit.
        public var below: Int64?
        /// Milliseconds the value must stay outside to count; 0: the first outside sample.
        public var minDurationMs: Int64
        /// How far back inside (channel units) a value must be to end an event.
        public var hysteresis: Int64
        public var when: When
        public var severity: Severity

        public init(above: Int64? = nil, below: Int64? = nil, minDurationMs: Int64, hysteresis: Int64 = 0, when: When = .always, severity: Severity = .alarm) {
            self.above = above
            self.below = below
            self.minDurationMs = minDurationMs
            self.hysteresis = hysteresis
            self.when = when
            self.severity = severity
        }
    }

    public let rule: RuleIdentity
    public let parameters: Parameters
    private var condition: HeldCondition
    /// The value farthest outside since the condition's start.
    private var extreme: Int64 = 0

    public init(rule: RuleIdentity, parameters: Parameters, windowBefore: Int = 5, windowAfter: Int = 5) {
        self.rule = rule
        self.parameters = parameters
        condition = HeldCondition(windowBefore: windowBefore, windowAfter: windowAfter)
    }

    public var score: Double { condition.score }

    public var stateBytes: Int {
        healthStateBytes(window: condition.window)
    }

    /// The limits as plain integers: a nil limit is the far end of Int64.
    private var upper: Int64 { parameters.above ?? .max }
    private var lower: Int64 { parameters.below ?? .min }

    public mutating func feed(_ sample: DetectorSample, _ context: SiteContext) -> Finding? {
        let value = sample.value ?? 0
        if sample.value != nil {
            if condition.phase == .idle { extreme = value } else { noteExtreme(value) }
        }
        let outside = value > upper || value < lower
        let backInside = value <= DetectorMath.minus(upper, parameters.hysteresis) && value >= DetectorMath.plus(lower, parameters.hysteresis)
        let transition = condition.feed(sample, minMs: parameters.minDurationMs, readable: sample.value != nil, holds: outside, over: backInside, watched: parameters.when.holds(context))
        switch transition {
        case nil:
            return nil
        case .started(let elapsed):
            let side = extreme > upper ? "above the limit \(rule.format(upper))" : "below the limit \(rule.format(lower))"
            let text = "\(rule.channel) at \(rule.format(value)) (farthest \(rule.format(extreme))), \(side) for \(HealthText.duration(elapsed))\(parameters.when.phrase)"
            return finding(.start, at: sample, end: nil, text)
        case .ended:
            let lasted = HealthText.duration(DetectorMath.minus(sample.monoMs, condition.start.monoMs))
            return finding(.end, at: sample, end: sample, "\(rule.channel) back inside at \(rule.format(value)) after \(lasted) (farthest: \(rule.format(extreme)))")
        }
    }

    @inline(__always)
    private mutating func noteExtreme(_ value: Int64) {
        if distanceOutside(value) > distanceOutside(extreme) { extreme = value }
    }

    @inline(__always)
    private func distanceOutside(_ value: Int64) -> Int64 {
        value > upper ? DetectorMath.minus(value, upper) : value < lower ? DetectorMath.minus(lower, value) : 0
    }

    private func finding(_ phase: Finding.Phase, at: DetectorSample, end: DetectorSample?, _ text: String) -> Finding {
        var baseline: [String: Int64] = [:]
        if let above = parameters.above { baseline["above"] = above }
        if let below = parameters.below { baseline["below"] = below }
        return Finding(
            phase: phase, rule: rule, severity: parameters.severity, start: condition.start, end: end, at: at,
            params: [
                "above": DetectorText.optional(parameters.above), "below": DetectorText.optional(parameters.below),
                "min_duration_ms": .int(parameters.minDurationMs), "hysteresis": .int(parameters.hysteresis),
                "when": .text(parameters.when.rawValue), "severity": .text(parameters.severity.rawValue),
            ],
            baseline: baseline, window: condition.window.samples, explanation: text)
    }
}
