/// Detection configuration, validated by ``ConfigLoader``: the site's calendar beyond its shift
/// (`[calendar]`) and the detector rules (`[[detect]]`). Values are in the channel's engineering units
/// here; VouchDetect scales them like the channel when it builds the detectors.

/// The kinds of detector a `[[detect]]` rule may name.
public enum DetectKind: String, Sendable, Equatable, CaseIterable {
    /// Production run state (running / idle / stopped / offline) from power, current, a pulse counter or a run signal.
    case runState = "run_state"
    /// A load cell's weight dropping outside a release window; slow pilferage over days.
    case weightDrop = "weight_drop"
    /// A door contact, motion sensor or enclosure switch active when it should not be.
    case contact
    /// A value outside limits for a while (tilt, vibration on parked equipment; out of range).
    case threshold
    /// A tag / item count dropping, or a counter going backwards.
    case countDrop = "count_drop"
    /// A stuck sensor: no change for too long.
    case flatline
    /// No valid reading for too long.
    case commLoss = "comm_loss"
    /// Any numeric channel against its own learned week: an anomaly score per reading.
    case baseline
    /// One machine's run state combined from several `run_state` rules (its power, counter, run signal).
    case machine

    /// The severity of a rule of this kind unless the rule says otherwise.
    public var defaultSeverity: DetectSeverity {
        switch self {
        case .runState, .weightDrop, .contact, .countDrop, .machine: .alarm
        case .threshold, .flatline, .commLoss, .baseline: .warning
        }
    }
}

public enum DetectSeverity: String, Sendable, Equatable, CaseIterable {
    case record, warning, alarm
}

/// When a contact or threshold rule applies.
public enum DetectWhen: String, Sendable, Equatable, CaseIterable {
    case always
    case outsideBusinessHours = "outside_business_hours"
    case outsideShift = "outside_shift"
}

/// One `[[detect]]` rule. Kind-specific parameters are kept by key, each already checked against the
/// kind's schema (``DetectSchema``) and completed with its default.
public struct DetectRuleSettings: Sendable, Equatable {
    public var id: String
    public var kind: DetectKind
    public var channel: String
    public var severity: DetectSeverity
    /// Samples kept as evidence before and after an event's start; nil: the detector's own default,
    /// chosen so its whole state fits in 512 bytes (each sample costs 24).
    public var windowBefore: Int?
    public var windowAfter: Int?
    public var numbers: [String: Double]
    public var durations: [String: Duration]
    public var flags: [String: Bool]
    public var choices: [String: String]
    /// `machine`: the ids of the `run_state` rules it combines.
    public var sources: [String]

    public init(
        id: String, kind: DetectKind, channel: String, severity: DetectSeverity, windowBefore: Int? = nil, windowAfter: Int? = nil, numbers: [String: Double] = [:],
        durations: [String: Duration] = [:], flags: [String: Bool] = [:], choices: [String: String] = [:], sources: [String] = []
    ) {
        self.sources = sources
        self.id = id
        self.kind = kind
        self.channel = channel
        self.severity = severity
        self.windowBefore = windowBefore
        self.windowAfter = windowAfter
        self.numbers = numbers
        self.durations = durations
        self.flags = flags
        self.choices = choices
    }
}

/// What each kind of rule accepts: name, type, whether required, default, and what it means.
public enum DetectSchema {
    public enum ValueType: Sendable, Equatable {
        /// In the channel's units (scaled like the channel).
        case number
        /// A fraction given in percent, 0–100.
        case percent
        case duration(min: Duration)
        case flag
        case choice([String])
        /// A plain number with limits (a score, a count).
        case bounded(ClosedRange<Double>)
        /// Ids of other rules (of `run_state` kind), at least two.
        case ruleIDs
    }

    public struct Key: Sendable, Equatable {
        public var name: String
        public var type: ValueType
        public var required: Bool
        public var defaultNumber: Double?
        public var defaultDuration: Duration?
        public var defaultFlag: Bool?
        public var defaultChoice: String?
        public var meaning: String

        static func number(_ name: String, required: Bool = false, default value: Double? = nil, _ meaning: String) -> Key {
            Key(name: name, type: .number, required: required, defaultNumber: value, meaning: meaning)
        }
        static func percent(_ name: String, _ meaning: String) -> Key {
            Key(name: name, type: .percent, required: false, meaning: meaning)
        }
        static func duration(_ name: String, min: Duration = .zero, default value: Duration?, _ meaning: String) -> Key {
            Key(name: name, type: .duration(min: min), required: value == nil, defaultDuration: value, meaning: meaning)
        }
        static func flag(_ name: String, default value: Bool, _ meaning: String) -> Key {
            Key(name: name, type: .flag, required: false, defaultFlag: value, meaning: meaning)
        }
        static func choice(_ name: String, _ options: [String], default value: String, _ meaning: String) -> Key {
            Key(name: name, type: .choice(options), required: false, defaultChoice: value, meaning: meaning)
        }
        static func ruleIDs(_ name: String, _ meaning: String) -> Key {
            Key(name: name, type: .ruleIDs, required: true, meaning: meaning)
        }
        static func bounded(_ name: String, _ range: ClosedRange<Double>, default value: Double, _ meaning: String) -> Key {
            Key(name: name, type: .bounded(range), required: false, defaultNumber: value, meaning: meaning)
        }

        init(
            name: String, type: ValueType, required: Bool, defaultNumber: Double? = nil, defaultDuration: Duration? = nil, defaultFlag: Bool? = nil,
            defaultChoice: String? = nil, meaning: String
        ) {
            self.name = name
            self.type = type
            self.required = required
            self.defaultNumber = defaultNumber
            self.defaultDuration = defaultDuration
            self.defaultFlag = defaultFlag
            self.defaultChoice = defaultChoice
            self.meaning = meaning
        }
    }

    /// Keys every rule has.
    public static let commonKeys = ["id", "kind", "channel", "severity", "window_before", "window_after"]

    static let when = DetectWhen.allCases.map(\.rawValue)

    public static func keys(_ kind: DetectKind) -> [Key] {
        switch kind {
        case .runState:
            [
                .choice("input", ["level", "counter"], default: "level", "level: the value itself (power, current, duty); counter: a running total, turned into a rate per minute"),
                .number("running_at_or_above", required: true, "at or above: running (per minute for a counter)"),
                .number("stopped_below", required: true, "below: stopped; between the two: idle"),
                .duration("min_stop", default: .seconds(300), "a stop (or idle, with alarm_on_idle) must last this long"),
                .duration("min_run", default: .seconds(60), "running must last this long to end a stop"),
                .duration("offline_after", min: .seconds(1), default: .seconds(300), "no valid reading this long: offline"),
                .flag("alarm_on_idle", default: false, "idle (powered, not producing) counts as a stop"),
            ]
        case .weightDrop:
            [
                .number("tolerance", "a drop larger than this below the settled weight is an event"),
                .percent("tolerance_percent", "or larger than this share of the settled weight"),
                .number("noise", default: 0, "the load cell's jitter: readings within ± this of a weight are that weight (the noise, not forklift bumps)"),
                .duration("settle", default: .seconds(60), "stable this long to settle; a drop must hold this long"),
                .number("cumulative", "slow pilferage: the settled weight this far below the reference (set at the last release) is an event"),
                .percent("cumulative_percent", "or this share below the reference"),
            ]
        case .contact:
            [
                .duration("active_min", default: .zero, "active at least this long to count"),
                .choice("when", when, default: DetectWhen.outsideBusinessHours.rawValue, "when an active contact is an event"),
            ]
        case .threshold:
            [
                .number("above", "above this is outside"),
                .number("below", "below this is outside"),
                .duration("min_duration", default: .zero, "outside at least this long to count"),
                .choice("when", when, default: DetectWhen.always.rawValue, "when being outside is an event"),
                .number("hysteresis", default: 0, "back inside by this margin to end (no flapping at the limit)"),
            ]
        case .countDrop:
            [
                .number("drop", required: true, "a drop of at least this many below the settled count"),
                .duration("settle", default: .seconds(60), "stable this long to settle; a drop must hold this long"),
                .flag("backwards_is_tamper", default: false, "a counter that must never go down: any decrease is tampering"),
                .choice("when", when, default: DetectWhen.always.rawValue, "when a drop may start an event (a decrease of a tamper counter always does)"),
            ]
        case .flatline:
            [
                .number("epsilon", default: 0, "changes within ± this do not count as changes"),
                .duration("duration", min: .seconds(1), default: nil, "no change this long: stuck"),
            ]
        case .commLoss:
            [.duration("duration", min: .seconds(1), default: nil, "no valid reading this long")]
        case .baseline:
            [
                .choice("direction", ["both", "below", "above"], default: "both", "which deviations count: below (idleness, low output), above, or both"),
                .bounded("score_threshold", 0.0...1.0, default: 0.5, "an anomaly score at or above this, for min_duration, is an event"),
                .duration("min_duration", default: .seconds(900), "the score must stay high this long"),
                .duration("learn", min: .seconds(3_600), default: .seconds(7 * 86_400), "time spent learning before scoring"),
                .number("min_spread", default: 0, "the smallest spread deviations are counted in: the sensor's noise or resolution"),
            ]
        case .machine:
            [
                .ruleIDs("sources", "the run_state rules on this machine's channels (2 to 8), e.g. [\"press-power\", \"press-strokes\"]"),
                .choice("combine", ["any", "all"], default: "any", "any: running if any fresh source runs; all: only if every fresh source runs"),
                .duration("min_stop", default: .seconds(300), "the combined stop (or idle, with alarm_on_idle) must last this long"),
                .duration("min_run", default: .seconds(60), "running must last this long to end a stop"),
                .flag("alarm_on_idle", default: false, "idle (powered, not producing) counts as a stop"),
            ]
        }
    }
}

/// `[calendar]`: what the site's week holds beyond the production shift of `[shift]`.
public struct CalendarSettings: Sendable, Equatable {
    /// When the site is staffed (a door or motion is expected); nil: the shift's hours.
    public var businessHours: ShiftCalendar?
    /// Local dates "YYYY-MM-DD" without production.
    public var holidays: [String]
    /// Planned maintenance: production stops in them are recorded, not alarmed.
    public var maintenance: [MaintenanceWindow]

    public init(businessHours: ShiftCalendar? = nil, holidays: [String] = [], maintenance: [MaintenanceWindow] = []) {
        self.businessHours = businessHours
        self.holidays = holidays
        self.maintenance = maintenance
    }
}

public struct MaintenanceWindow: Sendable, Equatable {
    public var startWallMs: Int64
    public var endWallMs: Int64
    public var reason: String

    public init(startWallMs: Int64, endWallMs: Int64, reason: String) {
        self.startWallMs = startWallMs
        self.endWallMs = endWallMs
        self.reason = reason
    }
}
