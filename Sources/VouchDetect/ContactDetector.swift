/// A 0/1 level channel that must stay inactive when the site is unwatched: a door contact or PIR
/// motion outside business hours, an enclosure tamper switch at all times.
///
/// State machine:
/// - `idle`: inactive (value 0), or active while `when` does not hold.
/// - `candidate(start)`: active (value ≠ 0) since `start`, the first active sample while `when`
///   holds; not yet `activeMinMs` long. Dropped by an inactive sample, or by `when` ceasing to hold
///   (business hours begin): during business hours nothing is raised.
/// - `active(start)`: active for at least `activeMinMs` → `.start` with `severity`. Ends (`.end`) at
///   the first inactive sample, whatever the calendar does meanwhile (a door opened at 02:00 and
///   still open at 08:00 is one event).
///
/// Rules of evidence:
/// - The start is the first active sample while `when` holds: a door propped open at 17:59 counts
///   from the first sample after business hours end, not from 17:59 (it was not suspicious then).
///   Confirmed at the first sample at least `activeMinMs` after it (within one poll interval).
/// - `activeMinMs` = 0: the first active sample is the event (an enclosure switch).
/// - A failed poll is neither active nor inactive: it neither confirms, drops nor ends.
///
/// State: 490 bytes on a 64-bit target with the default 6/6 window (``stateBytes``): 202 of
/// the detector itself, 288 of the window's ring (24 bytes a sample), inside the 512 B per channel.
public struct ContactDetector: Detector {
    public static let kind = "contact"
    public static let version: Int64 = 1

    public typealias When = DetectorWhen

    public struct Parameters: Sendable, Equatable {
        /// Milliseconds the contact must stay active to count; 0: any activation.
        public var activeMinMs: Int64
        /// When an activation is suspicious.
        public var when: When
        /// Severity of the event (alarm for a door at night, record for motion one only logs).
        public var severity: Severity

        public init(activeMinMs: Int64, when: When, severity: Severity = .alarm) {
            self.activeMinMs = activeMinMs
            self.when = when
            self.severity = severity
        }
    }

    public let rule: RuleIdentity
    public let parameters: Parameters
    private var condition: HeldCondition

    public init(rule: RuleIdentity, parameters: Parameters, windowBefore: Int = 6, windowAfter: Int = 6) {
        self.rule = rule
        self.parameters = parameters
        condition = HeldCondition(windowBefore: windowBefore, windowAfter: windowAfter)
    }

    public var score: Double { condition.score }

    public var stateBytes: Int {
        healthStateBytes(window: condition.window)
    }

    public mutating func feed(_ sample: DetectorSample, _ context: SiteContext) -> Finding? {
        let active = sample.value.map { $0 != 0 } ?? false
        let transition = condition.feed(sample, minMs: parameters.activeMinMs, readable: sample.value != nil, holds: active, over: !active, watched: parameters.when.holds(context))
        switch transition {
        case nil:
            return nil
        case .started(let elapsed):
            let watched = parameters.when == .always
                ? "the contact is watched at all times (tamper or enclosure)"
                : "nobody is expected on site"
            let text = parameters.activeMinMs > 0
                ? "\(rule.channel) active for \(HealthText.duration(elapsed))\(parameters.when.phrase) (rule: \(HealthText.duration(parameters.activeMinMs))): \(watched)"
                : "\(rule.channel) went active\(parameters.when.phrase): \(watched)"
            return finding(.start, at: sample, end: nil, text)
        case .ended:
            let held = HealthText.duration(DetectorMath.minus(sample.monoMs, condition.start.monoMs))
            return finding(.end, at: sample, end: sample, "\(rule.channel) inactive again after \(held)")
        }
    }

    private func finding(_ phase: Finding.Phase, at: DetectorSample, end: DetectorSample?, _ text: String) -> Finding {
        Finding(
            phase: phase, rule: rule, severity: parameters.severity, start: condition.start, end: end, at: at,
            params: [
                "active_min_ms": .int(parameters.activeMinMs), "when": .text(parameters.when.rawValue),
                "severity": .text(parameters.severity.rawValue),
            ],
            window: condition.window.samples, explanation: text)
    }
}
