import Foundation
import Testing
import VouchCore

/// `[[detect]]` rules and `[calendar]`.
struct DetectConfigTests {
    /// A site with a power meter channel (m.power), a weight channel (m.weight) and a door (gpio.door).
    static let site = ModbusConfigTests.head.replacingOccurrences(of: "timezone = \"UTC\"", with: "timezone = \"Europe/Berlin\"")
        + ModbusConfigTests.device(ModbusConfigTests.channel + "[[modbus.device.channel]]\nname = \"weight\"\nregister = \"holding\"\naddress = 0\ntype = \"i32\"\ndecimals = 1\nunit = \"kg\"\n")
        + "[[gpio.input]]\nname = \"door\"\nline = \"door\"\n\n"

    @Test func everyKindIsReadWithItsDefaults() throws {
        let text = Self.site + """
            [[detect]]
            id = "press-stop"
            kind = "run_state"
            channel = "m.power"
            running_at_or_above = 500
            stopped_below = 50
            min_stop = "5m"

            [[detect]]
            id = "stock"
            kind = "weight_drop"
            channel = "m.weight"
            tolerance_percent = 5
            noise = 2.5
            cumulative = 100

            [[detect]]
            id = "door-at-night"
            kind = "contact"
            channel = "gpio.door"

            [[detect]]
            id = "stuck"
            kind = "flatline"
            channel = "m.power"
            duration = "2h"
            severity = "record"

            """
        let rules = try ConfigLoader.parse(text, file: "vouch.toml").detectRules
        #expect(rules.map(\.id) == ["press-stop", "stock", "door-at-night", "stuck"])
        #expect(rules[0] == DetectRuleSettings(
            id: "press-stop", kind: .runState, channel: "m.power", severity: .alarm, numbers: ["running_at_or_above": 500, "stopped_below": 50],
            durations: ["min_stop": .seconds(300), "min_run": .seconds(60), "offline_after": .seconds(300)], flags: ["alarm_on_idle": false], choices: ["input": "level"]))
        #expect(rules[1].numbers == ["tolerance_percent": 5, "noise": 2.5, "cumulative": 100])
        #expect(rules[1].durations == ["settle": .seconds(60)])
        #expect(rules[2].choices == ["when": "outside_business_hours"] && rules[2].durations == ["active_min": .zero] && rules[2].severity == .alarm)
        #expect(rules[3].severity == .record && rules[3].durations["duration"] == .seconds(7200))
    }

    @Test(arguments: [
        // (rule body after id/channel, where the error points, message)
        ("kind = \"run_stat\"\nrunning_at_or_above = 1\nstopped_below = 0\n", "kind = ", "\"kind\" in [detect] is \"run_stat\"; expected one of run_state, weight_drop, contact, threshold, count_drop, flatline, comm_loss, baseline, machine"),
        ("kind = \"run_state\"\nstopped_below = 0\n", "[[detect]]", "missing key \"running_at_or_above\" in [detect] (expected a number)"),
        ("kind = \"run_state\"\nrunning_at_or_above = 100\nstopped_below = 200\n", "stopped_below = ", "\"stopped_below\" (200.0) is above \"running_at_or_above\" (100.0) in rule \"r\": a value could be stopped and running at once"),
        ("kind = \"contact\"\nduration = \"1m\"\n", "duration = ", "\"duration\" is not a parameter of kind contact (it is one of flatline, comm_loss); contact takes active_min, when"),
        ("kind = \"contact\"\nwhen = \"at_night\"\n", "when = ", "\"when\" in [detect] is \"at_night\"; expected one of always, outside_business_hours, outside_shift"),
        ("kind = \"weight_drop\"\nnoise = 1\n", "kind = ", "rule \"r\" (weight_drop) needs \"tolerance\" or \"tolerance_percent\": how large a drop is an event"),
        ("kind = \"weight_drop\"\ntolerance_percent = 150\n", "tolerance_percent = ", "\"tolerance_percent\" in [detect] is 150.0; expected a percentage from 0 to 100"),
        ("kind = \"threshold\"\nmin_duration = \"1m\"\n", "kind = ", "rule \"r\" (threshold) needs \"above\" or \"below\""),
        ("kind = \"threshold\"\nabove = 5\nbelow = 10\n", "below = ", "\"below\" (10.0) is not under \"above\" (5.0) in rule \"r\": nothing would be inside"),
        ("kind = \"baseline\"\nscore_threshold = 1.5\n", "score_threshold = ", "\"score_threshold\" in [detect] is 1.5; expected 0.0 to 1.0"),
        ("kind = \"comm_loss\"\n", "[[detect]]", "missing key \"duration\" in [detect] (expected a duration such as \"500ms\", \"15s\", \"2m\", \"1h\" or \"30d\")"),
        ("kind = \"flatline\"\nduration = \"2h\"\nseverity = \"high\"\n", "severity = ", "\"severity\" in [detect] is \"high\"; expected one of record, warning, alarm"),
        ("kind = \"flatline\"\nduration = \"2h\"\nepsilom = 1\n", "epsilom", "unknown key \"epsilom\" in [detect]; did you mean \"epsilon\"?"),
    ] as [(String, String, String)])
    func brokenRulesAreReportedWhereTheyAreWrong(body: String, at needle: String, message: String) throws {
        let text = Self.site + "[[detect]]\nid = \"r\"\nchannel = \"m.power\"\n" + body
        let d = configDiagnostics(text)
        #expect(d.map(\.message) == [message])
        #expect(d.first?.position.line == position(of: needle, in: text).line)
    }

    @Test func aRuleOnAnUnknownChannelSuggestsTheClosest() {
        let d = configDiagnostics(Self.site + "[[detect]]\nid = \"r\"\nkind = \"comm_loss\"\nchannel = \"m.powr\"\nduration = \"5m\"\n")
        #expect(d.map(\.message) == ["channel \"m.powr\" of rule \"r\" is not a configured channel; did you mean \"m.power\"?"])
    }

    @Test func ruleIdsAreUniqueAcrossStoppageAndDetectRules() {
        let text = Self.site + "[[stoppage]]\nid = \"r\"\nchannel = \"m.power\"\nbelow = 5\nfor = \"5m\"\n\n[[detect]]\nid = \"r\"\nkind = \"comm_loss\"\nchannel = \"m.power\"\nduration = \"5m\"\n"
        #expect(configDiagnostics(text).map(\.message) == ["rule id \"r\" is used twice"])
    }

    @Test func theCalendarIsReadInTheShiftsZone() throws {
        let text = Self.site + """
            [calendar]
            holidays = ["2026-12-25", "2026-12-26"]

            [calendar.business_hours]
            days = ["mon", "tue", "wed", "thu", "fri", "sat"]
            start = "07:00"
            end = "19:00"

            [[calendar.maintenance]]
            start = "2026-12-02T10:00"
            end = "2026-12-02T12:30"
            reason = "press service"

            """
        let calendar = try ConfigLoader.parse(text, file: "vouch.toml").calendar
        #expect(calendar.holidays == ["2026-12-25", "2026-12-26"])
        #expect(calendar.businessHours == ShiftCalendar(timeZoneID: "Europe/Berlin", days: [.mon, .tue, .wed, .thu, .fri, .sat], startMinute: 420, endMinute: 1140))
        // 10:00 in Berlin in December is 09:00 UTC.
        let utc = ISO8601DateFormatter().date(from: "2026-12-02T09:00:00Z").map { Int64($0.timeIntervalSince1970 * 1000) }
        #expect(calendar.maintenance == [MaintenanceWindow(startWallMs: utc ?? 0, endWallMs: (utc ?? 0) + 9_000_000, reason: "press service")])
    }

    @Test(arguments: [
        ("holidays = [\"2026-02-30\"]\n", "each of \"holidays\" in [calendar] must be a date \"YYYY-MM-DD\", e.g. \"2026-12-25\""),
        ("holidays = \"2026-12-25\"\n", "\"holidays\" in [calendar] must be an array of dates such as [\"2026-12-25\"], found a string"),
        ("[[calendar.maintenance]]\nstart = \"2026-12-02T12:00\"\nend = \"2026-12-02T10:00\"\nreason = \"x\"\n", "\"end\" in [calendar.maintenance] is not after \"start\""),
        ("[[calendar.maintenance]]\nstart = \"2026-12-02 10:00\"\nend = \"2026-12-02T12:00\"\nreason = \"x\"\n", "\"start\" in [calendar.maintenance] is \"2026-12-02 10:00\"; expected a local date and time \"YYYY-MM-DDTHH:MM\" (the [shift] time zone), e.g. \"2026-12-02T10:00\""),
        ("holiday = [\"2026-12-25\"]\n", "unknown key \"holiday\" in [calendar]; did you mean \"holidays\"?"),
    ] as [(String, String)])
    func brokenCalendars(body: String, message: String) {
        let text = Self.site + "[calendar]\n" + body
        #expect(configDiagnostics(text).map(\.message) == [message])
    }

    @Test func localTimesAcrossDaylightSavingChanges() {
        // Berlin springs forward 2026-03-29 02:00 → 03:00 and falls back 2026-10-25 03:00 → 02:00.
        let iso = ISO8601DateFormatter()
        func utc(_ s: String) -> Int64? { iso.date(from: s).map { Int64($0.timeIntervalSince1970 * 1000) } }
        #expect(CivilDate.wallMs(localISO: "2026-03-29T01:59", zoneID: "Europe/Berlin") == utc("2026-03-29T00:59:00Z"))
        #expect(CivilDate.wallMs(localISO: "2026-03-29T03:00", zoneID: "Europe/Berlin") == utc("2026-03-29T01:00:00Z"))
        #expect(CivilDate.wallMs(localISO: "2026-07-01T12:00", zoneID: "Europe/Berlin") == utc("2026-07-01T10:00:00Z"))
        #expect(CivilDate.wallMs(localISO: "2026-10-25T04:00", zoneID: "Europe/Berlin") == utc("2026-10-25T03:00:00Z"))
        #expect(CivilDate.wallMs(localISO: "2026-12-02T10:00Z", zoneID: "Europe/Berlin") == utc("2026-12-02T10:00:00Z"))
        #expect(CivilDate.wallMs(localISO: "2026-12-02T10:00+05:30", zoneID: "UTC") == utc("2026-12-02T04:30:00Z"))
        #expect(CivilDate.wallMs(localISO: "2026-12-02T24:00", zoneID: "UTC") == nil)
    }
}
