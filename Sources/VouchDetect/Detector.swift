import VouchCore

/// One reading as a detector sees it: the channel's integer-scaled value (nil when the poll failed),
/// dated by the agent's monotonic clock (durations) and its wall clock (calendars, reports).
public struct DetectorSample: Sendable, Equatable {
    public var monoMs: Int64
    public var wallMs: Int64
    public var value: Int64?

    public init(monoMs: Int64, wallMs: Int64, value: Int64?) {
        self.monoMs = monoMs
        self.wallMs = wallMs
        self.value = value
    }
}

/// What the site's calendar says at one moment, computed once per moment by ``SiteCalendar`` and
/// shared by every detector: detectors never read a clock or a calendar themselves, so a replay of the
/// same samples with the same calendar gives the same findings.
public struct SiteContext: Sendable, Equatable {
    /// A production shift is on (and it is not a holiday or a planned maintenance window).
    public var inShift: Bool
    /// A holiday or a planned maintenance window: a stop is recorded, not alarmed.
    public var plannedStop: Bool
    /// The site is staffed: a door or motion is expected.
    public var businessHours: Bool
    /// A release window is open: pledged stock may leave (a drop is recorded as a release).
    public var releaseOpen: Bool
    /// Local hour of the week, 0 = Monday 00:00–00:59 … 167 = Sunday 23:00–23:59 (for baselines).
    public var hourOfWeek: Int

    public init(inShift: Bool = true, plannedStop: Bool = false, businessHours: Bool = true, releaseOpen: Bool = false, hourOfWeek: Int = 0) {
        self.inShift = inShift
        self.plannedStop = plannedStop
        self.businessHours = businessHours
        self.releaseOpen = releaseOpen
        self.hourOfWeek = hourOfWeek
    }
}

/// How urgent a finding is. `record`: on the record for the bank, nobody is called (a stop outside
/// the shift, a drop inside a release window).
public enum Severity: String, Sendable, Equatable, CaseIterable, Comparable {
    case record
    case warning
    case alarm

    public static func < (a: Severity, b: Severity) -> Bool {
        allCases.firstIndex(of: a).map { i in allCases.firstIndex(of: b).map { i < $0 } ?? false } ?? false
    }
}

/// A rule's parameter as the event reports it: integers are scaled like the channel (or milliseconds).
public enum ParameterValue: Sendable, Equatable {
    case int(Int64)
    case text(String)
}

/// Who a finding comes from: the configured rule, its version (bumped when its logic changes, so a
/// bank can tell findings of different logic apart), its kind and channel.
public struct RuleIdentity: Sendable, Equatable {
    public var id: String
    public var version: Int64
    /// The detector kind, e.g. `run_state`, `weight_drop`.
    public var kind: String
    public var channel: String
    /// The channel's unit and decimal exponent, for explanations.
    public var unit: String
    public var scaleExponent: Int64

    public init(id: String, version: Int64, kind: String, channel: String, unit: String, scaleExponent: Int64) {
        self.id = id
        self.version = version
        self.kind = kind
        self.channel = channel
        self.unit = unit
        self.scaleExponent = scaleExponent
    }

    /// `value` in the channel's units, e.g. 1234 at exponent -1 → "123.4 kg".
    public func format(_ value: Int64) -> String {
        IntegerScaling.text(value, exponent: scaleExponent, unit: unit)
    }
}

/// A detector's finding: an event starting (`start`) or ending (`end`, same start). Explains itself:
/// the rule and its parameters, what it compared against, the samples around the start, one line of text.
public struct Finding: Sendable, Equatable {
    public enum Phase: String, Sendable, Equatable { case start, end }

    public var phase: Phase
    public var rule: RuleIdentity
    public var severity: Severity
    /// The first sample of the condition (for a confirmed event, the one its minimum duration counts from).
    public var start: DetectorSample
    /// The sample that ended it (`end` only).
    public var end: DetectorSample?
    /// The sample at which the finding was made (for `start`: when the condition was confirmed).
    public var at: DetectorSample
    public var params: [String: ParameterValue]
    /// What the rule compared against (a settled weight, a learned level…), integer-scaled like the channel.
    public var baseline: [String: Int64]
    /// Samples before and after the start, oldest first.
    public var window: [DetectorSample]
    /// One line a credit officer can read.
    public var explanation: String

    public init(
        phase: Phase, rule: RuleIdentity, severity: Severity, start: DetectorSample, end: DetectorSample? = nil, at: DetectorSample,
        params: [String: ParameterValue], baseline: [String: Int64] = [:], window: [DetectorSample], explanation: String
    ) {
        self.phase = phase
        self.rule = rule
        self.severity = severity
        self.start = start
        self.end = end
        self.at = at
        self.params = params
        self.baseline = baseline
        self.window = window
        self.explanation = explanation
    }

    /// Milliseconds from the start to the end, or to the finding.
    public var durationMs: Int64 { (end ?? at).monoMs - start.monoMs }
}

/// A pure state machine over one channel's samples: fed each sample with the site's context at its
/// time; no I/O, no clock, no randomness, so the same samples give the same findings live and in
/// `vouch detect replay`. Memory is fixed when the detector is made (``stateBytes``).
public protocol Detector: Sendable {
    var rule: RuleIdentity { get }
    /// Feeds the next sample (in time order). A finding when an event starts or ends at it.
    mutating func feed(_ sample: DetectorSample, _ context: SiteContext) -> Finding?
    /// How anomalous the last sample was, in [0, 1]: 0 normal, 1 certainly an event.
    var score: Double { get }
    /// Bytes of state kept per channel (the struct and any buffers), as the benchmark reports it.
    var stateBytes: Int { get }
    /// What a `machine` rule combining several run-state sources needs of this one; nil for other kinds.
    var runSource: RunSource? { get }
    /// What this rule must not forget when the agent restarts, or nil: the settled weight or count a
    /// collateral rule measures drops from. Without it, stock taken while the gateway was off would
    /// become the new normal at the restart.
    var carryOver: [String: Int64]? { get }
    /// Takes back what ``carryOver`` gave before the restart; called once, before the first sample.
    mutating func resume(_ carried: [String: Int64])
}

extension Detector {
    public var runSource: RunSource? { nil }
    public var carryOver: [String: Int64]? { nil }
    public mutating func resume(_ carried: [String: Int64]) {}
}

/// A run-state source as a ``MachineDetector`` sees it: the band of its last valid sample and how fresh that is.
public struct RunSource: Sendable, Equatable {
    /// Bands of a level (or a counter's rate), ordered from least to most running.
    public enum Band: UInt8, Sendable, Equatable, Comparable {
        case stopped, idle, running
        public static func < (a: Band, b: Band) -> Bool { a.rawValue < b.rawValue }
    }
    /// The band of the last valid sample; nil before one, and after the source went offline.
    public var band: Band?
    public var lastValidMs: Int64
    /// The source is offline once no valid sample came for this long (0 or less: never).
    public var offlineAfterMs: Int64
    /// The last level (the value, or a counter's rate per minute), for explanations.
    public var level: Int64

    public init(band: Band?, lastValidMs: Int64, offlineAfterMs: Int64, level: Int64) {
        self.band = band
        self.lastValidMs = lastValidMs
        self.offlineAfterMs = offlineAfterMs
        self.level = level
    }

    /// Has a band that is not older than `offlineAfterMs` at `monoMs`.
    public func isFresh(at monoMs: Int64) -> Bool {
        band != nil && (offlineAfterMs <= 0 || monoMs &- lastValidMs < offlineAfterMs)
    }
}
