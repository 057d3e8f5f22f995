import VouchCore

/// A generic anomaly detector for any numeric channel, where no specific rule fits: it learns what the
/// channel usually reads at each time of the week and scores every sample by how far it is from that,
/// in [0, 1]; a score that stays high is an event. On a power channel it flags unusual idleness or
/// unusually low output (idle on a Tuesday at 10:00 when the machine always runs then), while the same
/// idle on a Sunday is normal.
///
/// The profile: 24 bins, two-hour blocks of the local day × weekday/weekend (from
/// `context.hourOfWeek`). A full week (168 bins) would take 3.5 times the memory and 3.5 times as long
/// to learn (each weekly bin is seen once a week, a folded weekday bin five times); hourly bins would
/// not fit with an evidence window in 512 bytes. A shift edge inside a block makes that block's spread
/// wide, so it is less sensitive there, never more.
///
/// Statistics per bin: a center and a spread (an exponentially weighted mean and mean absolute
/// deviation), updated once per visit of the bin (from the visit's mean and its mean absolute
/// deviation from the old center) with weight `learnRate`, so a bin's memory is a few visits (about a
/// week of weekdays at 0.25) whatever the poll rate. Stored as Float16 relative to a power-of-two scale
/// taken from the channel's first reading (11 bits of precision, values up to 65504 times the first);
/// the visit in progress is kept in Float32/Float64.
///
/// Score of a sample: its deviation from the bin's center (only below it for `.below`, above for
/// `.above`) in units of max(spread, `minSpread`), mapped linearly from 0 at `zeroAtDeviations` to 1
/// at `oneAtDeviations`. 0 during warm-up: until `learnSamples` samples have been learned and while
/// the sample's bin has not completed a visit.
///
/// Learning is robust: a sample scoring at or above `scoreThreshold` is not learned at all, nor is any
/// sample while an event is on, so an ongoing anomaly does not teach itself as normal; other samples
/// are learned clipped to center ± `zeroAtDeviations` spreads, so a lasting change is learned slowly
/// (at most that far per visit) rather than at once.
///
/// Event state machine (valid samples; a failed poll is neither learned nor scored and neither
/// confirms nor ends anything):
/// - clear → candidate at the first sample scoring at or above `scoreThreshold`; back to clear at the
///   first sample below it.
/// - candidate → event after `minDurationMs`: `.start` at the rule's `severity`, dated at the
///   candidate's first sample, confirmed at most one poll interval after `minDurationMs`.
/// - event → clear at the first sample scoring below half of `scoreThreshold` (`.end`): the gap
///   keeps a score hovering at the threshold from flapping.
/// The calendar enters only through the hour of the week; the start's `baseline` holds the bin's
/// center and spread (channel units) and the bin.
///
/// `score` is the last sample's anomaly score itself (not forced to 1 during an event), as
/// `vouch detect replay` writes it per row for tuning.
///
/// State: 473 bytes on a 64-bit target with the default 1/2 window (``stateBytes``): one sample before
/// the start, the start and the next (24 bytes a sample; the profile takes most of the 512).
public struct BaselineDetector: Detector {
    public static let kind = "baseline"
    public static let version: Int64 = 1
    static let bins = 24

    public enum Direction: String, Sendable, Equatable { case both, below, above }

    public struct Parameters: Sendable, Equatable {
        /// Which deviations count: `.below` for low output or idleness, `.above` for excess, or both.
        public var direction: Direction
        /// Score (0…1) at or above which a sample is anomalous; an event needs it for `minDurationMs`.
        public var scoreThreshold: Double
        /// Milliseconds the score must stay at or above `scoreThreshold` to be an event.
        public var minDurationMs: Int64
        /// Samples learned before anything is scored (warm-up; at one a minute, 10080 is a week).
        public var learnSamples: Int64
        /// The smallest spread, in channel units: deviations are counted in max(learned spread,
        /// `minSpread`). Set it to the sensor's noise or resolution, so a bin that happened to be
        /// perfectly steady does not make a hair's deviation an anomaly.
        public var minSpread: Int64
        /// Deviations (in spreads) at which the score starts rising from 0, and at which it reaches 1.
        public var zeroAtDeviations: Double
        public var oneAtDeviations: Double
        /// Weight of one visit of a bin in its statistics (0…1].
        public var learnRate: Double
        public var severity: Severity

        public init(
            direction: Direction = .both, scoreThreshold: Double = 0.5, minDurationMs: Int64, learnSamples: Int64, minSpread: Int64,
            zeroAtDeviations: Double = 3, oneAtDeviations: Double = 8, learnRate: Double = 0.25, severity: Severity = .warning
        ) {
            self.direction = direction
            self.scoreThreshold = min(1, max(0.01, scoreThreshold))
            self.minDurationMs = max(0, minDurationMs)
            self.learnSamples = max(0, learnSamples)
            self.minSpread = max(1, minSpread)
            self.zeroAtDeviations = max(0, zeroAtDeviations)
            self.oneAtDeviations = max(self.zeroAtDeviations + 0.1, oneAtDeviations)
            self.learnRate = min(1, max(0.001, learnRate))
            self.severity = severity
        }
    }

    private enum Phase: UInt8 { case clear, candidate, event }

    public let rule: RuleIdentity
    public let parameters: Parameters
    /// Per bin, relative to `scale`.
    private var centers = InlineArray<24, Float16>(repeating: 0)
    private var spreads = InlineArray<24, Float16>(repeating: 0)
    /// Bit b: bin b has completed a visit.
    private var learnedBins: UInt32 = 0
    private var scale: Float = 0
    /// The visit in progress: its bin (-1 before the first sample), the bin's statistics in channel
    /// units (for an unlearned bin, the visit's first sample and no spread), and sums.
    private var bin: Int8 = -1
    private var binLearned = false
    private var center: Float = 0
    private var spread: Float = 0
    private var visitSum: Double = 0
    private var visitAbsDeviation: Float = 0
    private var visitCount: UInt32 = 0
    private var learnedCount: UInt32 = 0
    private var lastScore: Float = 0
    private var phase: Phase = .clear
    private var start = DetectorSample(monoMs: 0, wallMs: 0, value: nil)
    private var window: EvidenceWindow

    public init(rule: RuleIdentity, parameters: Parameters, windowBefore: Int = 1, windowAfter: Int = 2) {
        self.rule = rule
        self.parameters = parameters
        window = EvidenceWindow(before: windowBefore, after: windowAfter)
    }

    public var score: Double { Double(lastScore) }

    public var stateBytes: Int { healthStateBytes(window: window) }

    public mutating func feed(_ sample: DetectorSample, _ context: SiteContext) -> Finding? {
        defer { window.observe(sample) }
        guard let value = sample.value else { return nil }
        let x = Float(value)
        let how = min(167, max(0, context.hourOfWeek))
        let b = Int8((how % 24) / 2 + (how >= 120 ? 12 : 0))
        if b != bin { moveTo(b, firstValue: x) }
        let p = parameters
        let s = scoreOf(x)
        let threshold = Float(p.scoreThreshold)
        if phase != .event && s < threshold {
            let band = Float(p.zeroAtDeviations) * max(spread, Float(p.minSpread))
            let learned = binLearned ? min(center + band, max(center - band, x)) : x
            visitSum += Double(learned)
            visitAbsDeviation += abs(learned - center)
            visitCount &+= 1
            if learnedCount < UInt32.max { learnedCount += 1 }
        }
        lastScore = s
        switch phase {
        case .clear:
            guard s >= threshold else { return nil }
            phase = .candidate
            start = sample
            window.begin(at: sample)
            return confirmIfHeld(sample)
        case .candidate:
            guard s >= threshold else {
                phase = .clear
                window.finish()
                return nil
            }
            return confirmIfHeld(sample)
        case .event:
            guard s < threshold / 2 else { return nil }
            phase = .clear
            window.finish()
            let text = "back to usual: \(rule.format(value)) against \(usual()) after \(HealthText.duration(sample.monoMs &- start.monoMs))"
            return finding(.end, at: sample, end: sample, explanation: text)
        }
    }

    private func scoreOf(_ x: Float) -> Float {
        guard binLearned, Int64(learnedCount) >= parameters.learnSamples else { return 0 }
        let deviation: Float
        switch parameters.direction {
        case .both: deviation = abs(x - center)
        case .below: deviation = max(0, center - x)
        case .above: deviation = max(0, x - center)
        }
        let z = deviation / max(spread, Float(parameters.minSpread))
        let z0 = Float(parameters.zeroAtDeviations), z1 = Float(parameters.oneAtDeviations)
        return min(1, max(0, (z - z0) / (z1 - z0)))
    }

    /// Closes the visit of the current bin into its statistics and opens one of bin `b`.
    private mutating func moveTo(_ b: Int8, firstValue x: Float) {
        if scale == 0 {
            // A power of two at or above the first reading's magnitude, so stored values stay near 1.
            let m = max(abs(x), Float(parameters.minSpread), 1)
            scale = Float(sign: .plus, exponent: m.exponent + 1, significand: 1)
        }
        if bin >= 0, visitCount > 0 {
            let i = Int(bin)
            let mean = Float(visitSum / Double(visitCount)), mad = visitAbsDeviation / Float(visitCount)
            let rate = Float(parameters.learnRate)
            let newCenter = binLearned ? center + rate * (mean - center) : mean
            let newSpread = binLearned ? spread + rate * (mad - spread) : mad
            centers[i] = Self.half(newCenter / scale)
            spreads[i] = Self.half(newSpread / scale)
            learnedBins |= 1 << UInt32(i)
        }
        bin = b
        let i = Int(b)
        binLearned = learnedBins & (1 << UInt32(i)) != 0
        center = binLearned ? Float(centers[i]) * scale : x
        spread = binLearned ? Float(spreads[i]) * scale : 0
        visitSum = 0
        visitAbsDeviation = 0
        visitCount = 0
    }

    private static func half(_ v: Float) -> Float16 {
        Float16(v.isNaN ? 0 : min(65504, max(-65504, v)))
    }

    private mutating func confirmIfHeld(_ sample: DetectorSample) -> Finding? {
        let held = sample.monoMs &- start.monoMs
        guard held >= parameters.minDurationMs else { return nil }
        phase = .event
        let low = Float(start.value ?? 0) < center
        let shown = IntegerScaling.text(HealthMath.int64(lastScore * 100), exponent: -2)
        let text = "\(rule.format(start.value ?? 0)) against \(usual()) at this time of the week, score \(shown) "
            + "for \(HealthText.duration(held)): unusually \(low ? "low" : "high")"
        return finding(.start, at: sample, end: nil, explanation: text)
    }

    /// "a usual 5000 W ±75 W for weekdays 10:00–12:00".
    private func usual() -> String {
        let i = Int(max(0, bin)), from = (i % 12) * 2
        let hours = "\(from < 10 ? "0" : "")\(from):00–\(from + 2 < 10 ? "0" : "")\(from + 2):00"
        let spreadShown = rule.format(HealthMath.int64(max(spread, Float(parameters.minSpread))))
        return "a usual \(rule.format(HealthMath.int64(center))) ±\(spreadShown) for \(i < 12 ? "weekdays" : "weekends") \(hours)"
    }

    private func finding(_ phase: Finding.Phase, at: DetectorSample, end: DetectorSample?, explanation: String) -> Finding {
        let p = parameters
        return Finding(
            phase: phase, rule: rule, severity: p.severity, start: start, end: end, at: at,
            params: [
                "direction": .text(p.direction.rawValue), "score_threshold": .text("\(p.scoreThreshold)"), "min_duration_ms": .int(p.minDurationMs),
                "learn_samples": .int(p.learnSamples), "min_spread": .int(p.minSpread), "zero_at_deviations": .text("\(p.zeroAtDeviations)"),
                "one_at_deviations": .text("\(p.oneAtDeviations)"), "learn_rate": .text("\(p.learnRate)"), "severity": .text(p.severity.rawValue),
            ],
            baseline: ["center": HealthMath.int64(center), "spread": HealthMath.int64(max(spread, Float(p.minSpread))), "bin": Int64(max(0, bin))],
            window: window.samples, explanation: explanation)
    }
}
