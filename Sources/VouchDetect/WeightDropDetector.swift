/// Pledged stock leaving a load cell: a sudden drop of the weight beyond a tolerance below the
/// settled weight, outside an open release window; and slow pilferage, small drops that each stay
/// under that tolerance but add up.
///
/// Settling: a *run* is a stretch of readable samples whose spread (max − min) stays within
/// 2·`noise` (each within ±`noise` of the run's middle); a sample outside it begins a new run. A run
/// that has lasted `settleMs` is *settled*; its middle is the settled weight.
///
/// State machine:
/// - `unsettled`: no settled weight yet. The first settled run becomes the `baseline` and the
///   pilferage `reference`.
/// - `watching`: while the current run is settled, the baseline follows it, so restocking (an
///   increase) and small drops become the new baseline without an event. The reference rises with
///   the baseline when it settles more than `noise` above it (restocking raises what is pledged),
///   follows it while a release window is open, and is reset to it when a release window closes.
///   A baseline settling more than the cumulative tolerance below the reference → `pilferage`. A
///   sample more than the tolerance below the baseline → `candidate`.
/// - `candidate(start)`: below the tolerance since `start`. Any readable sample back within
///   tolerance drops it (a forklift bumping the scale); held for `settleMs` → `drop`, `.start`:
///   `.alarm` if no release window was open at `start`, else `.record` (a release).
/// - `drop(start)`: ends when the weight settles again (a run begun at or after `start` lasts
///   `settleMs`; the run is restarted at `start`, so pre-drop samples never count).
///   A theft does not "end" — the stock stays gone — so the event ends when its loss is known: the
///   `.end` carries the settled weight and the loss, and the settled weight becomes the baseline and
///   the reference (the loss is on record once, not again as pilferage). If it settles back within
///   tolerance of the baseline, the drop was corrected (a weighing glitch, stock put back) and the
///   baseline stays. A drop that lands at once and holds still has settled by the time it is
///   confirmed, so its `.end` follows the `.start` at the next readable sample.
/// - `pilferage(start)`: found when a run settles, so there is nothing left to wait for: the
///   reference moves to the settled weight and the `.end` follows at the next readable sample.
/// - Across an agent restart (``carryOver`` kept by the agent, ``resume(_:)``): `resumed` holds the
///   baseline and reference from before; the first run to settle more than the tolerance below the
///   baseline is a loss while the gateway was not watching (`awayLoss`, `.start` dated at that settle,
///   `.end` at the next readable sample; `.record` inside a release window); within tolerance it is
///   the baseline again and the kept reference goes on measuring pilferage. During a confirmed drop
///   the weight it fell to is kept, so a restart does not report the same loss twice.
///
/// Rules of evidence:
/// - A sudden drop is dated by its first sample beyond the tolerance and confirmed at the first
///   sample at least `settleMs` later (within one poll interval). Whether it is a release is decided
///   at that first sample: a drop that began before the window was opened is an alarm.
/// - Pilferage is dated by the sample at which the lower weight is established as settled.
/// - A failed poll neither extends nor breaks a run, neither confirms, drops nor ends: a reading
///   after it confirms if the drop still holds and `settleMs` has passed since its start.
/// - The calendar's shifts and business hours do not matter: only `releaseOpen` does.
/// - Tolerances should exceed 2·`noise` (a sample may be `noise` off a middle that is itself up to
///   `noise` off), or noise alone can cross them.
///
/// State: 501 bytes on a 64-bit target with the default 4/4 window (``stateBytes``): 309 of
/// the detector itself, 192 of the window's ring (24 bytes a sample), inside the 512 B per channel.
public struct WeightDropDetector: Detector {
    public static let kind = "weight_drop"
    public static let version: Int64 = 1

    public struct Parameters: Sendable, Equatable {
        /// A drop counts when it exceeds this many channel units (scaled) below the baseline.
        public var toleranceAbs: Int64?
        /// … or this many per mille of the baseline. Both nil: sudden drops are never events.
        public var tolerancePerMille: Int64?
        /// The load cell's jitter amplitude (channel units): samples within ±noise are one weight.
        public var noise: Int64
        /// Milliseconds a weight must be stable to settle, and a drop must hold to be confirmed.
        public var settleMs: Int64
        /// Pilferage: the settled weight this many units below the reference is an event.
        public var cumulativeAbs: Int64?
        /// … or this many per mille of the reference. Both nil: no pilferage check.
        public var cumulativePerMille: Int64?

        public init(toleranceAbs: Int64? = nil, tolerancePerMille: Int64? = nil, noise: Int64, settleMs: Int64, cumulativeAbs: Int64? = nil, cumulativePerMille: Int64? = nil) {
            self.toleranceAbs = toleranceAbs
            self.tolerancePerMille = tolerancePerMille
            self.noise = noise
            self.settleMs = settleMs
            self.cumulativeAbs = cumulativeAbs
            self.cumulativePerMille = cumulativePerMille
        }
    }

    public let rule: RuleIdentity
    private var core: SettledDrop

    public init(rule: RuleIdentity, parameters: Parameters, windowBefore: Int = 4, windowAfter: Int = 4) {
        self.rule = rule
        core = SettledDrop(parameters: parameters, windowBefore: windowBefore, windowAfter: windowAfter)
    }

    public var parameters: Parameters { core.parameters }
    public var score: Double { core.score }
    /// The settled weight drops are measured from (0 before the first settle).
    public var baseline: Int64 { core.baseline }
    /// What pilferage is measured from.
    public var reference: Int64 { core.reference }

    public var stateBytes: Int {
        healthStateBytes(window: core.window)
    }

    public mutating func feed(_ sample: DetectorSample, _ context: SiteContext) -> Finding? {
        guard let step = core.step(sample, context) else { return nil }
        let from = core.eventFrom
        let severity: Severity = core.isRelease ? .record : .alarm
        switch step {
        case .confirmed(let elapsed):
            let value = sample.value ?? core.lowest
            let loss = DetectorMath.minus(from, value)
            let evidence = ["settled": from, "reference": core.reference]
            if core.isRelease {
                return finding(.start, severity, sample, evidence, "released \(rule.format(loss)) inside the release window (weight \(rule.format(value)), settled \(rule.format(from)))")
            }
            let share = DetectorText.percent(DetectorMath.share(loss, of: from))
            return finding(
                .start, severity, sample, evidence,
                "weight \(rule.format(value)), \(share) below the settled \(rule.format(from)) for \(HealthText.duration(elapsed)), outside any release window: stock left the scale")
        case .settled(let weight, let corrected):
            let loss = DetectorMath.minus(from, weight)
            let evidence = ["settled": from, "after": weight, "loss": loss, "lowest": core.lowest]
            let text: String
            if corrected {
                text = "weight settled back at \(rule.format(weight)), within tolerance of the settled \(rule.format(from)): the drop was corrected"
            } else if core.isRelease {
                text = "release settled at \(rule.format(weight)): \(rule.format(loss)) released inside the release window"
            } else {
                let share = DetectorText.percent(DetectorMath.share(loss, of: from))
                text = "weight settled at \(rule.format(weight)): \(rule.format(loss)) (\(share)) gone from the settled \(rule.format(from)); the new weight is the baseline"
            }
            return finding(.end, severity, sample, evidence, text)
        case .pilferage:
            let loss = DetectorMath.minus(from, core.baseline)
            let share = DetectorText.percent(DetectorMath.share(loss, of: from))
            return finding(
                .start, .alarm, sample, ["reference": from, "settled": core.baseline],
                "weight settled at \(rule.format(core.baseline)), \(rule.format(loss)) (\(share)) below the reference \(rule.format(from)) in drops each within tolerance, outside any release window: slow pilferage")
        case .pilferageRecorded:
            return finding(
                .end, .alarm, sample, ["reference": from, "settled": core.baseline],
                "pilferage on record: \(rule.format(DetectorMath.minus(from, core.baseline))) below the old reference \(rule.format(from)); the reference is now \(rule.format(core.reference))")
        case .lossWhileAway(let weight):
            let loss = DetectorMath.minus(from, weight)
            let share = DetectorText.percent(DetectorMath.share(loss, of: from))
            let text = core.isRelease
                ? "weight settled at \(rule.format(weight)) after the agent restarted, \(rule.format(loss)) below the \(rule.format(from)) settled before it stopped, inside the release window: released"
                : "weight settled at \(rule.format(weight)) after the agent restarted, \(rule.format(loss)) (\(share)) below the \(rule.format(from)) settled before it stopped: stock left while the gateway was not watching"
            return finding(.start, severity, sample, ["settled": from, "after": weight], text)
        case .awayLossRecorded:
            return finding(
                .end, severity, sample, ["settled": from, "after": core.baseline],
                "loss while the gateway was not watching on record: \(rule.format(DetectorMath.minus(from, core.baseline))); the baseline is now \(rule.format(core.baseline))")
        }
    }

    public var carryOver: [String: Int64]? { core.carryOver.map { ["baseline": $0.baseline, "reference": $0.reference] } }

    public mutating func resume(_ carried: [String: Int64]) {
        guard let baseline = carried["baseline"], let reference = carried["reference"] else { return }
        core.resume(baseline: baseline, reference: reference)
    }

    private func finding(_ phase: Finding.Phase, _ severity: Severity, _ at: DetectorSample, _ baseline: [String: Int64], _ text: String) -> Finding {
        let p = core.parameters
        return Finding(
            phase: phase, rule: rule, severity: severity, start: core.start, end: phase == .end ? at : nil, at: at,
            params: [
                "tolerance": DetectorText.optional(p.toleranceAbs), "tolerance_per_mille": DetectorText.optional(p.tolerancePerMille),
                "noise": .int(p.noise), "settle_ms": .int(p.settleMs),
                "cumulative": DetectorText.optional(p.cumulativeAbs), "cumulative_per_mille": DetectorText.optional(p.cumulativePerMille),
            ],
            baseline: baseline, window: core.window.samples, explanation: text)
    }
}
