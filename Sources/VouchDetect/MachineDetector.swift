/// The run state of one machine from several run-state sources — say its power meter, its stroke
/// counter and its run-signal line, each a `run_state` rule — and stoppage events on the combined
/// state, so a machine is judged by all its evidence instead of by whichever channel says it first.
///
/// Combined band, at every sample of any source, over the sources that are fresh (a band from a
/// valid sample no older than the source's `offline_after`):
/// - `.any` (default): the most running band among them. A machine whose counter still counts is
///   running, whatever a failing power meter says; it is stopped only when every fresh source says so.
/// - `.all`: the least running band. Any fresh source below running makes the machine idle or stopped.
/// - No fresh source: offline.
///
/// Stoppage events on the combined band, as ``RunStateDetector`` does on one channel ("down" means
/// stopped, or below running when `alarmOnIdle`):
/// - clear → candidate at the first down sample; back to clear at the first one not down.
/// - candidate → event after `minStopMs` down: `.start`, dated at the candidate's first sample.
///   Severity from the calendar at confirmation: in shift the rule's severity, outside the shift or
///   during a planned stop `.record`.
/// - event → clear, `.end`: running held `minRunMs` (dated at the first running sample); every source
///   offline; or a recorded stop still down once the shift is on with no planned stop (it ends there and
///   a new candidate starts, as in `run_state`).
///
/// The sources' own rules still raise their own events: give them `severity = "record"` when the
/// machine rule is the one that should alarm. The machine's samples carry no value (they come from
/// channels of different units); the evidence window stays empty and the explanation names each
/// source's band and last level.
///
/// State: fixed at construction, ``stateBytes``: 216 bytes plus 64 a source on a 64-bit target (a source
/// rule id longer than 15 bytes adds its length): 344 bytes with two sources.
public struct MachineDetector: Sendable {
    public static let kind = "machine"
    public static let version: Int64 = 1

    public enum Combine: String, Sendable, Equatable { case any, all }

    public struct Parameters: Sendable, Equatable {
        public var combine: Combine
        public var minStopMs: Int64
        public var minRunMs: Int64
        public var alarmOnIdle: Bool
        public var severity: Severity

        public init(combine: Combine = .any, minStopMs: Int64, minRunMs: Int64, alarmOnIdle: Bool = false, severity: Severity = .alarm) {
            self.combine = combine
            self.minStopMs = max(0, minStopMs)
            self.minRunMs = max(0, minRunMs)
            self.alarmOnIdle = alarmOnIdle
            self.severity = severity
        }
    }

    private enum Phase: UInt8 { case clear, candidate, event }

    public let rule: RuleIdentity
    public let parameters: Parameters
    /// The source rules' ids, in the order of ``note(_:_:)``'s slots.
    public let sourceIDs: [String]
    private var sources: [RunSource]
    /// The combined run state now (running, idle, stopped from the band; offline with no fresh source).
    public private(set) var state: RunStateDetector.RunState = .offline
    private var phase: Phase = .clear
    private var eventSeverity: Severity = .record
    private var eventInShift = false
    private var start = DetectorSample(monoMs: 0, wallMs: 0, value: nil)
    private var runningSince: DetectorSample?
    private var lastMs = HealthMath.never

    /// Words each source's level as its own rule does ("reading 12 W", "rate 3/min"); set by the engine.
    private var levelTexts: [@Sendable (Int64) -> String] = []

    public init(rule: RuleIdentity, parameters: Parameters, sourceIDs: [String]) {
        self.rule = rule
        self.parameters = parameters
        self.sourceIDs = sourceIDs
        sources = Array(repeating: RunSource(band: nil, lastValidMs: HealthMath.never, offlineAfterMs: 0, level: 0), count: sourceIDs.count)
    }

    /// How to word each source's level in an explanation (one per slot).
    public mutating func wordLevels(_ texts: [@Sendable (Int64) -> String]) { levelTexts = texts }

    private func levelText(_ slot: Int) -> String {
        levelTexts.indices.contains(slot) ? levelTexts[slot](sources[slot].level) : "\(sources[slot].level)"
    }

    public var stateBytes: Int {
        MemoryLayout<Self>.size + sources.count * MemoryLayout<RunSource>.stride + levelTexts.count * MemoryLayout<@Sendable (Int64) -> String>.stride
            + sourceIDs.reduce(0) { $0 + MemoryLayout<String>.stride + max(0, $1.utf8.count - 15) }
    }

    public var score: Double {
        switch phase {
        case .clear: 0
        case .candidate: HealthMath.progress(lastMs &- start.monoMs, of: parameters.minStopMs)
        case .event: 1
        }
    }

    /// Takes in what source `slot` says after its own sample.
    public mutating func note(_ slot: Int, _ source: RunSource) {
        guard sources.indices.contains(slot) else { return }
        sources[slot] = source
    }

    /// The combined band at `monoMs`; nil when no source is fresh.
    public func band(at monoMs: Int64) -> RunSource.Band? {
        var combined: RunSource.Band?
        for s in sources where s.isFresh(at: monoMs) {
            guard let b = s.band else { continue }
            combined = combined.map { parameters.combine == .any ? max($0, b) : min($0, b) } ?? b
        }
        return combined
    }

    /// Judges the machine at a sample of one of its sources.
    public mutating func evaluate(at sample: DetectorSample, _ context: SiteContext) -> Finding? {
        let at = DetectorSample(monoMs: sample.monoMs, wallMs: sample.wallMs, value: nil)
        lastMs = at.monoMs
        guard let band = band(at: at.monoMs) else {
            state = .offline
            runningSince = nil
            switch phase {
            case .clear: return nil
            case .candidate:
                phase = .clear
                return nil
            case .event:
                return endEvent(at: at, confirmedAt: at, text: "no source has a valid reading: run state unknown (offline), the stop is on the record for \(HealthText.duration(at.monoMs &- start.monoMs))")
            }
        }
        state = band == .running ? .running : band == .idle ? .idle : .stopped
        if band == .running {
            if runningSince == nil { runningSince = at }
        } else {
            runningSince = nil
        }
        let down = band == .stopped || (parameters.alarmOnIdle && band == .idle)
        switch phase {
        case .clear:
            guard down else { return nil }
            phase = .candidate
            start = at
            return confirmIfHeld(at, band, context)
        case .candidate:
            guard down else {
                phase = .clear
                return nil
            }
            return confirmIfHeld(at, band, context)
        case .event:
            if let since = runningSince, at.monoMs &- since.monoMs >= parameters.minRunMs {
                return endEvent(
                    at: since, confirmedAt: at,
                    text: "running again (\(combineText)) for \(HealthText.duration(at.monoMs &- since.monoMs)); stopped \(HealthText.duration(since.monoMs &- start.monoMs))")
            }
            if down, !eventInShift, context.inShift, !context.plannedStop {
                let ended = endEvent(
                    at: at, confirmedAt: at,
                    text: "still stopped with the shift on and no planned stop: the recorded stop closes after \(HealthText.duration(at.monoMs &- start.monoMs)) and an in-shift stop is followed from here")
                phase = .candidate
                start = at
                return ended
            }
            return nil
        }
    }

    private var combineText: String { parameters.combine == .any ? "any source running counts" : "every source must run" }

    private mutating func confirmIfHeld(_ at: DetectorSample, _ band: RunSource.Band, _ context: SiteContext) -> Finding? {
        let held = at.monoMs &- start.monoMs
        guard held >= parameters.minStopMs else { return nil }
        phase = .event
        eventInShift = context.inShift && !context.plannedStop
        eventSeverity = eventInShift ? parameters.severity : .record
        var parts: [String] = []
        for (slot, id) in sourceIDs.enumerated() {
            let s = sources[slot]
            let what = s.isFresh(at: at.monoMs) ? "\(s.band.map { "\($0)" } ?? "offline") (\(levelText(slot)))" : "offline"
            parts.append("\(id) \(what)")
        }
        let idle = band == .idle
        let verdict = HealthText.stopVerdict(context, idle: idle)
        let text = "\(rule.id) \(idle ? "idle" : "stopped") for \(HealthText.duration(held)) (\(combineText): \(parts.joined(separator: ", "))) \(verdict)"
        return finding(.start, at: at, end: nil, explanation: text)
    }

    private mutating func endEvent(at end: DetectorSample, confirmedAt: DetectorSample, text: String) -> Finding {
        phase = .clear
        return finding(.end, at: confirmedAt, end: end, explanation: text)
    }

    private func finding(_ phase: Finding.Phase, at: DetectorSample, end: DetectorSample?, explanation: String) -> Finding {
        let p = parameters
        return Finding(
            phase: phase, rule: rule, severity: eventSeverity, start: start, end: end, at: at,
            params: [
                "sources": .text(sourceIDs.joined(separator: ",")), "combine": .text(p.combine.rawValue), "min_stop_ms": .int(p.minStopMs),
                "min_run_ms": .int(p.minRunMs), "alarm_on_idle": HealthText.flag(p.alarmOnIdle),
            ],
            window: [], explanation: explanation)
    }
}
