import Testing
import VouchCore

/// `kind = "machine"`: one machine's run state from several run_state rules.
struct MachineConfigTests {
    static let sources = DetectConfigTests.site + """
        [[detect]]
        id = "m-power"
        kind = "run_state"
        channel = "m.power"
        running_at_or_above = 500
        stopped_below = 50

        [[detect]]
        id = "m-run"
        kind = "run_state"
        channel = "gpio.door"
        running_at_or_above = 500
        stopped_below = 100

        [[detect]]
        id = "door"
        kind = "contact"
        channel = "gpio.door"

        """

    @Test func aMachineTakesItsSourcesChannelsAndDefaults() throws {
        let text = Self.sources + "[[detect]]\nid = \"press\"\nkind = \"machine\"\nsources = [\"m-power\", \"m-run\"]\ncombine = \"all\"\n"
        let rule = try #require(try ConfigLoader.parse(text, file: "vouch.toml").detectRules.first { $0.id == "press" })
        #expect(rule.sources == ["m-power", "m-run"] && rule.channel == "m.power+gpio.door")
        #expect(rule.choices["combine"] == "all" && rule.durations["min_stop"] == .seconds(300) && rule.durations["min_run"] == .seconds(60))
        #expect(rule.severity == .alarm && rule.flags["alarm_on_idle"] == false)
    }

    @Test func aSourceMayBeDeclaredAfterTheMachine() throws {
        let machine = "[[detect]]\nid = \"press\"\nkind = \"machine\"\nsources = [\"m-power\", \"m-run\"]\n\n"
        let text = DetectConfigTests.site + machine + String(Self.sources.dropFirst(DetectConfigTests.site.count))
        #expect(try ConfigLoader.parse(text, file: "vouch.toml").detectRules.contains { $0.id == "press" && $0.channel == "m.power+gpio.door" })
    }

    @Test(arguments: [
        ("sources = [\"m-power\", \"m-rnu\"]\n", "sources = ", "source \"m-rnu\" of machine rule \"press\" is not a rule of this config; did you mean \"m-run\"?"),
        ("sources = [\"m-power\", \"door\"]\n", "sources = ", "source \"door\" of machine rule \"press\" is a contact rule; a machine combines run_state rules"),
        ("sources = [\"m-power\"]\n", "sources = ", "\"sources\" in [detect] names 1 rule(s); expected an array of 2 to 8 rule ids such as [\"press-power\", \"press-strokes\"]"),
        ("sources = [\"m-power\", \"m-power\"]\n", "sources = ", "\"m-power\" is named twice in \"sources\""),
        ("sources = \"m-power\"\n", "sources = ", "\"sources\" in [detect] must be an array of 2 to 8 rule ids such as [\"press-power\", \"press-strokes\"], found a string"),
        ("min_stop = \"5m\"\n", "[[detect]]", "missing key \"sources\" in [detect] (expected an array of 2 to 8 rule ids such as [\"press-power\", \"press-strokes\"])"),
        ("sources = [\"m-power\", \"m-run\"]\nchannel = \"m.power\"\n", "channel = ", "\"channel\" is not a parameter of kind machine: it combines the channels of its sources and keeps no evidence window of its own"),
        ("sources = [\"m-power\", \"m-run\"]\ncombine = \"most\"\n", "combine = ", "\"combine\" in [detect] is \"most\"; expected one of any, all"),
    ] as [(String, String, String)])
    func brokenMachinesAreReportedWhereTheyAreWrong(body: String, at needle: String, message: String) {
        let text = Self.sources + "[[detect]]\nid = \"press\"\nkind = \"machine\"\n" + body
        let d = configDiagnostics(text)
        #expect(d.map(\.message) == [message])
        // The machine is the last rule: its line is the needle's last occurrence.
        let before = text[..<(text.range(of: needle, options: .backwards)?.lowerBound ?? text.endIndex)]
        #expect(d.first?.position.line == before.filter { $0 == "\n" }.count + 1)
    }

    @Test func aSourceWithItsOwnErrorIsReportedThereOnly() {
        let text = Self.sources.replacingOccurrences(of: "stopped_below = 100", with: "stopped_below = 900")
            + "[[detect]]\nid = \"press\"\nkind = \"machine\"\nsources = [\"m-power\", \"m-run\"]\n"
        #expect(configDiagnostics(text).map(\.message) == ["\"stopped_below\" (900.0) is above \"running_at_or_above\" (500.0) in rule \"m-run\": a value could be stopped and running at once"])
    }
}
