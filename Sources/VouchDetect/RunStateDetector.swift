/// Production run state of one machine — running, idle, stopped or offline — from a power or current
/// channel (`input = .level`), a run-signal line's duty (also `.level`), or a pulse counter
/// (`input = .counter`, a running total from which a rate per minute is derived); and stoppage events
/// judged against the site calendar.
///
/// Bands (on the level, or on the counter's rate per minute): `>= runningAtOrAbove` running,
/// `< stoppedBelow` stopped, in between idle (powered but not producing).
///
/// State machine of ``state`` (each valid sample; a band must hold without a break):
/// - any → `running`: at or above `runningAtOrAbove` for `minRunMs`.
/// - any → `stopped`: below `stoppedBelow` for `minStopMs`.
/// - `running`/`offline` → `idle`: below `runningAtOrAbove` for `minStopMs` (and not stopped).
/// - `stopped` → `idle`: at or above `stoppedBelow` for `minStopMs` while not running.
/// - any → `offline`: no valid sample for `offlineAfterMs`; also the state before the first samples
///   confirm one. Every band timer restarts after it, so a state is re-confirmed from fresh samples.
/// Noise around a threshold does not make the state flap: a band must hold unbroken for its minimum
/// duration, and the gap between the two thresholds keeps jitter at one from reaching the other.
///
/// Stoppage events (one at a time; "down" means below `stoppedBelow`, or below `runningAtOrAbove`
/// when `alarmOnIdle`):
/// - clear → candidate at the first down sample; back to clear at the first sample that is not down.
/// - candidate → event after `minStopMs` down: `.start`, dated at the candidate's first sample (late
///   by at most one poll interval), confirmed at most one poll interval after `minStopMs`. Severity
///   from the calendar at confirmation: in shift `.alarm`; outside the shift, or during a planned stop
///   (holiday, maintenance) `.record`.
/// - event → clear, `.end`, when running holds `minRunMs` (the end is dated at the first running
///   sample, so the duration is the real stop); or when the channel goes offline (the stop is on the
///   record up to there; the state is unknown afterwards, and a stop seen again after the channel comes
///   back is a new event: offline itself is not an event here, `comm_loss` is the rule for that); or
///   when a recorded (`.record`) stop is still down once the shift is on and no stop is planned: the
///   recorded event ends there and a new candidate starts at that sample, so a machine that does not
///   restart in the morning is alarmed `minStopMs` after the first in-shift sample.
/// - With `alarmOnIdle == false` idle is a normal state, not an event (unusual idleness is the
///   `baseline` detector's question); a confirmed stop runs on through idle until the machine runs.
///
/// Counter input: the rate at a sample is the counts since the counter last moved, per minute of the
/// time since then; while it does not move, the rate shown is the most it could be (one count right
/// now), so it falls below a threshold once no count has come for as long as that rate allows. For a
/// counter that moves every poll this is the rate between consecutive samples; for a slow counter
/// polled fast (a press doing 10 strokes a minute polled every second) it does not read every count-less
/// poll as a stop. A decrease is a counter restart (the agent's counters start at 0 when it restarts):
/// the sample becomes the new reference and gives no rate, so it neither starts nor ends anything.
///
/// Rules of evidence: a failed poll (`value == nil`) neither confirms nor ends anything; it only counts
/// towards offline. A start's `baseline` holds the two thresholds.
///
/// State: 441 bytes on a 64-bit target with the default 2/2 window (``stateBytes``; 24 bytes a window sample).
public struct RunStateDetector: Detector {
    public static let kind = "run_state"
    public static let version: Int64 = 1

    public enum Input: String, Sendable, Equatable { case level, counter }

    public enum RunState: String, Sendable, Equatable { case running, idle, stopped, offline }

    public struct Parameters: Sendable, Equatable {
        /// `.level`: the value is the level (power, current, a run signal's duty). `.counter`: the value is
        /// a running count and the bands apply to its rate per minute (channel units per minute).
        public var input: Input
        /// At or above this (channel units, or per minute for a counter) the machine is running.
        public var runningAtOrAbove: Int64
        /// Below this it is stopped; between the two it is idle. Must not exceed `runningAtOrAbove`.
        public var stoppedBelow: Int64
        /// Milliseconds stopped (or idle, see `alarmOnIdle`) before it is an event; also the hold for a
        /// state to become idle or stopped.
        public var minStopMs: Int64
        /// Milliseconds running before a stop ends (and before the state becomes running).
        public var minRunMs: Int64
        /// Milliseconds without a valid sample after which the channel is offline; 0 or less: never.
        public var offlineAfterMs: Int64
        /// Idle in the shift is a stoppage like stopped (alarmed); otherwise idle is a normal state.
        public var alarmOnIdle: Bool
        /// The severity of a stop during the shift (the rule's `severity`); outside it, always `.record`.
        public var severity: Severity

        public init(
            input: Input = .level, runningAtOrAbove: Int64, stoppedBelow: Int64, minStopMs: Int64, minRunMs: Int64,
            offlineAfterMs: Int64, alarmOnIdle: Bool = false, severity: Severity = .alarm
        ) {
            self.severity = severity
            self.input = input
            self.runningAtOrAbove = runningAtOrAbove
            self.stoppedBelow = min(stoppedBelow, runningAtOrAbove)
            self.minStopMs = max(0, minStopMs)
            self.minRunMs = max(0, minRunMs)
            self.offlineAfterMs = offlineAfterMs
            self.alarmOnIdle = alarmOnIdle
        }
    }

    private enum Phase: UInt8 { case clear, candidate, event }

    public let rule: RuleIdentity
    public let parameters: Parameters
    /// The confirmed run state, for the agent's status.
    public private(set) var state: RunState = .offline
    private var phase: Phase = .clear
    private var eventSeverity: Severity = .record
    /// The open event began during the shift (a recorded one is followed again when the shift starts).
    private var eventInShift = false
    /// Where the candidate or event began.
    private var start = DetectorSample(monoMs: 0, wallMs: 0, value: nil)
    /// The first sample of the current unbroken run at or above `runningAtOrAbove` (valid when
    /// `aboveRunMs != never`): where a stop ends.
    private var aboveRun = DetectorSample(monoMs: 0, wallMs: 0, value: nil)
    private var aboveRunMs = HealthMath.never
    private var belowRunMs = HealthMath.never
    private var belowStopMs = HealthMath.never
    private var aboveStopMs = HealthMath.never
    private var lastValidMs = HealthMath.never
    /// The band and level of the last valid sample (for a `machine` rule); nil band after offline.
    private var band: RunSource.Band?
    private var level: Int64 = 0
    /// Counter input: the count and time when the counter last moved (or restarted); `never` before.
    private var counterMovedCount: Int64 = 0
    private var counterMovedMs = HealthMath.never
    private var window: EvidenceWindow

    public init(rule: RuleIdentity, parameters: Parameters, windowBefore: Int = 2, windowAfter: Int = 2) {
        self.rule = rule
        self.parameters = parameters
        window = EvidenceWindow(before: windowBefore, after: windowAfter)
    }

    public var score: Double {
        switch phase {
        case .clear: 0
        case .candidate: HealthMath.progress(lastValidMs &- start.monoMs, of: parameters.minStopMs)
        case .event: 1
        }
    }

    public var stateBytes: Int { healthStateBytes(window: window) }

    public mutating func feed(_ sample: DetectorSample, _ context: SiteContext) -> Finding? {
        // Observed after this sample's own work: a window begun at it keeps the samples before it.
        defer { window.observe(sample) }
        let p = parameters
        let gapIsOffline = p.offlineAfterMs > 0 && lastValidMs != HealthMath.never && sample.monoMs &- lastValidMs >= p.offlineAfterMs
        guard let value = sample.value else {
            return gapIsOffline && (state != .offline || phase != .clear) ? goOffline(at: sample) : nil
        }
        // A valid sample after a silent gap (the agent was down): the state before it is unknown.
        let offlineEnd = gapIsOffline ? goOffline(at: sample) : nil
        lastValidMs = sample.monoMs
        guard let level = p.input == .level ? value : counterRate(value, sample.monoMs) else { return offlineEnd }
        band = level >= p.runningAtOrAbove ? .running : level < p.stoppedBelow ? .stopped : .idle
        self.level = level
        let runConfirmed = track(level, sample)
        let down = level < (p.alarmOnIdle ? p.runningAtOrAbove : p.stoppedBelow)
        switch phase {
        case .clear:
            guard down else { return offlineEnd }
            phase = .candidate
            start = sample
            window.begin(at: sample)
            // At most one finding per sample: an offline end here is followed by a start at the next one.
            return offlineEnd ?? confirmIfHeld(sample, level, context)
        case .candidate:
            guard down else {
                phase = .clear
                window.finish()
                return offlineEnd
            }
            return offlineEnd ?? confirmIfHeld(sample, level, context)
        case .event:
            if runConfirmed { return endEvent(at: aboveRun, confirmedAt: sample, level: level, reason: .running) }
            if down, !eventInShift, context.inShift, !context.plannedStop {
                let ended = endEvent(at: sample, confirmedAt: sample, level: level, reason: .shiftOn)
                phase = .candidate
                start = sample
                window.begin(at: sample)
                return ended
            }
            return nil
        }
    }

    /// Updates the band runs and the confirmed state; true when running was confirmed at this sample.
    private mutating func track(_ level: Int64, _ sample: DetectorSample) -> Bool {
        let p = parameters, t = sample.monoMs
        if level >= p.runningAtOrAbove {
            if aboveRunMs == HealthMath.never {
                aboveRunMs = t
                aboveRun = sample
            }
            belowRunMs = HealthMath.never
        } else {
            aboveRunMs = HealthMath.never
            if belowRunMs == HealthMath.never { belowRunMs = t }
        }
        if level < p.stoppedBelow {
            if belowStopMs == HealthMath.never { belowStopMs = t }
            aboveStopMs = HealthMath.never
        } else {
            belowStopMs = HealthMath.never
            if aboveStopMs == HealthMath.never { aboveStopMs = t }
        }
        if state != .running, aboveRunMs != HealthMath.never, t &- aboveRunMs >= p.minRunMs {
            state = .running
            return true
        }
        if state != .stopped, belowStopMs != HealthMath.never, t &- belowStopMs >= p.minStopMs {
            state = .stopped
        } else if state == .running || state == .offline, belowRunMs != HealthMath.never, t &- belowRunMs >= p.minStopMs {
            state = belowStopMs == HealthMath.never ? .idle : state
        } else if state == .stopped, aboveStopMs != HealthMath.never, belowRunMs != HealthMath.never, t &- aboveStopMs >= p.minStopMs {
            state = .idle
        }
        return false
    }

    /// The counter's rate per minute at this sample, nil when there is none (first sample, restart).
    private mutating func counterRate(_ count: Int64, _ t: Int64) -> Int64? {
        guard counterMovedMs != HealthMath.never, count >= counterMovedCount else {
            // First sample, or the counter went down: it restarted, and this is the new reference.
            counterMovedCount = count
            counterMovedMs = t
            return nil
        }
        let elapsed = t &- counterMovedMs
        guard elapsed > 0 else { return nil }
        // No movement yet: at most one count could have come by now.
        let counts = count == counterMovedCount ? 1 : count &- counterMovedCount
        if count != counterMovedCount {
            counterMovedCount = count
            counterMovedMs = t
        }
        let (perMinute, overflow) = counts.multipliedReportingOverflow(by: 60_000)
        return overflow ? Int64.max / elapsed : perMinute / elapsed
    }

    public var runSource: RunSource? { RunSource(band: band, lastValidMs: lastValidMs, offlineAfterMs: parameters.offlineAfterMs, level: level) }

    /// "reading 12 W" or "rate 3 parts/min" for a level of this rule's channel.
    public func levelText(_ level: Int64) -> String { describe(level) }

    private mutating func goOffline(at sample: DetectorSample) -> Finding? {
        state = .offline
        band = nil
        aboveRunMs = HealthMath.never
        belowRunMs = HealthMath.never
        belowStopMs = HealthMath.never
        aboveStopMs = HealthMath.never
        counterMovedMs = HealthMath.never
        switch phase {
        case .clear: return nil
        case .candidate:
            phase = .clear
            window.finish()
            return nil
        case .event:
            return endEvent(at: sample, confirmedAt: sample, level: nil, reason: .offline)
        }
    }

    private mutating func confirmIfHeld(_ sample: DetectorSample, _ level: Int64, _ context: SiteContext) -> Finding? {
        let held = sample.monoMs &- start.monoMs
        guard held >= parameters.minStopMs else { return nil }
        phase = .event
        eventInShift = context.inShift && !context.plannedStop
        eventSeverity = eventInShift ? parameters.severity : .record
        let p = parameters
        let idle = level >= p.stoppedBelow
        let what = idle
            ? "\(describe(level)), below the running threshold \(amount(p.runningAtOrAbove)) but powered for \(HealthText.duration(held))"
            : "\(describe(level)), below the stop threshold \(amount(p.stoppedBelow)) for \(HealthText.duration(held))"
        let verdict = HealthText.stopVerdict(context, idle: idle)
        return finding(.start, at: sample, end: nil, explanation: "\(what) \(verdict)")
    }

    private enum EndReason { case running, offline, shiftOn }

    private mutating func endEvent(at end: DetectorSample, confirmedAt: DetectorSample, level: Int64?, reason: EndReason) -> Finding {
        phase = .clear
        let lasted = HealthText.duration(end.monoMs &- start.monoMs)
        let text: String
        switch reason {
        case .running:
            let held = HealthText.duration(confirmedAt.monoMs &- end.monoMs)
            text = "running again: \(describe(level ?? 0)) at or above \(amount(parameters.runningAtOrAbove)) for \(held); stopped \(lasted)"
        case .offline:
            let silent = HealthText.duration(parameters.offlineAfterMs)
            text = "no valid reading for \(silent) or more: run state unknown (offline), the stop is on the record for \(lasted)"
        case .shiftOn:
            text = "still stopped with the shift on and no planned stop: the recorded stop closes after \(lasted) and an in-shift stop is followed from here"
        }
        let f = finding(.end, at: confirmedAt, end: end, explanation: text)
        window.finish()
        return f
    }

    /// "reading 12 W" or "rate 3 parts/min".
    private func describe(_ level: Int64) -> String {
        (parameters.input == .level ? "reading " : "rate ") + amount(level)
    }

    private func amount(_ level: Int64) -> String {
        parameters.input == .level ? rule.format(level) : rule.format(level) + "/min"
    }

    private func finding(_ phase: Finding.Phase, at: DetectorSample, end: DetectorSample?, explanation: String) -> Finding {
        let p = parameters
        return Finding(
            phase: phase, rule: rule, severity: eventSeverity, start: start, end: end, at: at,
            params: [
                "input": .text(p.input.rawValue), "running_at_or_above": .int(p.runningAtOrAbove), "stopped_below": .int(p.stoppedBelow),
                "min_stop_ms": .int(p.minStopMs), "min_run_ms": .int(p.minRunMs), "offline_after_ms": .int(p.offlineAfterMs),
                "alarm_on_idle": HealthText.flag(p.alarmOnIdle),
            ],
            baseline: ["running_at_or_above": p.runningAtOrAbove, "stopped_below": p.stoppedBelow],
            window: window.samples, explanation: explanation)
    }
}
