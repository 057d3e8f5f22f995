/// The settling and drop state machine of ``WeightDropDetector`` (which documents it), shared with
/// ``CountDropDetector`` (a count is a weight without noise or pilferage). Owns the evidence window;
/// the detectors turn its steps into findings.
struct SettledDrop: Sendable {
    enum Phase: UInt8, Sendable { case unsettled, watching, candidate, drop, pilferage, resumed, awayLoss }

    enum Step: Sendable, Equatable {
        /// The drop held `settleMs`: the event starts (`start`, `eventFrom`, `isRelease` describe it).
        case confirmed(elapsedMs: Int64)
        /// The weight settled after a drop: the event ends. `corrected`: back within tolerance.
        case settled(weight: Int64, corrected: Bool)
        /// The settled weight is beyond the cumulative tolerance below the reference (`eventFrom`).
        case pilferage
        /// The pilferage event ends.
        case pilferageRecorded
        /// After a restart (``resume(baseline:reference:)``), the first settled weight is beyond the
        /// tolerance below the baseline kept from before: it left while the agent was not watching.
        case lossWhileAway(weight: Int64)
        /// That event ends.
        case awayLossRecorded
    }

    // The parameters, Optionals as `none` (saves their padding: this is per-channel state).
    private let toleranceAbs: Int64
    private let tolerancePerMille: Int64
    private let cumulativeAbs: Int64
    private let cumulativePerMille: Int64
    private let noise: Int64
    private let settleMs: Int64
    /// The settled weight drops are measured from.
    private(set) var baseline: Int64 = 0
    /// What pilferage is measured from.
    private(set) var reference: Int64 = 0
    /// Values below this are a sudden drop (`.min`: none is).
    private(set) var dropLimit: Int64 = .min
    /// A settled weight below this is pilferage (`.min`: none is).
    private var pilferLimit: Int64 = .min
    private var runStartMs: Int64 = 0
    private var runMin: Int64 = 0
    private var runMax: Int64 = 0
    // The open event: settable because a monotonic CountDropDetector, which never steps this
    // machine, keeps its tampering event here rather than in fields of its own (per-channel bytes).
    /// The baseline (drop) or reference (pilferage) the open event is measured from.
    var eventFrom: Int64 = 0
    /// The lowest readable value since the drop began.
    var lowest: Int64 = 0
    private(set) var score: Double = 0
    var startSample = EvidenceWindow.Packed(DetectorSample(monoMs: 0, wallMs: 0, value: nil))
    var window: EvidenceWindow
    private(set) var phase: Phase = .unsettled
    private var hasRun = false
    /// A release window was open when the drop began.
    private(set) var isRelease = false
    private var wasReleaseOpen = false

    private static let none = Int64.min

    init(parameters p: WeightDropDetector.Parameters, windowBefore: Int, windowAfter: Int) {
        toleranceAbs = p.toleranceAbs ?? Self.none
        tolerancePerMille = p.tolerancePerMille ?? Self.none
        cumulativeAbs = p.cumulativeAbs ?? Self.none
        cumulativePerMille = p.cumulativePerMille ?? Self.none
        noise = p.noise
        settleMs = p.settleMs
        window = EvidenceWindow(before: windowBefore, after: windowAfter)
    }

    var parameters: WeightDropDetector.Parameters {
        WeightDropDetector.Parameters(
            toleranceAbs: Self.given(toleranceAbs), tolerancePerMille: Self.given(tolerancePerMille), noise: noise, settleMs: settleMs,
            cumulativeAbs: Self.given(cumulativeAbs), cumulativePerMille: Self.given(cumulativePerMille))
    }

    /// The first sample of the open event.
    var start: DetectorSample { startSample.sample }

    private static func given(_ v: Int64) -> Int64? { v == none ? nil : v }

    /// The baseline and reference to keep across a restart; nil before the first settle. A confirmed
    /// drop is on record: what is kept is the weight it fell to (its lowest reading), so a restart
    /// before it settles does not report the same loss again, only a further one.
    var carryOver: (baseline: Int64, reference: Int64)? {
        switch phase {
        case .unsettled: nil
        case .drop: (lowest, lowest)
        case .resumed, .watching, .candidate, .pilferage, .awayLoss: (baseline, reference)
        }
    }

    /// Starts from a baseline and reference kept from before a restart: the first weight to settle is
    /// compared with them (``Step/lossWhileAway(weight:)``) instead of becoming the baseline.
    mutating func resume(baseline: Int64, reference: Int64) {
        guard phase == .unsettled else { return }
        setBaseline(baseline)
        setReference(reference)
        phase = .resumed
    }

    /// `watched`: whether a drop may begin (or go on unconfirmed) now; a confirmed drop runs on.
    mutating func step(_ sample: DetectorSample, _ context: SiteContext, watched: Bool = true) -> Step? {
        // Observed last, so that a window begun at this sample keeps the full `before` samples ahead of it.
        defer { window.observe(sample) }
        if wasReleaseOpen, !context.releaseOpen, phase != .unsettled { setReference(baseline) }
        wasReleaseOpen = context.releaseOpen
        guard let value = sample.value else { return nil }
        extendRun(value, sample.monoMs)
        let settled = DetectorMath.minus(sample.monoMs, runStartMs) >= settleMs
        let middle = runMin + DetectorMath.minus(runMax, runMin) / 2
        switch phase {
        case .unsettled:
            guard settled else { return nil }
            phase = .watching
            setBaseline(middle)
            setReference(middle)
            return nil
        case .resumed:
            guard settled else { return nil }
            if middle < dropLimit, watched {
                phase = .awayLoss
                startSample = EvidenceWindow.Packed(sample)
                eventFrom = baseline
                lowest = runMin
                isRelease = context.releaseOpen
                window.begin(at: sample)
                score = 1
                setBaseline(middle)
                setReference(middle)
                return .lossWhileAway(weight: middle)
            }
            // Within tolerance: the weight is the baseline again; the kept reference goes on measuring
            // pilferage (a restock while away raises it, as in `watching`).
            phase = .watching
            setBaseline(middle)
            if context.releaseOpen || middle > DetectorMath.plus(reference, noise) { setReference(middle) }
            return nil
        case .awayLoss:
            phase = .watching
            window.finish()
            score = watchingScore(value)
            return .awayLossRecorded
        case .watching:
            if value < dropLimit, watched {
                phase = .candidate
                startSample = EvidenceWindow.Packed(sample)
                eventFrom = baseline
                lowest = value
                isRelease = context.releaseOpen
                window.begin(at: sample)
                // The weight after the drop settles from the drop on, even if the noise allowance
                // would have let the drop extend the run before it.
                restartRun(value, sample.monoMs)
                return confirmIfHeld(sample)
            }
            if settled {
                if middle != baseline { setBaseline(middle) }
                // A rise within the noise is not a restock: it would ratchet the reference upward.
                if context.releaseOpen || middle > DetectorMath.plus(reference, noise) {
                    setReference(middle)
                } else if middle < pilferLimit {
                    phase = .pilferage
                    startSample = EvidenceWindow.Packed(sample)
                    eventFrom = reference
                    isRelease = false
                    window.begin(at: sample)
                    score = 1
                    // Reported once: further pilferage is measured from here.
                    setReference(middle)
                    return .pilferage
                }
            }
            score = watchingScore(value)
            return nil
        case .candidate:
            guard value < dropLimit, watched else {
                phase = .watching
                window.finish()
                score = watchingScore(value)
                return nil
            }
            lowest = min(lowest, value)
            return confirmIfHeld(sample)
        case .drop:
            lowest = min(lowest, value)
            guard settled else { return nil }
            phase = .watching
            window.finish()
            let corrected = middle >= dropLimit
            if !corrected {
                setBaseline(middle)
                setReference(middle)
            }
            score = watchingScore(value)
            return .settled(weight: middle, corrected: corrected)
        case .pilferage:
            phase = .watching
            window.finish()
            score = watchingScore(value)
            return .pilferageRecorded
        }
    }

    /// Extends the current run with `value`, or begins a new one at it.
    @inline(__always)
    private mutating func extendRun(_ value: Int64, _ monoMs: Int64) {
        let lo = min(runMin, value), hi = max(runMax, value)
        if hasRun, DetectorMath.minus(hi, lo) <= DetectorMath.plus(noise, noise) {
            runMin = lo
            runMax = hi
        } else {
            restartRun(value, monoMs)
        }
    }

    @inline(__always)
    private mutating func restartRun(_ value: Int64, _ monoMs: Int64) {
        hasRun = true
        runStartMs = monoMs
        runMin = value
        runMax = value
    }

    private mutating func setBaseline(_ weight: Int64) {
        baseline = weight
        dropLimit = DetectorMath.tolerance(abs: Self.given(toleranceAbs), perMille: Self.given(tolerancePerMille), of: weight)
            .map { DetectorMath.minus(weight, $0) } ?? .min
    }

    private mutating func setReference(_ weight: Int64) {
        reference = weight
        pilferLimit = DetectorMath.tolerance(abs: Self.given(cumulativeAbs), perMille: Self.given(cumulativePerMille), of: weight)
            .map { DetectorMath.minus(weight, $0) } ?? .min
    }

    /// 0 at the baseline, rising to 0.5 as the value (beyond the noise) nears the drop tolerance or
    /// the settled weight nears the pilferage tolerance.
    @inline(__always)
    private func watchingScore(_ value: Int64) -> Double {
        let sudden = Self.fraction(DetectorMath.minus(DetectorMath.minus(baseline, value), noise), of: DetectorMath.minus(baseline, dropLimit))
        let slow = Self.fraction(DetectorMath.minus(reference, baseline), of: DetectorMath.minus(reference, pilferLimit))
        return 0.5 * max(sudden, slow)
    }

    @inline(__always)
    private static func fraction(_ part: Int64, of whole: Int64) -> Double {
        guard part > 0, whole > 0, whole < .max else { return 0 }
        return min(1, Double(part) / Double(whole))
    }

    private mutating func confirmIfHeld(_ sample: DetectorSample) -> Step? {
        let elapsed = DetectorMath.minus(sample.monoMs, startSample.monoMs)
        guard elapsed >= settleMs else {
            score = developingScore(elapsedMs: elapsed, neededMs: settleMs)
            return nil
        }
        phase = .drop
        score = 1
        return .confirmed(elapsedMs: elapsed)
    }
}
