import Foundation

extension ConfigDecoder {
    static let calendarKeys = ["business_hours", "holidays", "maintenance"]

    /// `[calendar]`: business hours, holidays, maintenance windows (local times in the shift's zone).
    mutating func decodeCalendar(_ root: TOMLTable, zone: String?) -> CalendarSettings {
        guard let node = root["calendar"] else { return CalendarSettings() }
        guard case .table(let table) = node.value else {
            report(node.keyPosition, "\"calendar\" must be a table: [calendar] with holidays, [calendar.business_hours], [[calendar.maintenance]]")
            return CalendarSettings()
        }
        let top = Section(table: table, name: "calendar", position: node.position, known: Self.calendarKeys)
        checkUnknown(top)
        var settings = CalendarSettings()
        if table["business_hours"] != nil, let hours = section(table, "business_hours", name: "calendar.business_hours", known: ["days", "start", "end"], at: node.position) {
            let days = weekdays(hours, "days", default: [.mon, .tue, .wed, .thu, .fri])
            let start = timeOfDay(hours, "start"), end = timeOfDay(hours, "end")
            if let days, let start, let end {
                settings.businessHours = ShiftCalendar(timeZoneID: zone ?? "UTC", days: days, startMinute: start, endMinute: end)
            }
        }
        if let n = table["holidays"] {
            if case .array(let items) = n.value {
                for item in items {
                    if case .string(let text) = item.value, CivilDate.dayNumber(iso: text) != nil {
                        settings.holidays.append(text)
                    } else {
                        report(item.position, "each of \"holidays\" in [calendar] must be a date \"YYYY-MM-DD\", e.g. \"2026-12-25\"")
                    }
                }
            } else {
                report(n.position, "\"holidays\" in [calendar] must be an array of dates such as [\"2026-12-25\"], found \(n.value.typeName)")
            }
        }
        for m in tableArray(table, "maintenance", name: "calendar.maintenance", known: ["start", "end", "reason"]) {
            let start = localDateTime(m, "start", zone: zone)
            let end = localDateTime(m, "end", zone: zone)
            let reason = string(m, "reason", expected: "what the stop is for, e.g. \"press service\"")
            if let start, let end, end <= start {
                report(m.table["end"]?.position ?? m.position, "\"end\" in [calendar.maintenance] is not after \"start\"")
                continue
            }
            if let start, let end, let reason { settings.maintenance.append(MaintenanceWindow(startWallMs: start, endWallMs: end, reason: reason)) }
        }
        return settings
    }

    /// An array of weekday names; `default` when the key is absent.
    mutating func weekdays(_ s: Section, _ key: String, default value: Set<Weekday>) -> Set<Weekday>? {
        guard let n = s.table[key] else {
            filled(s, key, FilledIn.weekdays(value.sorted()))
            return value
        }
        guard case .array(let items) = n.value, !items.isEmpty else {
            report(n.position, "\"\(key)\" in [\(s.name)] must be a non-empty array of weekday names such as [\"mon\", \"tue\"]")
            return nil
        }
        var set = Set<Weekday>()
        for item in items {
            guard case .string(let d) = item.value, let w = Weekday(configName: d) else {
                report(item.position, "each of \"\(key)\" in [\(s.name)] must be a weekday name such as \"mon\" or \"friday\"")
                return nil
            }
            set.insert(w)
        }
        return set
    }

    /// "YYYY-MM-DDTHH:MM" in the site's zone (or with "Z" / "+01:00"), as wall milliseconds.
    mutating func localDateTime(_ s: Section, _ key: String, zone: String?) -> Int64? {
        let expected = "a local date and time \"YYYY-MM-DDTHH:MM\" (the [shift] time zone), e.g. \"2026-12-02T10:00\""
        guard let text = string(s, key, expected: expected) else { return nil }
        guard let wall = CivilDate.wallMs(localISO: text, zoneID: zone ?? "UTC") else {
            report(s.table[key]?.position ?? s.position, "\"\(key)\" in [\(s.name)] is \"\(text)\"; expected \(expected)")
            return nil
        }
        return wall
    }

    /// `[[detect]]` rules, each checked against its kind's schema; channels must be configured ones.
    mutating func decodeDetect(_ root: TOMLTable, channelIDs: [String: SourcePosition], ruleIDs: inout Set<String>) -> [DetectRuleSettings] {
        var rules: [DetectRuleSettings] = []
        let allKeys = Set(DetectKind.allCases.flatMap { DetectSchema.keys($0).map(\.name) } + DetectSchema.commonKeys)
        // Every rule's kind, complete or not, and where each machine names its sources: checked once all are read.
        var kinds: [String: DetectKind] = [:]
        var machineSources: [(index: Int, position: SourcePosition)] = []
        for r in tableArray(root, "detect", name: "detect", known: Array(allKeys)) {
            let id = identifier(r, "id")
            if let id, !ruleIDs.insert(id).inserted { report(r.table["id"]?.position ?? r.position, "rule id \"\(id)\" is used twice") }
            let kind = choice(r, "kind", DetectKind.self, parse: { DetectKind(rawValue: $0.lowercased()) })
            if let id, let kind { kinds[id] = kinds[id] ?? kind }
            var channel: String?
            if kind == .machine {
                for key in ["channel", "window_before", "window_after"] {
                    if let node = r.table[key] {
                        report(node.keyPosition, "\"\(key)\" is not a parameter of kind machine: it combines the channels of its sources and keeps no evidence window of its own")
                    }
                }
                channel = ""
            } else {
                channel = string(r, "channel", expected: "a channel id such as \"meter.power\" or \"gpio.door\"")
                if let c = channel, channelIDs[c] == nil {
                    let hint = Self.closest(c, in: Array(channelIDs.keys)).map { "; did you mean \"\($0)\"?" } ?? " (channels: \(channelIDs.keys.sorted().joined(separator: ", ")))"
                    report(r.table["channel"]?.position ?? r.position, "channel \"\(c)\" of rule \"\(id ?? "?")\" is not a configured channel\(hint)")
                }
            }
            guard let kind else { continue }
            let severity = choice(r, "severity", DetectSeverity.self, default: kind.defaultSeverity, parse: { DetectSeverity(rawValue: $0.lowercased()) })
            let before = r.table["window_before"] == nil ? nil : integer(r, "window_before", range: 0...64)
            let after = r.table["window_after"] == nil ? nil : integer(r, "window_after", range: 1...64)
            let schema = DetectSchema.keys(kind)
            // A key of another kind is a mistake in this one: say which kinds take it.
            let own = Set(schema.map(\.name) + DetectSchema.commonKeys)
            filledIn.narrow(r, to: r.known.filter(own.contains))
            for key in r.table.keys where !own.contains(key) && allKeys.contains(key) {
                guard let node = r.table[key] else { continue }
                let takers = DetectKind.allCases.filter { DetectSchema.keys($0).contains { $0.name == key } }.map(\.rawValue)
                report(node.keyPosition, "\"\(key)\" is not a parameter of kind \(kind.rawValue) (it is one of \(takers.joined(separator: ", "))); \(kind.rawValue) takes \(schema.map(\.name).joined(separator: ", "))")
            }
            var rule = DetectRuleSettings(id: id ?? "", kind: kind, channel: channel ?? "", severity: severity ?? kind.defaultSeverity, windowBefore: before, windowAfter: after)
            var complete = id != nil && channel != nil && (kind == .machine || channelIDs[channel ?? ""] != nil) && severity != nil
                && (kind != .machine || (r.table["channel"] == nil && r.table["window_before"] == nil && r.table["window_after"] == nil))
                && (before != nil || r.table["window_before"] == nil) && (after != nil || r.table["window_after"] == nil)
            for key in schema {
                switch key.type {
                case .number:
                    if let v = number(r, key.name, required: key.required, default: key.defaultNumber) { rule.numbers[key.name] = v } else if key.required || r.table[key.name] != nil { complete = false }
                case .percent:
                    if let v = number(r, key.name, required: false) {
                        if (0...100).contains(v) { rule.numbers[key.name] = v } else {
                            report(r.table[key.name]?.position ?? r.position, "\"\(key.name)\" in [detect] is \(v); expected a percentage from 0 to 100")
                            complete = false
                        }
                    } else if r.table[key.name] != nil { complete = false }
                case .bounded(let range):
                    if let v = number(r, key.name, required: false, default: key.defaultNumber) {
                        if range.contains(v) { rule.numbers[key.name] = v } else {
                            report(r.table[key.name]?.position ?? r.position, "\"\(key.name)\" in [detect] is \(v); expected \(range.lowerBound) to \(range.upperBound)")
                            complete = false
                        }
                    } else { complete = false }
                case .duration(let min):
                    if let v = duration(r, key.name, min: min, required: key.required, default: key.defaultDuration) { rule.durations[key.name] = v } else { complete = false }
                case .flag:
                    if let v = boolean(r, key.name, default: key.defaultFlag ?? false) { rule.flags[key.name] = v } else { complete = false }
                case .choice(let options):
                    if let text = string(r, key.name, required: false, expected: "one of \(options.joined(separator: ", "))", default: key.defaultChoice) {
                        if options.contains(text) { rule.choices[key.name] = text } else {
                            report(r.table[key.name]?.position ?? r.position, "\"\(key.name)\" in [detect] is \"\(text)\"; expected one of \(options.joined(separator: ", "))")
                            complete = false
                        }
                    } else { complete = false }
                case .ruleIDs:
                    if let ids = ruleList(r, key.name) { rule.sources = ids } else { complete = false }
                }
            }
            complete = complete && checkDetectRule(rule, r)
            if complete {
                if kind == .machine { machineSources.append((rules.count, r.table["sources"]?.position ?? r.position)) }
                rules.append(rule)
            }
        }
        return checkMachines(rules, sources: machineSources, kinds: kinds)
    }

    /// An array of 2 to 8 distinct rule ids.
    mutating func ruleList(_ s: Section, _ key: String) -> [String]? {
        let expected = "an array of 2 to 8 rule ids such as [\"press-power\", \"press-strokes\"]"
        guard let node = s.table[key] else {
            report(s.position, "missing key \"\(key)\" in [\(s.name)] (expected \(expected))")
            return nil
        }
        guard case .array(let items) = node.value else {
            report(node.position, "\"\(key)\" in [\(s.name)] must be \(expected), found \(node.value.typeName)")
            return nil
        }
        var ids: [String] = []
        for item in items {
            guard case .string(let text) = item.value, !text.isEmpty else {
                report(item.position, "each of \"\(key)\" in [\(s.name)] must be a rule id (a string)")
                return nil
            }
            if ids.contains(text) {
                report(item.position, "\"\(text)\" is named twice in \"\(key)\"")
                return nil
            }
            ids.append(text)
        }
        guard (2...8).contains(ids.count) else {
            report(node.position, "\"\(key)\" in [\(s.name)] names \(ids.count) rule(s); expected \(expected)")
            return nil
        }
        return ids
    }

    /// Each machine's sources must be run_state rules of this config; its channel becomes theirs.
    mutating func checkMachines(_ rules: [DetectRuleSettings], sources: [(index: Int, position: SourcePosition)], kinds: [String: DetectKind]) -> [DetectRuleSettings] {
        var rules = rules
        var dropped = Set<Int>()
        for (index, position) in sources {
            var channels: [String] = []
            for id in rules[index].sources {
                if let source = rules.first(where: { $0.id == id }) {
                    guard source.kind == .runState else {
                        report(position, "source \"\(id)\" of machine rule \"\(rules[index].id)\" is a \(source.kind.rawValue) rule; a machine combines run_state rules")
                        dropped.insert(index)
                        break
                    }
                    if !channels.contains(source.channel) { channels.append(source.channel) }
                } else if kinds[id] == nil {
                    let runStates = rules.filter { $0.kind == .runState }.map(\.id)
                    let hint = Self.closest(id, in: runStates).map { "; did you mean \"\($0)\"?" } ?? " (run_state rules: \(runStates.isEmpty ? "none" : runStates.joined(separator: ", ")))"
                    report(position, "source \"\(id)\" of machine rule \"\(rules[index].id)\" is not a rule of this config\(hint)")
                    dropped.insert(index)
                    break
                } else {
                    dropped.insert(index)  // the source has its own errors, reported there
                    break
                }
            }
            rules[index].channel = channels.joined(separator: "+")
        }
        return rules.enumerated().filter { !dropped.contains($0.offset) }.map(\.element)
    }

    /// What a kind needs beyond single keys.
    mutating func checkDetectRule(_ rule: DetectRuleSettings, _ r: Section) -> Bool {
        func problem(_ key: String, _ message: String) -> Bool {
            report(r.table[key]?.position ?? r.position, message)
            return false
        }
        switch rule.kind {
        case .runState:
            if let run = rule.numbers["running_at_or_above"], let stop = rule.numbers["stopped_below"], stop > run {
                return problem("stopped_below", "\"stopped_below\" (\(stop)) is above \"running_at_or_above\" (\(run)) in rule \"\(rule.id)\": a value could be stopped and running at once")
            }
        case .weightDrop:
            if rule.numbers["tolerance"] == nil && rule.numbers["tolerance_percent"] == nil {
                return problem("kind", "rule \"\(rule.id)\" (weight_drop) needs \"tolerance\" or \"tolerance_percent\": how large a drop is an event")
            }
        case .threshold:
            if rule.numbers["above"] == nil && rule.numbers["below"] == nil {
                return problem("kind", "rule \"\(rule.id)\" (threshold) needs \"above\" or \"below\"")
            }
            if let above = rule.numbers["above"], let below = rule.numbers["below"], below >= above {
                return problem("below", "\"below\" (\(below)) is not under \"above\" (\(above)) in rule \"\(rule.id)\": nothing would be inside")
            }
        case .contact, .countDrop, .flatline, .commLoss, .baseline, .machine:
            break
        }
        return true
    }
}

/// Civil dates and local times without a calendar object per call.
public enum CivilDate {
    /// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil).
    public static func dayNumber(year: Int, month: Int, day: Int) -> Int64 {
        let y = Int64(month <= 2 ? year - 1 : year)
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let m = Int64(month)
        let doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + Int64(day) - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    /// "YYYY-MM-DD" as a day number; nil when it is not a real date.
    public static func dayNumber(iso text: String) -> Int64? {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0].count == 4, parts[1].count == 2, parts[2].count == 2,
            parts.allSatisfy({ $0.allSatisfy { $0.isASCII && $0.isNumber } }),
            let y = Int(parts[0]), let m = Int(parts[1]), let d = Int(parts[2]), (1...12).contains(m), d >= 1
        else { return nil }
        let monthLength = [31, (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][m - 1]
        guard d <= monthLength else { return nil }
        return dayNumber(year: y, month: m, day: d)
    }

    /// "YYYY-MM-DDTHH:MM[:SS]" local to `zoneID`, or ending in "Z" / "±HH:MM": wall milliseconds. A
    /// local time skipped by a DST change is taken as the instant after the gap; one repeated, the first.
    public static func wallMs(localISO text: String, zoneID: String) -> Int64? {
        var body = Substring(text)
        var fixedOffsetS: Int?
        if body.hasSuffix("Z") {
            fixedOffsetS = 0
            body = body.dropLast()
        } else if body.count > 6, let sign = body.dropLast(5).last, sign == "+" || sign == "-" {
            let tail = body.suffix(5)
            let hm = tail.split(separator: ":")
            guard hm.count == 2, let h = Int(hm[0]), let m = Int(hm[1]), (0...14).contains(h), (0...59).contains(m) else { return nil }
            fixedOffsetS = (sign == "+" ? 1 : -1) * (h * 3600 + m * 60)
            body = body.dropLast(6)
        }
        let halves = body.split(separator: "T", omittingEmptySubsequences: false)
        guard halves.count == 2, let day = dayNumber(iso: String(halves[0])) else { return nil }
        let clock = halves[1].split(separator: ":", omittingEmptySubsequences: false)
        guard (2...3).contains(clock.count), clock.allSatisfy({ $0.count == 2 && $0.allSatisfy { $0.isASCII && $0.isNumber } }),
            let h = Int(clock[0]), let mi = Int(clock[1]), (0...23).contains(h), (0...59).contains(mi)
        else { return nil }
        let sec = clock.count == 3 ? Int(clock[2]) ?? 60 : 0
        guard sec < 60 else { return nil }
        let localMs = (day * 86_400 + Int64(h * 3600 + mi * 60 + sec)) * 1000
        if let fixedOffsetS { return localMs - Int64(fixedOffsetS) * 1000 }
        guard let zone = TimeZone(identifier: zoneID) else { return nil }
        // The offset at the local time read as UTC, then at the instant that gives: right except inside a gap.
        let guess = localMs - Int64(zone.secondsFromGMT(for: Date(timeIntervalSince1970: Double(localMs) / 1000))) * 1000
        let offset = Int64(zone.secondsFromGMT(for: Date(timeIntervalSince1970: Double(guess) / 1000))) * 1000
        return localMs - offset
    }
}
