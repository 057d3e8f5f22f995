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

/// `[gpio] board = "NAME"`: the lines a config names are checked against the board's file.
struct GPIOBoardConfigTests {
    static let boards = BoardTests.boardsDirectory.path

    static func config(board: String = "sim", boards: String = GPIOBoardConfigTests.boards, _ body: String) -> String {
        GPIOConfigTests.head + "[gpio]\nboard = \"\(board)\"\nboards = \"\(boards)\"\n\n" + body
    }

    @Test func aConfigOnTheSimBoardPassesAndKeepsTheBoard() throws {
        let text = Self.config("""
            [[gpio.input]]
            name = "door"
            line = "door"
            chip = "vouch-sim"
            bias = "pull-up"

            [[gpio.input]]
            name = "cycles"
            line = "b2"
            signal = "counter"

            [[gpio.output]]
            name = "status"
            line = "status_led"

            """)
        let config = try ConfigLoader.parse(text, file: "vouch.toml")
        #expect(config.gpio.board?.name == "sim")
        #expect(config.gpio.board?.file == "\(Self.boards)/sim/board.toml")
        #expect(config.gpio.inputs.map(\.line) == ["door", "b2"])
    }

    @Test func aNameFromAnotherKernelIsAccepted() throws {
        // Mainline kernels call the Raspberry Pi 4's GPIO2 "SDA1": the board lists it as another name.
        let text = Self.config(board: "rpi4", "[[gpio.input]]\nname = \"door\"\nline = \"SDA1\"\n")
        #expect(try ConfigLoader.parse(text, file: "vouch.toml").gpio.inputs.map(\.line) == ["SDA1"])
    }

    @Test(arguments: [
        // (entry, where the error points, message)
        ("[[gpio.input]]\nname = \"door\"\nline = \"dor\"\n", "line = ",
         "line \"dor\" is not on board sim (\(boards)/sim/board.toml); did you mean \"door\"?"),
        ("[[gpio.input]]\nname = \"door\"\nline = \"window_contact\"\n", "line = ",
         "line \"window_contact\" is not on board sim (\(boards)/sim/board.toml) (its lines: door, motion, run, pulse, tamper, siren, status_led, spare7, spare8, spare9, spare10, spare11, spare12, spare13, spare14, spare15, b0, b1, b2, b3)"),
        ("[[gpio.input]]\nname = \"alarm\"\nline = \"siren\"\n", "line = ",
         "line \"siren\" on board sim is an output only (board notes: Siren relay: the test reads it back from sim_gpio5/value.): it cannot be a [[gpio.input]]"),
        ("[[gpio.output]]\nname = \"lamp\"\nline = \"door\"\n", "line = ",
         "line \"door\" on board sim is an input only (board notes: Door contact. In the VM the test drives it by writing pull-up / pull-down to sim_gpio0/pull.): it cannot be a [[gpio.output]]"),
        ("[[gpio.input]]\nname = \"door\"\nline = \"door\"\nchip = \"vouch-sim-b\"\n", "line = ",
         "line \"door\" is on chip \"vouch-sim\" on board sim, not on \"vouch-sim-b\": set chip = \"vouch-sim\" or leave chip out"),
    ] as [(String, String, String)])
    func linesTheBoardDoesNotHaveOrCannotUseThatWay(entry: String, at needle: String, message: String) throws {
        let text = Self.config(entry)
        let d = configDiagnostics(text)
        #expect(d.map(\.message) == [message])
        #expect(d.first?.position == position(of: needle, in: text, plus: needle.count), "at the value")
    }

    @Test func aPullTheBoardCannotSetIsRefusedAtTheBiasKey() throws {
        let text = Self.config(board: "iot2050", "[[gpio.input]]\nname = \"door\"\nline = \"IO0\"\nbias = \"pull-up\"\n")
        let d = configDiagnostics(text)
        #expect(d.count == 1, "\(d)")
        #expect(d.first?.message.hasPrefix("board iot2050 cannot set the pull of line \"IO0\" from software") == true, "\(d)")
        #expect(d.first?.message.hasSuffix("fit a resistor and set bias = \"as-is\"") == true, "\(d)")
        #expect(d.first?.position == position(of: "bias = ", in: text, plus: 7))
        // Left as it is, the same line is fine.
        #expect(throws: Never.self) { try ConfigLoader.parse(text.replacingOccurrences(of: "bias = \"pull-up\"\n", with: ""), file: "vouch.toml") }
    }

    @Test func anUnknownBoardSaysWhichBoardsThereAre() throws {
        let text = Self.config(board: "rpi3", "[[gpio.input]]\nname = \"door\"\nline = \"door\"\n")
        let d = configDiagnostics(text)
        #expect(d.count == 1, "\(d)")
        #expect(d.first?.position == position(of: "board = ", in: text, plus: 8))
        #expect(d.first?.message == "board \"rpi3\" not found: no rpi3/board.toml in \(Self.boards); did you mean \"rpi4\"? (available: iot2050, rpi4, rpi5, sim)")
        let path = configDiagnostics(Self.config(board: "../sim", "[[gpio.input]]\nname = \"door\"\nline = \"door\"\n"))
        #expect(path.map(\.message) == ["board name \"../sim\" must be a folder name without a path, e.g. \"rpi4\""])
    }

    @Test func aBrokenBoardIsReportedInItsOwnFileAndBoardsIsRelativeToTheConfig() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vouch-board-config-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("site-boards/gw"), withIntermediateDirectories: true)
        let boardFile = dir.appendingPathComponent("site-boards/gw/board.toml")
        try "description = \"a gateway\"\n\n[[chip]]\nlabel = \"gpio-a\"\ndescription = \"bank A\"\n\n[[line]]\nname = \"in0\"\nchip = \"gpio-b\"\noffset = 0\ndirection = \"input\"\nbias = true\nnotes = \"\"\n"
            .write(to: boardFile, atomically: true, encoding: .utf8)
        let configFile = dir.appendingPathComponent("vouch.toml")
        let text = Self.config(board: "gw", boards: "site-boards", "[[gpio.input]]\nname = \"door\"\nline = \"in0\"\n")
        try text.write(to: configFile, atomically: true, encoding: .utf8)
        do {
            _ = try ConfigLoader.load(path: configFile.path)
            Issue.record("a broken board was accepted")
        } catch {
            let d = error.diagnostics
            #expect(d.first?.file == configFile.path && d.first?.message == "board \"gw\" (\(boardFile.path)) has errors, listed below", "\(d)")
            #expect(d.count >= 2 && d.dropFirst().allSatisfy { $0.file == boardFile.path }, "\(d)")
            #expect(d.contains { $0.message.contains("gpio-b") }, "the board's own problem (a line on an undeclared chip) is named: \(d)")
        }
        // Mended, the same relative `boards` finds it.
        try "description = \"a gateway\"\n\n[[chip]]\nlabel = \"gpio-a\"\ndescription = \"bank A\"\n\n[[line]]\nname = \"in0\"\nchip = \"gpio-a\"\noffset = 0\ndirection = \"input\"\nbias = true\nnotes = \"\"\n"
            .write(to: boardFile, atomically: true, encoding: .utf8)
        #expect(try ConfigLoader.load(path: configFile.path).gpio.board?.name == "gw")
    }
}
