/// A stuck sensor: every valid reading stays within ±`epsilon` of the first reading of the run for at
/// least `durationMs`. A live sensor always moves a little (noise, load, temperature), so a value that
/// does not move for hours is a frozen register, a disconnected input held at its last value, or a
/// meter that was tampered with.
///
/// State machine (valid samples only):
/// - moving: the run starts afresh at each sample outside ±`epsilon` of the run's first sample (that
///   sample is the new run's first).
/// - flat (candidate): within ±`epsilon` of the first since the run started, not yet `durationMs`.
/// - stuck (event): `durationMs` within the band: `.start` (`.warning`), dated at the run's first
///   sample and confirmed at most one poll interval after `durationMs`.
/// - stuck → moving: `.end` at the first sample outside the band; that sample starts the next run.
///
/// Rules of evidence: the band is anchored at the run's first reading, not a running mean, so a slow
/// drift of more than `epsilon` ends the run (a sensor that drifts is alive). A failed poll neither
/// confirms nor ends a run (an unplugged sensor that fails to answer is `comm_loss`'s question; one
/// whose driver keeps returning the last value is this rule's). The calendar changes nothing: a
/// sensor is stuck or not whatever the shift. The start's `baseline` is the stuck value.
///
/// State: 377 bytes on a 64-bit target with the default 3/3 window (``stateBytes``; 24 bytes a window sample).
public struct FlatlineDetector: Detector {
    public static let kind = "flatline"
    public static let version: Int64 = 1

    public struct Parameters: Sendable, Equatable {
        /// Half-width of the band, in channel units (integer-scaled): readings within ±`epsilon` of the
        /// run's first count as not moving. Set it at or just above the sensor's resolution: 0 means
        /// exactly the same value.
        public var epsilon: Int64
        /// Milliseconds the value must stay in the band to be an event.
        public var durationMs: Int64

        public init(epsilon: Int64, durationMs: Int64) {
            self.epsilon = max(0, epsilon)
            self.durationMs = max(0, durationMs)
        }
    }

    public let rule: RuleIdentity
    public let parameters: Parameters
    /// The first sample of the current run; `runValue` is its value (valid while `run.isHolding`).
    private var runStart = DetectorSample(monoMs: 0, wallMs: 0, value: nil)
    private var runValue: Int64 = 0
    /// The run, from its first valid sample to the last; on when stuck.
    private var run = HealthHold()
    private var window: EvidenceWindow

    public init(rule: RuleIdentity, parameters: Parameters, windowBefore: Int = 3, windowAfter: Int = 3) {
        self.rule = rule
        self.parameters = parameters
        window = EvidenceWindow(before: windowBefore, after: windowAfter)
    }

    public var score: Double { run.score(needing: parameters.durationMs) }

    public var stateBytes: Int { healthStateBytes(window: window) }

    public mutating func feed(_ sample: DetectorSample, _ context: SiteContext) -> Finding? {
        // Observed after this sample's own work: a window begun at it keeps the samples before it.
        defer { window.observe(sample) }
        guard let value = sample.value else { return nil }
        run.lastMs = sample.monoMs
        if run.isHolding, HealthMath.distance(value, runValue) <= UInt64(parameters.epsilon) {
            guard !run.on, run.held(at: sample.monoMs) >= parameters.durationMs else { return nil }
            run.on = true
            let held = HealthText.duration(run.held(at: sample.monoMs))
            return finding(.start, at: sample, end: nil, explanation: "value stuck at \(rule.format(runValue)) for \(held): sensor stuck or disconnected")
        }
        var ended: Finding?
        if run.on {
            let held = HealthText.duration(run.held(at: sample.monoMs))
            ended = finding(.end, at: sample, end: sample, explanation: "value moving again: \(rule.format(value)) after \(held) at \(rule.format(runValue))")
        }
        run.clear()
        run.sinceMs = sample.monoMs
        runStart = sample
        runValue = value
        window.begin(at: sample)
        // durationMs 0: one sample is already a run long enough; handled at the next sample in the band.
        return ended
    }

    private func finding(_ phase: Finding.Phase, at: DetectorSample, end: DetectorSample?, explanation: String) -> Finding {
        Finding(
            phase: phase, rule: rule, severity: .warning, start: runStart, end: end, at: at,
            params: ["epsilon": .int(parameters.epsilon), "duration_ms": .int(parameters.durationMs)],
            baseline: ["stuck_value": runValue], window: window.samples, explanation: explanation)
    }
}
