import VouchCore

/// Every configured detector of a site, fed one sample at a time with the site's calendar: the one
/// place samples meet detectors, used by the live agent and by `vouch detect replay` alike, so both
/// give the same findings for the same samples.
public struct DetectionEngine: Sendable {
    public private(set) var detectors: [any Detector]
    public private(set) var calendar: SiteCalendar
    /// `machine` rules, each combining some of `detectors` (run-state sources).
    public private(set) var machines: [MachineDetector]
    /// Indices into `detectors` by channel.
    private let byChannel: [String: [Int]]
    /// By detector index: the machines it is a source of, and in which slot (empty for most).
    private let machineSlots: [[(machine: Int, slot: Int)]]

    /// `machines` pairs each machine with the indices in `detectors` of its sources, in slot order.
    public init(detectors: [any Detector], calendar: SiteCalendar, machines: [(MachineDetector, sources: [Int])] = []) {
        self.detectors = detectors
        self.calendar = calendar
        var index: [String: [Int]] = [:]
        for (i, d) in detectors.enumerated() { index[d.rule.channel, default: []].append(i) }
        byChannel = index
        var slots = Array(repeating: [(machine: Int, slot: Int)](), count: detectors.count)
        var built: [MachineDetector] = []
        for (m, (machine, sources)) in machines.enumerated() {
            var machine = machine
            for (slot, source) in sources.enumerated() where detectors.indices.contains(source) { slots[source].append((m, slot)) }
            machine.wordLevels(
                sources.map { i in
                    let run = detectors.indices.contains(i) ? detectors[i] as? RunStateDetector : nil
                    return { level in run?.levelText(level) ?? "\(level)" }
                })
            built.append(machine)
        }
        self.machines = built
        machineSlots = slots
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
            guard !machineSlots[i].isEmpty, let source = detectors[i].runSource else { continue }
            for (m, slot) in machineSlots[i] {
                machines[m].note(slot, source)
                if let finding = machines[m].evaluate(at: sample, context) { findings.append(finding) }
                score = max(score, machines[m].score)
            }
        }
        return (score, findings)
    }

    /// What the rules must not forget across an agent restart (``Detector/carryOver``), by
    /// ``carryOverKey(_:)``. Empty when no rule keeps anything.
    public var carryOver: [String: [String: Int64]] {
        var kept: [String: [String: Int64]] = [:]
        for d in detectors {
            if let values = d.carryOver { kept[Self.carryOverKey(d.rule)] = values }
        }
        return kept
    }

    /// What was kept is given back to the rule with the same id, kind, channel and scale (a rule
    /// changed in any of those starts afresh). Returns the ids of the rules that resumed.
    @discardableResult
    public mutating func resume(_ kept: [String: [String: Int64]]) -> [String] {
        var resumed: [String] = []
        for i in detectors.indices {
            guard let values = kept[Self.carryOverKey(detectors[i].rule)] else { continue }
            detectors[i].resume(values)
            resumed.append(detectors[i].rule.id)
        }
        return resumed
    }

    public static func carryOverKey(_ rule: RuleIdentity) -> String {
        "\(rule.id)|\(rule.kind)|\(rule.channel)|\(rule.scaleExponent)"
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
