/// Communication loss: the channel's polls fail (`value == nil`) without a break for at least
/// `durationMs` — a sensor unplugged, a cut cable, a bus fault, a meter powered off.
///
/// State machine:
/// - reading: the last poll gave a value.
/// - failing (candidate): polls have failed since the first failed one, not yet `durationMs`.
/// - lost (event): `durationMs` of failed polls: `.start` with the configured severity, dated at the
///   first failed poll and confirmed at most one poll interval after `durationMs`.
/// - failing or lost → reading at the first valid sample (`.end` if lost).
///
/// Rules of evidence: this is the one detector about communication, so a failed poll is what it
/// counts. It sees only the polls it is fed: a gateway that was itself down makes no polls at all, and
/// that gap is the gateway-power rule's question, not this one's. A valid sample after a silent gap
/// ends a loss as any valid sample does. The calendar changes nothing: an unplugged sensor is
/// unplugged in and out of the shift. There is no baseline to compare with.
///
/// State: 369 bytes on a 64-bit target with the default 3/3 window (``stateBytes``; 24 bytes a window sample).
public struct CommLossDetector: Detector {
    public static let kind = "comm_loss"
    public static let version: Int64 = 1

    public struct Parameters: Sendable, Equatable {
        /// Milliseconds of failed polls, without a valid one between, before it is an event.
        public var durationMs: Int64
        /// How urgent a loss is on this channel (a pledged load cell: `.alarm`; a temperature: `.warning`).
        public var severity: Severity

        public init(durationMs: Int64, severity: Severity = .warning) {
            self.durationMs = max(0, durationMs)
            self.severity = severity
        }
    }

    public let rule: RuleIdentity
    public let parameters: Parameters
    /// The first failed poll of the current run (valid while `failing.isHolding`).
    private var firstFailed = DetectorSample(monoMs: 0, wallMs: 0, value: nil)
    /// Failed polls since the first; on when lost.
    private var failing = HealthHold()
    private var window: EvidenceWindow

    public init(rule: RuleIdentity, parameters: Parameters, windowBefore: Int = 3, windowAfter: Int = 3) {
        self.rule = rule
        self.parameters = parameters
        window = EvidenceWindow(before: windowBefore, after: windowAfter)
    }

    public var score: Double { failing.score(needing: parameters.durationMs) }

    public var stateBytes: Int { healthStateBytes(window: window) }

    public mutating func feed(_ sample: DetectorSample, _ context: SiteContext) -> Finding? {
        // Observed after this sample's own work: a window begun at it keeps the samples before it.
        defer { window.observe(sample) }
        failing.lastMs = sample.monoMs
        guard sample.value == nil else {
            guard failing.isHolding else { return nil }
            let wasLost = failing.on
            failing.clear()
            window.finish()
            guard wasLost else { return nil }
            let silent = HealthText.duration(sample.monoMs &- firstFailed.monoMs)
            return finding(.end, at: sample, end: sample, explanation: "readings back after \(silent) without one")
        }
        if !failing.isHolding {
            failing.sinceMs = sample.monoMs
            firstFailed = sample
            window.begin(at: sample)
        }
        let held = failing.held(at: sample.monoMs)
        guard !failing.on, held >= parameters.durationMs else { return nil }
        failing.on = true
        return finding(.start, at: sample, end: nil, explanation: "no valid reading for \(HealthText.duration(held)): sensor unplugged or bus fault")
    }

    private func finding(_ phase: Finding.Phase, at: DetectorSample, end: DetectorSample?, explanation: String) -> Finding {
        Finding(
            phase: phase, rule: rule, severity: parameters.severity, start: firstFailed, end: end, at: at,
            params: ["duration_ms": .int(parameters.durationMs), "severity": .text(parameters.severity.rawValue)],
            window: window.samples, explanation: explanation)
    }
}
