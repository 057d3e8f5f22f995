/// The state machine of ``ContactDetector`` and ``ThresholdDetector`` (which document it for their
/// channels): a condition that must hold `minDurationMs` while the calendar watches to become an
/// event, and that ends only when the channel says so. Owns the evidence window.
struct HeldCondition: Sendable {
    enum Phase: UInt8, Sendable { case idle, candidate, active }

    /// What a sample changed, reported once the sample is in the window.
    enum Transition: Sendable, Equatable { case started(elapsedMs: Int64), ended }

    let minDurationMs: Int64
    private(set) var phase: Phase = .idle
    /// The first sample of the condition (candidate or event).
    private(set) var start = DetectorSample(monoMs: 0, wallMs: 0, value: nil)
    private(set) var window: EvidenceWindow
    private(set) var score: Double = 0

    init(minDurationMs: Int64, windowBefore: Int, windowAfter: Int) {
        self.minDurationMs = minDurationMs
        window = EvidenceWindow(before: windowBefore, after: windowAfter)
    }

    /// Feeds a sample; for a readable one, `holds`: the condition holds at it, `over`: a confirmed event
    /// ends at it, `watched`: the calendar lets a condition begin or go on unconfirmed. A failed poll
    /// (`readable` false) changes nothing but the window.
    @inline(__always)
    mutating func feed(_ sample: DetectorSample, readable: Bool, holds: Bool, over: Bool, watched: Bool) -> Transition? {
        let transition = readable ? advance(sample, holds: holds, over: over, watched: watched) : nil
        // Observed after a window is begun at this sample, so the full `before` samples stay ahead of it.
        window.observe(sample)
        return transition
    }

    private mutating func advance(_ sample: DetectorSample, holds: Bool, over: Bool, watched: Bool) -> Transition? {
        switch phase {
        case .idle:
            guard holds, watched else {
                score = 0
                return nil
            }
            phase = .candidate
            start = sample
            window.begin(at: sample)
            return confirmIfLongEnough(sample)
        case .candidate:
            guard holds, watched else {
                phase = .idle
                window.finish()
                score = 0
                return nil
            }
            return confirmIfLongEnough(sample)
        case .active:
            guard over else { return nil }
            phase = .idle
            window.finish()
            score = 0
            return .ended
        }
    }

    private mutating func confirmIfLongEnough(_ sample: DetectorSample) -> Transition? {
        let elapsed = DetectorMath.minus(sample.monoMs, start.monoMs)
        guard elapsed >= minDurationMs else {
            score = developingScore(elapsedMs: elapsed, neededMs: minDurationMs)
            return nil
        }
        phase = .active
        score = 1
        return .started(elapsedMs: elapsed)
    }
}
