import VouchCore

/// Every configured detector of a site, fed one sample at a time with the site's calendar: the one
/// place samples meet detectors, used by the live agent and by `vouch detect replay` alike, so both
/// give the same findings for the same samples.
public struct DetectionEngine: Sendable {
    public private(set) var detectors: [any Detector]
    public private(set) var calendar: SiteCalendar
    /// Indices into `detectors` by channel.
    private let byChannel: [String: [Int]]

    public init(detectors: [any Detector], calendar: SiteCalendar) {
        self.detectors = detectors
        self.calendar = calendar
        var index: [String: [Int]] = [:]
        for (i, d) in detectors.enumerated() { index[d.rule.channel, default: []].append(i) }
        byChannel = index
    }

    /// The channels some detector watches.
    public var channels: Set<String> { Set(byChannel.keys) }

    /// Feeds one sample of `channel` to its detectors. Returns the findings made at it and the highest
    /// anomaly score among them (0 when no detector watches the channel).
    public mutating func feed(channel: String, _ sample: DetectorSample, releaseOpen: Bool = false) -> (score: Double, findings: [Finding]) {
        guard let indices = byChannel[channel] else { return (0, []) }
        let context = calendar.context(wallMs: sample.wallMs, releaseOpen: releaseOpen)
        var findings: [Finding] = []
        var score = 0.0
        for i in indices {
            if let finding = detectors[i].feed(sample, context) { findings.append(finding) }
            score = max(score, detectors[i].score)
        }
        return (score, findings)
    }

    /// Bytes of detector state per channel (the sum over the channel's detectors).
    public var stateBytesByChannel: [String: Int] {
        byChannel.mapValues { $0.reduce(0) { $0 + detectors[$1].stateBytes } }
    }
}

extension SiteCalendar {
    /// The calendar a config describes: `[shift]` and `[calendar]`.
    public init(shift: ShiftCalendar, calendar: CalendarSettings) {
        let hours = Hours(days: shift.days, startMinute: shift.startMinute, endMinute: shift.endMinute)
        let business = calendar.businessHours.map { Hours(days: $0.days, startMinute: $0.startMinute, endMinute: $0.endMinute) }
        self.init(
            timeZoneID: shift.timeZoneID, shift: hours, businessHours: business, holidays: Set(calendar.holidays.compactMap(CivilDate.dayNumber(iso:))),
            maintenance: calendar.maintenance)
    }
}
