import VouchCore

/// Builds the detector a `[[detect]]` rule describes, its parameters scaled like its channel.
public enum DetectorFactory {
    public struct Unavailable: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    /// Scales an engineering value like a channel with decimal exponent `exponent` (rounded half away from zero).
    public static func scaled(_ value: Double, exponent: Int64) -> Int64 {
        scaledExactly(value, exponent: exponent) ?? (value < 0 ? Int64.min : Int64.max)
    }

    /// As ``scaled(_:exponent:)``; nil when the result does not fit an Int64.
    public static func scaledExactly(_ value: Double, exponent: Int64) -> Int64? {
        var factor = 1.0
        for _ in 0..<abs(exponent) { factor *= 10 }
        let v = (exponent <= 0 ? value * factor : value / factor).rounded(.toNearestOrAwayFromZero)
        return abs(v) < 9.2e18 ? Int64(v) : nil
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
        for rule in config.detectRules {
            guard let channel = channels[rule.channel] else {
                throw Unavailable(description: "rule \(rule.id): channel \(rule.channel) is not configured")
            }
            detectors.append(try make(rule, channel: channel))
        }
        return DetectionEngine(detectors: detectors, calendar: SiteCalendar(shift: config.shift, calendar: config.calendar))
    }

    public static func make(_ rule: DetectRuleSettings, channel: ChannelDescriptor) throws(Unavailable) -> any Detector {
        throw Unavailable(description: "rule \(rule.id): kind \(rule.kind.rawValue) is not built into this vouch yet")
    }
}
