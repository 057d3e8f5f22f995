import Foundation
import Testing
import VouchCore

/// `[[gpio.input]]` and `[[gpio.output]]`.
struct GPIOConfigTests {
    static let head = ModbusConfigTests.head

    @Test func inputsAndOutputsAreReadWithTheirDefaults() throws {
        let text = Self.head + """
            [[gpio.input]]
            name = "door"
            line = "door"
            bias = "pull-up"
            active_low = true
            debounce = "20ms"

            [[gpio.input]]
            name = "press_cycles"
            line = "GPIO17"
            chip = "pinctrl-bcm2711"
            signal = "counter"
            sample_interval = "10s"

            [[gpio.output]]
            name = "status"
            line = "status_led"

            """
        let config = try ConfigLoader.parse(text, file: "vouch.toml")
        #expect(config.modbusDevices.isEmpty, "GPIO alone is a valid site")
        #expect(config.gpio.inputs == [
            GPIOInputChannelSettings(id: "gpio.door", line: "door", bias: .pullUp, activeLow: true, debounce: .milliseconds(20)),
            GPIOInputChannelSettings(id: "gpio.press_cycles", line: "GPIO17", chip: "pinctrl-bcm2711", signal: .counter, sampleInterval: .seconds(10)),
        ])
        #expect(config.gpio.outputs == [GPIOOutputSettings(name: "status", line: "status_led")])
        #expect(config.allChannels.map(\.id) == ["gpio.door", "gpio.press_cycles"])
    }

    @Test func aStoppageRuleMayWatchARunSignal() throws {
        let text = Self.head + """
            [[gpio.input]]
            name = "run"
            line = "run"
            signal = "duty"

            [[stoppage]]
            id = "press-idle"
            channel = "gpio.run"
            below = 0.2
            for = "5m"

            """
        let config = try ConfigLoader.parse(text, file: "vouch.toml")
        #expect(config.stoppageRules.map(\.channel) == ["gpio.run"])
        #expect(config.allChannels.first?.scaleExponent == -3, "duty is stored in thousandths")
    }

    @Test(arguments: [
        ("signal = \"pwm\"", "signal = ", "expected one of level, counter, duty"),
        ("bias = \"up\"", "bias = ", "expected one of as-is, disabled, pull-up, pull-down"),
        ("debounce = \"20\"", "debounce = ", "not a duration"),
        ("debounce = \"11s\"", "debounce = ", "longer than 10s"),
        ("sample_interval = \"10ms\"", "sample_interval = ", "shorter than the minimum"),
        ("pull = \"up\"", "pull", "unknown key \"pull\" in [gpio.input]"),
    ])
    func badInputs(line: String, at needle: String, message: String) throws {
        let text = Self.head + "[[gpio.input]]\nname = \"door\"\nline = \"door\"\n\(line)\n"
        let d = configDiagnostics(text)
        #expect(d.count == 1, "\(d)")
        #expect(d.first?.message.contains(message) == true, "\(d.first?.message ?? "")")
        let p = position(of: needle, in: text)
        #expect(d.first?.position.line == p.line)
    }

    @Test func oneLineOneUse() throws {
        let text = Self.head + "[[gpio.input]]\nname = \"a\"\nline = \"door\"\n\n[[gpio.output]]\nname = \"b\"\nline = \"door\"\n"
        let d = configDiagnostics(text)
        #expect(d.map(\.message) == ["line \"door\" is used twice (first at \(position(of: "\"door\"", in: text))): one line, one use"])
    }

    @Test func nothingToReadIsAnError() throws {
        let d = configDiagnostics(Self.head)
        #expect(d.map(\.message) == ["no [[modbus.device]] and no [[gpio.input]] configured: the agent would have nothing to read"])
    }
}
