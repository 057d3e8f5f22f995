import Foundation
import Testing
@testable import VouchCore

/// `vouch config show --effective`: the file plus every default the loader filled in.
struct EffectiveConfigTests {
    /// Valid configs that between them use every table, every detector kind, GPIO, serial lines,
    /// a template, escapes and inline tables.
    static let configs: [(name: String, text: String)] = [
        ("the README example", ExampleConfig.text),
        ("serial line, bool and string channels", ModbusConfigTests.head + ModbusConfigTests.device("""
            baud_rate = 19200
            parity = "even"
            byte_order = "CDAB"

            [[modbus.device.channel]]
            name = "door"
            register = "discrete"
            address = 3

            [[modbus.device.channel]]
            name = "firmware"
            register = "holding"
            address = 100
            type = "string"
            length = 4

            [[modbus.device.channel]]
            name = "flow"
            register = "holding"
            address = 10
            type = "u32"
            unit = "m³/h \\"net\\" \\\\ raw"
            scale = 0.001
            """)),
        ("every detector kind", DetectConfigTests.site + """
            [calendar]
            holidays = ["2026-12-25"]
            business_hours = { start = "08:00", end = "17:00" }

            [[calendar.maintenance]]
            start = "2026-12-02T10:00"
            end = "2026-12-02T12:00"
            reason = "press service"

            [[detect]]
            id = "press-stop"
            kind = "run_state"
            channel = "m.power"
            running_at_or_above = 500
            stopped_below = 50

            [[detect]]
            id = "stock"
            kind = "weight_drop"
            channel = "m.weight"
            tolerance_percent = 5

            [[detect]]
            id = "door-at-night"
            kind = "contact"
            channel = "gpio.door"

            [[detect]]
            id = "stuck"
            kind = "flatline"
            channel = "m.power"
            duration = "2h"

            [[detect]]
            id = "silent"
            kind = "comm_loss"
            channel = "m.power"
            duration = "5m"

            [[detect]]
            id = "usual"
            kind = "baseline"
            channel = "m.power"

            [[detect]]
            id = "hot"
            kind = "threshold"
            channel = "m.power"
            above = 9000

            [[detect]]
            id = "door-run"
            kind = "run_state"
            channel = "gpio.door"
            running_at_or_above = 1
            stopped_below = 1

            [[detect]]
            id = "press"
            kind = "machine"
            sources = ["press-stop", "door-run"]

            [release]
            max_duration = "36h"

            [metrics]
            listen = "127.0.0.1:9464"

            """),
        ("GPIO inputs and outputs", GPIOConfigTests.head + """
            [[gpio.input]]
            name = "door"
            line = "door"
            bias = "pull-up"
            active_low = true

            [[gpio.input]]
            name = "cycles"
            line = "GPIO17"
            signal = "counter"

            [[gpio.output]]
            name = "status"
            line = "status_led"

            """),
    ]

    /// Keys that may be missing from an effective config: optional with no default value, or sub-tables.
    static let keysWithoutDefault: Set<String> = [
        // Optional files and pins: unset means "none".
        "bank.ca_file", "bank.client_cert", "bank.client_key", "bank.receipt_key", "gpio.board", "gpio.boards", "gpio.input.chip", "gpio.output.chip",
        // Unset means "no override": the template's or ABCD order, libmodbus' byte timeout, no template, the
        // template search path (/etc/vouch/modbus, then /usr/share/vouch/modbus).
        "modbus.device.byte_order", "modbus.device.byte_timeout", "modbus.device.template", "modbus.templates",
        // Only for some types: a bit of a register, a string's length; text and bits take no scale.
        "modbus.device.channel.bit", "modbus.device.channel.length", "modbus.device.channel.scale", "modbus.device.channel.offset",
        "modbus.device.channel.decimals",
        // One of several ways to say a limit (above or below; tolerance, cumulative or its percentage), a machine's
        // channels come from its sources, and the evidence window's default depends on the kind.
        "detect.below", "detect.tolerance", "detect.cumulative", "detect.cumulative_percent", "detect.channel", "detect.window_before", "detect.window_after",
        // Tables and lists of tables a site may not have.
        "top level.calendar", "top level.detect", "top level.gpio", "top level.metrics", "top level.modbus", "top level.stoppage", "gpio.output",
    ]

    static func withoutSource(_ config: AgentConfig) -> AgentConfig {
        var c = config
        c.sourceHash = ""
        return c
    }

    static func defaultLines(_ text: String) -> [Substring] {
        text.split(separator: "\n").filter { $0.hasSuffix("  # default") }
    }

    @Test(arguments: configs.map(\.name))
    func theEffectiveConfigLoadsToTheSameConfigAndLeavesNothingToFill(name: String) throws {
        let text = try #require(Self.configs.first { $0.name == name }?.text)
        let original = try ConfigLoader.parse(text, file: "vouch.toml")
        let effective = try ConfigLoader.effective(text, file: "vouch.toml")
        #expect(!Self.defaultLines(effective).isEmpty, "each of these leaves something to its default")
        let reloaded: AgentConfig
        do { reloaded = try ConfigLoader.parse(effective, file: "vouch.toml") } catch {
            Issue.record("the effective config does not load: \(error)\n\(effective)")
            return
        }
        #expect(Self.withoutSource(reloaded) == Self.withoutSource(original), "\(effective)")
        // Complete: shown again, the effective config has nothing left for the loader to fill in.
        let twice = try ConfigLoader.effective(effective, file: "vouch.toml")
        #expect(Self.defaultLines(twice) == [], "defaults the first pass did not show")
        // Complete against the schema: a key left out of the effective config must be one that has no default.
        let unset = try ConfigLoader.decodeRecordingDefaults(effective, file: "vouch.toml", sourceHash: nil).filledIn.unsetKeys
        #expect(unset.subtracting(Self.keysWithoutDefault).sorted() == [], "keys with a default the effective config does not show")
    }

    @Test func defaultsAreMarkedAndWhatTheFileSaysIsNot() throws {
        let effective = try ConfigLoader.effective(ExampleConfig.text, file: "vouch.toml")
        let lines = effective.split(separator: "\n").map(String.init)
        func section(_ header: String) -> [String] {
            guard let start = lines.firstIndex(of: header) else {
                Issue.record("no \(header) in\n\(effective)")
                return []
            }
            return Array(lines[(start + 1)...].prefix { !$0.hasPrefix("[") })
        }
        #expect(section("[device]").contains(#"key_file = "/var/lib/vouch/device.key"  # default"#))
        #expect(section("[bank]").contains(#"timeout = "10s"  # default"#))
        #expect(section("[evidence]").contains(#"summary_interval = "60s""#), "the file's own text, unmarked")
        #expect(section("[evidence]").contains(#"disk_budget = "1GB"  # default"#))
        #expect(section("[[modbus.device.channel]]").contains(#"byte_order = "ABCD"  # default"#))
        #expect(section("[[stoppage]]").contains(#"severity = "high"  # default"#))
        // A table the file leaves out appears whole, every key marked.
        #expect(section("[release]") == [#"max_duration = "12h"  # default"#])
        #expect(lines.contains("# [metrics] is not set: no metrics are served."))
    }

    @Test func aDevicesTemplateChannelsAreListedAboveIt() throws {
        let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let templates = repository.appendingPathComponent("boards/modbus").path
        let text = ModbusConfigTests.head.replacingOccurrences(of: "[evidence]", with: "[modbus]\ntemplates = \"\(templates)\"\n\n[evidence]")
            + ModbusConfigTests.device("unit_id = 3\ntemplate = \"eastron-sdm120\"")
        let effective = try ConfigLoader.effective(text, file: "vouch.toml")
        #expect(effective.contains("# template \"eastron-sdm120\" (\(templates)/eastron-sdm120.toml) adds 14 channels: voltage, current, active_power"))
        #expect(effective.contains("max_gap = 10  # default"), "the template's max_gap, not the protocol's")
        #expect(Self.withoutSource(try ConfigLoader.parse(effective, file: "vouch.toml")) == Self.withoutSource(try ConfigLoader.parse(text, file: "vouch.toml")))
    }

    @Test func aConfigWithErrorsGivesTheSameDiagnosticsAsCheck() throws {
        let broken = ExampleConfig.replacing("address = 52", with: "adress = 52")
        let fromCheck = configDiagnostics(broken)
        #expect(!fromCheck.isEmpty)
        do {
            _ = try ConfigLoader.effective(broken, file: "vouch.toml")
            Issue.record("an invalid config was shown")
        } catch {
            #expect(error.diagnostics == fromCheck)
        }
    }

    @Test(arguments: [
        (Duration.milliseconds(500), "500ms"), (.seconds(15), "15s"), (.seconds(90), "90s"), (.seconds(300), "5m"), (.seconds(7_200), "2h"),
        (.seconds(30 * 86_400), "30d"), (.milliseconds(1_500), "1500ms"), (.zero, "0ms"),
    ])
    func durationsAreWrittenInTheLargestExactUnit(duration: Duration, text: String) {
        #expect(FilledIn.durationText(duration) == text)
        #expect(ConfigDecoder.parseDuration(text) == duration)
    }

    @Test(arguments: [(Int64(1_000_000_000), "1GB"), (64_000_000, "64MB"), (512 << 20, "512MiB"), (3_000, "3kB"), (1_000_001, "1000001B")])
    func sizesAreWrittenInTheLargestExactUnit(bytes: Int64, text: String) {
        #expect(FilledIn.byteSizeText(bytes) == text)
        #expect(ConfigDecoder.parseByteSize(text) == bytes)
    }
}
