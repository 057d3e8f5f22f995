import Foundation
import Testing
import VouchCore

/// The Modbus part of the config: serial lines, every register kind and type, templates.
struct ModbusConfigTests {
    static let head = """
        [device]
        id = "site-1"
        data_dir = "/var/lib/vouch"

        [bank]
        url = "http://bank.example:8080"

        [shift]
        timezone = "UTC"
        start = "06:00"
        end = "22:00"

        [evidence]

        """

    static func device(_ body: String, name: String = "m", url: String = "rtu:///dev/serial/by-id/usb-FTDI_FT232R-if00-port0") -> String {
        """
        [[modbus.device]]
        name = "\(name)"
        url = "\(url)"
        \(body)

        """
    }

    static let channel = """
        [[modbus.device.channel]]
        name = "power"
        register = "input"
        address = 12
        type = "f32"

        """

    func load(_ text: String, file: String = "vouch.toml") throws -> AgentConfig { try ConfigLoader.parse(text, file: file) }

    @Test func serialLineSettingsAreRead() throws {
        let text = Self.head + Self.device("baud_rate = 19200\nparity = \"even\"\nstop_bits = 2\nrs485 = true\nrts = \"up\"\nbyte_timeout = \"50ms\"\nunit_id = 7\n" + Self.channel)
        let d = try load(text).modbusDevices[0]
        #expect(d.endpoint == .rtu(path: "/dev/serial/by-id/usb-FTDI_FT232R-if00-port0"))
        #expect(d.serial == SerialSettings(baudRate: 19200, parity: .even, dataBits: 8, stopBits: 2, rs485: true, rts: .up))
        #expect(d.byteTimeout == .milliseconds(50))
        #expect(d.unitId == 7)
        #expect(d.serial?.summary == "19200 8E2 RS-485 RTS up")
    }

    @Test func serialDefaultsAre9600EightNoneOne() throws {
        let d = try load(Self.head + Self.device(Self.channel, url: "file:///dev/ttyUSB0")).modbusDevices[0]
        #expect(d.endpoint == .rtu(path: "/dev/ttyUSB0"), "Telegraf's file:// form is accepted")
        #expect(d.serial == SerialSettings())
        #expect(d.serial?.summary == "9600 8N1")
    }

    @Test func serialKeysOnATCPDeviceAreRefusedAtTheKey() throws {
        let text = Self.head + Self.device("baud_rate = 9600\n" + Self.channel, url: "tcp://10.0.0.5")
        let d = configDiagnostics(text)
        #expect(d.count == 1)
        #expect(d.first?.position == position(of: "baud_rate", in: text))
        #expect(d.first?.message.contains("serial devices") == true)
    }

    @Test func devicesOnOnePortMustAgreeOnTheLine() throws {
        let text = Self.head + Self.device("baud_rate = 9600\nunit_id = 1\n" + Self.channel, name: "a") + Self.device("baud_rate = 19200\nunit_id = 2\n" + Self.channel, name: "b")
        let d = configDiagnostics(text)
        #expect(d.count == 1)
        #expect(d.first?.message.contains("every device on one serial port must use the same line settings") == true)
        #expect(d.first?.message.contains("9600 8N1") == true && d.first?.message.contains("19200 8N1") == true)
    }

    @Test func twoDevicesWithOneUnitIdOnABusAreRefused() throws {
        let text = Self.head + Self.device("unit_id = 3\n" + Self.channel, name: "a") + Self.device("unit_id = 3\n" + Self.channel, name: "b")
        let d = configDiagnostics(text)
        #expect(d.map(\.message) == ["devices \"a\" and \"b\" both use unit id 3 on rtu:///dev/serial/by-id/usb-FTDI_FT232R-if00-port0 (first at \(position(of: "[[modbus.device]]", in: text)))"])
        // The same id on two different lines is fine.
        let other = Self.head + Self.device("unit_id = 3\n" + Self.channel, name: "a") + Self.device("unit_id = 3\n" + Self.channel, name: "b", url: "rtu:///dev/ttyUSB1")
        #expect(try load(other).modbusDevices.count == 2)
    }

    @Test(arguments: [0, 248, 255])
    func serialUnitIdsAreOneTo247(_ unit: Int) throws {
        let text = Self.head + Self.device("unit_id = \(unit)\n" + Self.channel)
        let d = configDiagnostics(text)
        #expect(d.count == 1)
        #expect(d.first?.position == position(of: "unit_id = \(unit)", in: text, plus: 10))
        #expect(d.first?.message.contains("1–247") == true)
    }

    /// Channel shapes that make no sense are refused at the key that makes them wrong.
    @Test(arguments: [
        ("register = \"coil\"\naddress = 1\ntype = \"f32\"", "type = \"f32\"", 7, "a coil is a single bit"),
        ("register = \"holding\"\naddress = 1\ntype = \"bool\"", "type = \"bool\"", 7, "needs \"bit\""),
        ("register = \"holding\"\naddress = 1\ntype = \"u16\"\nbit = 3", "bit = 3", 6, "applies only to type \"bool\""),
        ("register = \"holding\"\naddress = 1\ntype = \"bool\"\nbit = 16", "bit = 16", 6, "out of range"),
        ("register = \"holding\"\naddress = 1\ntype = \"string\"", "type = \"string\"", 7, "needs \"length\""),
        ("register = \"holding\"\naddress = 1\ntype = \"u16\"\nlength = 4", "length = 4", 9, "applies only to type \"string\""),
        ("register = \"holding\"\naddress = 1\ntype = \"string\"\nlength = 4\nbyte_order = \"CDAB\"", "byte_order = \"CDAB\"", 13, "does not apply to a string"),
        ("register = \"discrete\"\naddress = 1\nscale = 2.0", "scale = 2.0", 8, "applies to numbers"),
        ("register = \"holding\"\naddress = 65533\ntype = \"u64\"", "address = 65533", 10, "runs past register 65535"),
        ("register = \"holding\"\naddress = 1\ntype = \"int128\"", "type = \"int128\"", 7, "bool, uint16, int16, uint32, int32, uint64, int64, float32, float64, string"),
    ])
    func badChannelShapes(body: String, at needle: String, offset: Int, message: String) throws {
        let text = Self.head + Self.device("[[modbus.device.channel]]\nname = \"x\"\n" + body)
        let d = configDiagnostics(text)
        #expect(d.count == 1, "\(d)")
        #expect(d.first?.position == position(of: needle, in: text, plus: offset))
        #expect(d.first?.message.contains(message) == true, "\(d.first?.message ?? "")")
    }

    // Found by the README's own example: a device-wide CDAB made its string channel an error.
    @Test func aDeviceWideWordOrderDoesNotApplyToText() throws {
        let text = Self.head + Self.device("byte_order = \"CDAB\"\n[[modbus.device.channel]]\nname = \"fw\"\nregister = \"holding\"\naddress = 0\ntype = \"string\"\nlength = 4\n" + Self.channel)
        let d = try load(text).modbusDevices[0]
        #expect(d.channels.map(\.byteOrder) == [.abcd, .cdab])
    }

    @Test func aChannelLongerThanTheDevicesLimitIsRefused() throws {
        let text = Self.head + Self.device("max_registers = 4\n[[modbus.device.channel]]\nname = \"serial\"\nregister = \"holding\"\naddress = 0\ntype = \"string\"\nlength = 8")
        let d = configDiagnostics(text)
        #expect(d.map(\.message) == ["channel \"m.serial\" needs 8 registers, more than this device's max_registers 4"])
        #expect(d.first?.position == position(of: "\"serial\"", in: text))
    }

    @Test func everyTypeAndKindIsAccepted() throws {
        let channels = [
            ("c", "coil", "", 0), ("d", "discrete", "", 0), ("b", "holding", "type = \"bool\"\nbit = 15", 1), ("u16", "holding", "type = \"UINT16\"", 2),
            ("i64", "holding", "type = \"i64\"", 3), ("f64", "input", "type = \"FLOAT64\"\nbyte_order = \"dcba\"", 0), ("s", "input", "type = \"string\"\nlength = 8", 4),
        ].map { "[[modbus.device.channel]]\nname = \"\($0.0)\"\nregister = \"\($0.1)\"\naddress = \($0.3)\n\($0.2)\n" }.joined()
        let d = try load(Self.head + Self.device(channels)).modbusDevices[0]
        #expect(d.channels.map(\.dataType) == [.bool, .bool, .bool, .uint16, .int64, .float64, .string])
        #expect(d.channels.map(\.registerCount) == [1, 1, 1, 1, 4, 4, 8])
        #expect(d.channels[5].byteOrder == .dcba)
        #expect(d.channels[2].bit == 15)
    }

    // MARK: templates

    func templateDirectory(_ files: [String: String]) throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vouch-templates-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        for (name, text) in files { try text.write(to: dir.appendingPathComponent(name), atomically: true, encoding: .utf8) }
        return dir
    }

    static let meterTemplate = """
        description = "a test meter"
        byte_order = "CDAB"
        max_gap = 6

        [[channel]]
        name = "voltage"
        register = "input"
        address = 0
        type = "float32"
        unit = "V"
        decimals = 1

        [[channel]]
        name = "energy"
        register = "input"
        address = 100
        type = "uint32"
        unit = "Wh"

        """

    @Test func aTemplateGivesTheDeviceItsChannelsAndTheConfigCanOverrideOne() throws {
        let dir = try templateDirectory(["meter.toml": Self.meterTemplate])
        let text = Self.head + "[modbus]\ntemplates = \"\(dir.path)\"\n\n" + Self.device("""
            template = "meter"
            [[modbus.device.channel]]
            name = "energy"
            register = "input"
            address = 100
            type = "uint32"
            scale = 0.001
            decimals = 3
            unit = "kWh"
            [[modbus.device.channel]]
            name = "extra"
            register = "holding"
            address = 7
            type = "i16"
            """)
        let config = try load(text)
        let d = config.modbusDevices[0]
        #expect(d.template == "meter")
        #expect(d.maxGap == 6)
        #expect(d.channels.map(\.id) == ["m.voltage", "m.energy", "m.extra"])
        #expect(d.channels[0].byteOrder == .cdab, "the template's default order")
        #expect(d.channels[1].unit == "kWh" && d.channels[1].decimals == 3, "the config's channel replaced the template's")
        #expect(d.channels[2].byteOrder == .cdab, "a config channel on a templated device takes the template's order unless it says")
        // The template is part of the config: its bytes are in the recorded hash, computed here independently.
        let fileHash = try systemSHA256(text)
        let templateHash = try systemSHA256(Self.meterTemplate)
        #expect(config.sourceHash == (try systemSHA256("\(fileHash)\nmeter \(templateHash)\n")))
    }

    @Test func aRelativeTemplateDirectoryIsRelativeToTheConfigFile() throws {
        let dir = try templateDirectory(["meter.toml": Self.meterTemplate])
        let text = Self.head + "[modbus]\ntemplates = \"templates/../\(dir.lastPathComponent)\"\n\n" + Self.device("template = \"meter\"")
        let config = try load(text, file: dir.deletingLastPathComponent().appendingPathComponent("vouch.toml").path)
        #expect(config.channels.map(\.id) == ["m.voltage", "m.energy"])
    }

    @Test func aMissingTemplateListsWhatThereIs() throws {
        let dir = try templateDirectory(["meter.toml": Self.meterTemplate, "other.toml": Self.meterTemplate])
        let text = Self.head + "[modbus]\ntemplates = \"\(dir.path)\"\n\n" + Self.device("template = \"meterr\"")
        let d = configDiagnostics(text)
        #expect(d.count == 1)
        #expect(d.first?.position == position(of: "\"meterr\"", in: text))
        #expect(d.first?.message.contains("did you mean \"meter\"?") == true)
        let far = Self.head + "[modbus]\ntemplates = \"\(dir.path)\"\n\n" + Self.device("template = \"sdm630\"")
        #expect(configDiagnostics(far).first?.message.contains("(available: meter, other)") == true)
    }

    @Test func errorsInsideATemplateArePlacedInTheTemplateFile() throws {
        let broken = Self.meterTemplate.replacingOccurrences(of: "type = \"uint32\"", with: "type = \"uint33\"")
        let dir = try templateDirectory(["meter.toml": broken])
        let text = Self.head + "[modbus]\ntemplates = \"\(dir.path)\"\n\n" + Self.device("template = \"meter\"")
        let d = configDiagnostics(text)
        #expect(d.count == 2, "\(d)")
        #expect(d.first?.file == "vouch.toml")
        #expect(d.first?.message.contains("has errors, listed below") == true)
        #expect(d.last?.file == dir.appendingPathComponent("meter.toml").path)
        #expect(d.last?.position == position(of: "\"uint33\"", in: broken))
    }

    /// Every template shipped in boards/modbus loads, and every channel in it is readable in one plan.
    @Test func theShippedTemplatesLoad() throws {
        let boards = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("boards/modbus")
        let names = try FileManager.default.contentsOfDirectory(atPath: boards.path).filter { $0.hasSuffix(".toml") }.map { String($0.dropLast(5)) }.sorted()
        #expect(names.count >= 3)
        for (i, name) in names.enumerated() {
            let text = Self.head + "[modbus]\ntemplates = \"\(boards.path)\"\n\n" + Self.device("template = \"\(name)\"\nunit_id = \(i + 1)")
            let config = try load(text)
            #expect(config.channels.count >= 3, "\(name)")
        }
    }
}
