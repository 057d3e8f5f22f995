import VouchCore

/// Builds the detector a `[[detect]]` rule describes, its parameters scaled like its channel.
public enum DetectorFactory {
    public struct Unavailable: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    /// Scales an engineering value like a channel with decimal exponent `exponent` (rounded half away from zero).
    /// The config's range checks keep parameters far inside Int64, so the clamp is never reached in practice.
    public static func scaled(_ value: Double, exponent: Int64) -> Int64 {
        IntegerScaling.scaled(value, decimals: Int(-exponent)) ?? (value < 0 ? Int64.min : Int64.max)
    }

    static func milliseconds(_ d: Duration?) -> Int64 {
        guard let d else { return 0 }
        return d.components.seconds * 1000 + d.components.attoseconds / 1_000_000_000_000_000
    }

    public static func identity(_ rule: DetectRuleSettings, kind: String, version: Int64, channel: ChannelDescriptor) -> RuleIdentity {
        RuleIdentity(id: rule.id, version: version, kind: kind, channel: rule.channel, unit: channel.unit, scaleExponent: channel.scaleExponent)
    }

    /// Every rule of a config, in order; fails on the first rule whose kind this build cannot run.
    public static func engine(for config: AgentConfig) throws(Unavailable) -> DetectionEngine {
        let channels = Dictionary(config.allChannels.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        var detectors: [any Detector] = []
        var index: [String: Int] = [:]
        for rule in config.detectRules where rule.kind != .machine {
            guard let channel = channels[rule.channel] else {
                throw Unavailable(description: "rule \(rule.id): channel \(rule.channel) is not configured")
            }
            index[rule.id] = detectors.count
            detectors.append(try make(rule, channel: channel))
        }
        var machines: [(MachineDetector, sources: [Int])] = []
        for rule in config.detectRules where rule.kind == .machine {
            var sources: [Int] = []
            for id in rule.sources {
                guard let i = index[id], detectors[i] is RunStateDetector else {
                    throw Unavailable(description: "machine rule \(rule.id): source \(id) is not a run_state rule of this config")
                }
                sources.append(i)
            }
            machines.append((machine(rule), sources))
        }
        return DetectionEngine(detectors: detectors, calendar: SiteCalendar(shift: config.shift, calendar: config.calendar), machines: machines)
    }

    /// A `machine` rule's detector (its sources are wired by ``engine(for:)``).
    public static func machine(_ rule: DetectRuleSettings) -> MachineDetector {
        let p = MachineDetector.Parameters(
            combine: MachineDetector.Combine(rawValue: rule.choices["combine"] ?? "any") ?? .any, minStopMs: milliseconds(rule.durations["min_stop"]),
            minRunMs: milliseconds(rule.durations["min_run"]), alarmOnIdle: rule.flags["alarm_on_idle"] ?? false,
            severity: Severity(rawValue: rule.severity.rawValue) ?? .alarm)
        let id = RuleIdentity(id: rule.id, version: MachineDetector.version, kind: MachineDetector.kind, channel: rule.channel, unit: "", scaleExponent: 0)
        return MachineDetector(rule: id, parameters: p, sourceIDs: rule.sources)
    }

    public static func make(_ rule: DetectRuleSettings, channel: ChannelDescriptor) throws(Unavailable) -> any Detector {
        let e = channel.scaleExponent
        func number(_ key: String) -> Int64 { scaled(rule.numbers[key] ?? 0, exponent: e) }
        func ms(_ key: String) -> Int64 { milliseconds(rule.durations[key]) }
        let severity = Severity(rawValue: rule.severity.rawValue) ?? .alarm
        switch rule.kind {
        case .machine:
            throw Unavailable(description: "rule \(rule.id): a machine rule has no channel of its own; DetectorFactory.engine(for:) builds it over its sources")
        case .runState:
            let p = RunStateDetector.Parameters(
                input: RunStateDetector.Input(rawValue: rule.choices["input"] ?? "level") ?? .level, runningAtOrAbove: number("running_at_or_above"),
                stoppedBelow: number("stopped_below"), minStopMs: ms("min_stop"), minRunMs: ms("min_run"), offlineAfterMs: ms("offline_after"),
                alarmOnIdle: rule.flags["alarm_on_idle"] ?? false, severity: severity)
            let id = identity(rule, kind: RunStateDetector.kind, version: RunStateDetector.version, channel: channel)
            return window(rule) { RunStateDetector(rule: id, parameters: p, windowBefore: $0, windowAfter: $1) } ?? RunStateDetector(rule: id, parameters: p)
        case .flatline:
            let p = FlatlineDetector.Parameters(epsilon: number("epsilon"), durationMs: ms("duration"))
            let id = identity(rule, kind: FlatlineDetector.kind, version: FlatlineDetector.version, channel: channel)
            return window(rule) { FlatlineDetector(rule: id, parameters: p, windowBefore: $0, windowAfter: $1) } ?? FlatlineDetector(rule: id, parameters: p)
        case .commLoss:
            let p = CommLossDetector.Parameters(durationMs: ms("duration"), severity: severity)
            let id = identity(rule, kind: CommLossDetector.kind, version: CommLossDetector.version, channel: channel)
            return window(rule) { CommLossDetector(rule: id, parameters: p, windowBefore: $0, windowAfter: $1) } ?? CommLossDetector(rule: id, parameters: p)
        case .baseline:
            // Warm-up is configured as time; the detector counts samples at the channel's period.
            let periodMs = max(1, milliseconds(channel.period))
            let p = BaselineDetector.Parameters(
                direction: BaselineDetector.Direction(rawValue: rule.choices["direction"] ?? "both") ?? .both, scoreThreshold: rule.numbers["score_threshold"] ?? 0.5,
                minDurationMs: ms("min_duration"), learnSamples: ms("learn") / periodMs, minSpread: number("min_spread"), severity: severity)
            let id = identity(rule, kind: BaselineDetector.kind, version: BaselineDetector.version, channel: channel)
            return window(rule) { BaselineDetector(rule: id, parameters: p, windowBefore: $0, windowAfter: $1) } ?? BaselineDetector(rule: id, parameters: p)
        case .weightDrop:
            // Percentages are given to 0.1 %: per mille, rounded.
            func perMille(_ key: String) -> Int64? { rule.numbers[key].map { Int64(($0 * 10).rounded(.toNearestOrAwayFromZero)) } }
            func optional(_ key: String) -> Int64? { rule.numbers[key].map { scaled($0, exponent: e) } }
            let p = WeightDropDetector.Parameters(
                toleranceAbs: optional("tolerance"), tolerancePerMille: perMille("tolerance_percent"), noise: number("noise"), settleMs: ms("settle"),
                cumulativeAbs: optional("cumulative"), cumulativePerMille: perMille("cumulative_percent"))
            let id = identity(rule, kind: WeightDropDetector.kind, version: WeightDropDetector.version, channel: channel)
            return window(rule) { WeightDropDetector(rule: id, parameters: p, windowBefore: $0, windowAfter: $1) } ?? WeightDropDetector(rule: id, parameters: p)
        case .contact:
            let p = ContactDetector.Parameters(activeMinMs: ms("active_min"), when: when(rule), severity: severity)
            let id = identity(rule, kind: ContactDetector.kind, version: ContactDetector.version, channel: channel)
            return window(rule) { ContactDetector(rule: id, parameters: p, windowBefore: $0, windowAfter: $1) } ?? ContactDetector(rule: id, parameters: p)
        case .threshold:
            let p = ThresholdDetector.Parameters(
                above: rule.numbers["above"].map { scaled($0, exponent: e) }, below: rule.numbers["below"].map { scaled($0, exponent: e) },
                minDurationMs: ms("min_duration"), hysteresis: number("hysteresis"), when: when(rule), severity: severity)
            let id = identity(rule, kind: ThresholdDetector.kind, version: ThresholdDetector.version, channel: channel)
            return window(rule) { ThresholdDetector(rule: id, parameters: p, windowBefore: $0, windowAfter: $1) } ?? ThresholdDetector(rule: id, parameters: p)
        case .countDrop:
            let p = CountDropDetector.Parameters(
                dropAbs: number("drop"), settleMs: ms("settle"), when: when(rule), backwardsIsTamper: rule.flags["backwards_is_tamper"] ?? false)
            let id = identity(rule, kind: CountDropDetector.kind, version: CountDropDetector.version, channel: channel)
            return window(rule) { CountDropDetector(rule: id, parameters: p, windowBefore: $0, windowAfter: $1) } ?? CountDropDetector(rule: id, parameters: p)
        }
    }

    /// The config's `when` (snake_case) as the detectors' own.
    static func when(_ rule: DetectRuleSettings) -> DetectorWhen {
        switch DetectWhen(rawValue: rule.choices["when"] ?? "") {
        case .outsideBusinessHours: .outsideBusinessHours
        case .outsideShift: .outsideShift
        case .always, nil: .always
        }
    }

    /// The detector with the rule's own window, when the rule sets one (either side); nil: its default.
    static func window(_ rule: DetectRuleSettings, _ make: (Int, Int) -> any Detector) -> (any Detector)? {
        guard rule.windowBefore != nil || rule.windowAfter != nil else { return nil }
        return make(rule.windowBefore ?? 2, rule.windowAfter ?? 2)
    }
}
