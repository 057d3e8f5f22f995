/// A count that must not fall: tags or items in a pledged store (an RFID reader's count register),
/// or a counter that must never go backwards (an energy meter: a decrease is tampering or a
/// replaced meter).
///
/// Item counts (`backwardsIsTamper` false) follow ``WeightDropDetector``'s state machine with no
/// noise and no pilferage check:
/// - `unsettled` → `watching`: a count unchanged for `settleMs` is the settled count; later settled
///   counts (restocking, drops smaller than `dropAbs`) replace it without an event.
/// - `watching` → `candidate(start)`: a count at least `dropAbs` below the settled count, while
///   `when` holds. Dropped by a count back above that, or by `when` ceasing to hold.
/// - `candidate` → `drop`: held for `settleMs` → `.start`, `.record` if a release window was open at
///   `start` (a release), else `.alarm`.
/// - `drop` → `watching`: when the count is unchanged for `settleMs` again, `.end` with the settled
///   count and the loss, which becomes the settled count; settled back within `dropAbs` of the old
///   count, the drop was corrected (a missed read) and the settled count stays.
///
/// Monotonic counters (`backwardsIsTamper` true), instead:
/// - `counting` → `tampered(start)`: any readable value below the previous readable one → `.start`
///   `.alarm` at once, whatever the calendar or release windows say: such a counter never
///   legitimately goes back. A counter that wraps (a 32-bit register) must be unwrapped before it
///   reaches the detector.
/// - `tampered` → `counting`: no further decrease for `settleMs`, `.end` with how far it went back.
///
/// Rules of evidence: a drop is dated by its first sample at least `dropAbs` below and confirmed at
/// the first sample at least `settleMs` later; a decrease by the sample that decreased. A failed poll
/// neither counts nor breaks anything: the next readable value is compared with the last readable one.
///
/// State: 498 bytes on a 64-bit target with the default 3/3 window (``stateBytes``): 354 of
/// the detector itself, 144 of the window's ring (24 bytes a sample), inside the 512 B per channel.
public struct CountDropDetector: Detector {
    public static let kind = "count_drop"
    public static let version: Int64 = 1

    public typealias When = DetectorWhen

    public struct Parameters: Sendable, Equatable {
        /// A drop of at least this many below the settled count is an event.
        public var dropAbs: Int64
        /// Milliseconds a count must stay unchanged to settle and a drop must hold to be confirmed;
        /// for monotonic counters, how long without a decrease ends a tampering event.
        public var settleMs: Int64
        /// When a drop may begin (release windows decide its severity in any case).
        public var when: When
        /// Monotonic counter: any decrease at all is an alarm (and `dropAbs` is not used).
        public var backwardsIsTamper: Bool

        public init(dropAbs: Int64, settleMs: Int64, when: When = .always, backwardsIsTamper: Bool = false) {
            self.dropAbs = dropAbs
            self.settleMs = settleMs
            self.when = when
            self.backwardsIsTamper = backwardsIsTamper
        }
    }

    public let rule: RuleIdentity
    public let parameters: Parameters
    private var core: SettledDrop
    // Monotonic counters only (the tampering event's start, level before and lowest are kept in
    // the core, which they do not otherwise use).
    private var last: Int64 = 0
    private var lastDecreaseMs: Int64 = 0
    private var hasLast = false
    private var tampered = false

    public init(rule: RuleIdentity, parameters: Parameters, windowBefore: Int = 3, windowAfter: Int = 3) {
        self.rule = rule
        self.parameters = parameters
        // "At least dropAbs below" is "more than dropAbs − 1 below"; counts have no noise.
        let settling = WeightDropDetector.Parameters(
            toleranceAbs: DetectorMath.minus(max(1, parameters.dropAbs), 1), noise: 0, settleMs: parameters.settleMs)
        core = SettledDrop(parameters: settling, windowBefore: windowBefore, windowAfter: windowAfter)
    }

    public var score: Double { parameters.backwardsIsTamper ? (tampered ? 1 : 0) : core.score }

    /// The settled count drops are measured from (item counts; 0 before the first settle).
    public var settledCount: Int64 { core.baseline }

    public var stateBytes: Int {
        healthStateBytes(window: core.window)
    }

    public mutating func feed(_ sample: DetectorSample, _ context: SiteContext) -> Finding? {
        if parameters.backwardsIsTamper { return feedMonotonic(sample) }
        guard let step = core.step(sample, context, watched: parameters.when.holds(context)) else { return nil }
        let from = core.eventFrom
        let severity: Severity = core.isRelease ? .record : .alarm
        switch step {
        case .confirmed(let elapsed):
            let value = sample.value ?? core.lowest
            let loss = DetectorMath.minus(from, value)
            let text = core.isRelease
                ? "released \(rule.format(loss)) inside the release window (count \(rule.format(value)), settled \(rule.format(from)))"
                : "count \(rule.format(value)), \(rule.format(loss)) below the settled \(rule.format(from)) for \(HealthText.duration(elapsed))\(parameters.when.phrase), outside any release window: items left"
            return finding(.start, severity, core.start, sample, ["settled": from], text)
        case .settled(let count, let corrected):
            let loss = DetectorMath.minus(from, count)
            let text: String
            if corrected {
                text = "count settled back at \(rule.format(count)), less than \(rule.format(parameters.dropAbs)) below the settled \(rule.format(from)): the drop was corrected"
            } else {
                text = "count settled at \(rule.format(count)): \(rule.format(loss)) " + (core.isRelease ? "released inside the release window" : "gone from the settled \(rule.format(from))")
            }
            return finding(.end, severity, core.start, sample, ["settled": from, "after": count, "loss": loss, "lowest": core.lowest], text)
        case .pilferage, .pilferageRecorded:
            // No cumulative tolerance is given to the core, so it never reports pilferage.
            return nil
        case .lossWhileAway(let count):
            let loss = DetectorMath.minus(from, count)
            let text = core.isRelease
                ? "count settled at \(rule.format(count)) after the agent restarted, \(rule.format(loss)) below the \(rule.format(from)) settled before it stopped, inside the release window: released"
                : "count settled at \(rule.format(count)) after the agent restarted, \(rule.format(loss)) below the \(rule.format(from)) settled before it stopped: items left while the gateway was not watching"
            return finding(.start, severity, core.start, sample, ["settled": from, "after": count], text)
        case .awayLossRecorded:
            return finding(
                .end, severity, core.start, sample, ["settled": from, "after": core.baseline],
                "loss while the gateway was not watching on record: \(rule.format(DetectorMath.minus(from, core.baseline))); the settled count is now \(rule.format(core.baseline))")
        }
    }

    /// A counter that must never go down keeps nothing: its running total may restart with the agent
    /// (GPIO pulse counters do), which is not tampering.
    public var carryOver: [String: Int64]? {
        parameters.backwardsIsTamper ? nil : core.carryOver.map { ["baseline": $0.baseline, "reference": $0.reference] }
    }

    public mutating func resume(_ carried: [String: Int64]) {
        guard !parameters.backwardsIsTamper, let baseline = carried["baseline"], let reference = carried["reference"] else { return }
        core.resume(baseline: baseline, reference: reference)
    }

    private mutating func feedMonotonic(_ sample: DetectorSample) -> Finding? {
        guard let value = sample.value else {
            core.window.observe(sample)
            return nil
        }
        defer {
            last = value
            hasLast = true
        }
        let decreased = hasLast && value < last
        if tampered {
            core.window.observe(sample)
            if decreased {
                lastDecreaseMs = sample.monoMs
                core.lowest = min(core.lowest, value)
                return nil
            }
            guard DetectorMath.minus(sample.monoMs, lastDecreaseMs) >= parameters.settleMs else { return nil }
            tampered = false
            core.window.finish()
            let back = DetectorMath.minus(core.eventFrom, core.lowest)
            return finding(
                .end, .alarm, core.start, sample, ["before": core.eventFrom, "lowest": core.lowest],
                "counter counting forward again for \(HealthText.duration(parameters.settleMs)) at \(rule.format(value)); it went back by \(rule.format(back)) from \(rule.format(core.eventFrom))")
        }
        guard decreased else {
            core.window.observe(sample)
            return nil
        }
        core.window.begin(at: sample)
        core.window.observe(sample)
        tampered = true
        core.startSample = EvidenceWindow.Packed(sample)
        lastDecreaseMs = sample.monoMs
        core.eventFrom = last
        core.lowest = value
        return finding(
            .start, .alarm, sample, sample, ["before": last],
            "counter went backwards from \(rule.format(last)) to \(rule.format(value)): tampering or a replaced meter")
    }

    private func finding(_ phase: Finding.Phase, _ severity: Severity, _ start: DetectorSample, _ at: DetectorSample, _ baseline: [String: Int64], _ text: String) -> Finding {
        Finding(
            phase: phase, rule: rule, severity: severity, start: start, end: phase == .end ? at : nil, at: at,
            params: [
                "drop": .int(parameters.dropAbs), "settle_ms": .int(parameters.settleMs),
                "when": .text(parameters.when.rawValue), "backwards_is_tamper": HealthText.flag(parameters.backwardsIsTamper),
            ],
            baseline: baseline, window: core.window.samples, explanation: text)
    }
}
