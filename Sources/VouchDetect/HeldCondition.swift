/// The state machine of ``ContactDetector`` and ``ThresholdDetector`` (which document it for their
/// channels): a condition that must hold `minDurationMs` while the calendar watches to become an
/// event, and that ends only when the channel says so. Owns the evidence window.
struct HeldCondition: Sendable {
    enum Phase: UInt8, Sendable { case idle, candidate, active }

    /// What a sample changed, reported once the sample is in the window.
    enum Transition: Sendable, Equatable { case started(elapsedMs: Int64), ended }

    private(set) var score: Double = 0
    private var startSample = EvidenceWindow.Packed(DetectorSample(monoMs: 0, wallMs: 0, value: nil))
    private(set) var window: EvidenceWindow
    private(set) var phase: Phase = .idle

    init(windowBefore: Int, windowAfter: Int) {
        window = EvidenceWindow(before: windowBefore, after: windowAfter)
    }

    /// The first sample of the condition (candidate or event).
    var start: DetectorSample { startSample.sample }

    /// Feeds a sample; for a readable one, `minMs`: how long the condition must hold, `holds`: the condition holds at it, `over`: a confirmed event
    /// ends at it, `watched`: the calendar lets a condition begin or go on unconfirmed. A failed poll
    /// (`readable` false) changes nothing but the window.
    @inline(__always)
    mutating func feed(_ sample: DetectorSample, minMs: Int64, readable: Bool, holds: Bool, over: Bool, watched: Bool) -> Transition? {
        let transition = readable ? advance(sample, minMs, holds: holds, over: over, watched: watched) : nil
        // Observed after a window is begun at this sample, so the full `before` samples stay ahead of it.
        window.observe(sample)
        return transition
    }

    private mutating func advance(_ sample: DetectorSample, _ minMs: Int64, holds: Bool, over: Bool, watched: Bool) -> Transition? {
        switch phase {
        case .idle:
            guard holds, watched else {
                score = 0
                return nil
            }
            phase = .candidate
            startSample = EvidenceWindow.Packed(sample)
            window.begin(at: sample)
            return confirmIfLongEnough(sample, minMs)
        case .candidate:
            guard holds, watched else {
                phase = .idle
                window.finish()
                score = 0
                return nil
            }
            return confirmIfLongEnough(sample, minMs)
        case .active:
            guard over else { return nil }
            phase = .idle
            window.finish()
            score = 0
            return .ended
        }
    }

    private mutating func confirmIfLongEnough(_ sample: DetectorSample, _ minMs: Int64) -> Transition? {
        let elapsed = DetectorMath.minus(sample.monoMs, startSample.monoMs)
        guard elapsed >= minMs else {
            score = developingScore(elapsedMs: elapsed, neededMs: minMs)
            return nil
        }
        phase = .active
        score = 1
        return .started(elapsedMs: elapsed)
    }
}
