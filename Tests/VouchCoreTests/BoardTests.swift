import Foundation
import Testing
import VouchCore

/// `boards/<name>/board.toml`: the shipped boards load, broken board files say exactly what and where,
/// and a board that is not there names the ones that are.
struct BoardTests {
    /// The repository's `boards/` folder.
    static let boardsDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("boards")
    /// Folders under boards/ that are not boards: `modbus/` holds Modbus device templates.
    static let notBoards: Set<String> = ["modbus"]

    static func boardFolders() throws -> [String] {
        let entries = try FileManager.default.contentsOfDirectory(atPath: boardsDirectory.path)
        return entries.filter { entry in
            var isDirectory: ObjCBool = false
            return !entry.hasPrefix(".") && !notBoards.contains(entry)
                && FileManager.default.fileExists(atPath: boardsDirectory.appendingPathComponent(entry).path, isDirectory: &isDirectory) && isDirectory.boolValue
        }.sorted()
    }

    static func shipped(_ name: String) throws(ConfigError) -> Board {
        try BoardLoader.load(name: name, directories: [boardsDirectory.path])
    }

    // MARK: the boards in the repository

    @Test func everyBoardFolderLoadsWithoutADiagnosticAndHasAReadme() throws {
        let folders = try Self.boardFolders()
        #expect(Set(["iot2050", "rpi4", "rpi5", "sim"]).isSubset(of: Set(folders)), "boards the issue asks for: \(folders)")
        for folder in folders {
            do {
                let board = try Self.shipped(folder)
                #expect(board.name == folder)
                #expect(!board.chips.isEmpty || !board.serialPorts.isEmpty)
            } catch {
                Issue.record("boards/\(folder)/board.toml:\n\(error.description)")
            }
            let readme = Self.boardsDirectory.appendingPathComponent(folder).appendingPathComponent("README.md")
            let text = (try? String(contentsOf: readme, encoding: .utf8)) ?? ""
            #expect(text.count > 500, "boards/\(folder)/README.md holds the wiring notes a technician needs")
        }
        // Every folder is a board (nothing forgot its board.toml) and modbus/ is not one.
        #expect(BoardLoader.availableBoards(in: [Self.boardsDirectory.path]) == folders)
    }

    @Test func theBoardsReadmeTablesEveryBoard() throws {
        let readme = try String(contentsOf: Self.boardsDirectory.appendingPathComponent("README.md"), encoding: .utf8)
        for folder in try Self.boardFolders() {
            #expect(readme.contains("[`\(folder)`](\(folder)/)"), "boards/README.md lists \(folder)")
        }
    }

    /// The format section of boards/README.md shows every key in one example: it must be a valid board.
    @Test func theFormatExampleInTheBoardsReadmeIsAValidBoard() throws {
        let readme = try String(contentsOf: Self.boardsDirectory.appendingPathComponent("README.md"), encoding: .utf8)
        let section = try #require(readme.range(of: "## Format of `board.toml`"))
        let open = try #require(readme.range(of: "```toml\n", range: section.upperBound..<readme.endIndex))
        let close = try #require(readme.range(of: "```", range: open.upperBound..<readme.endIndex))
        let example = String(readme[open.upperBound..<close.lowerBound])
        let board = try BoardLoader.parse(example, name: "example", file: "boards/README.md")
        #expect(board.lines.first?.otherNames == ["SDA1"] && board.serialPorts.first?.preferredPath == "/dev/serial0")
        for key in ["description", "label", "name", "chip", "offset", "header_pin", "direction", "bias", "notes", "other_names", "path", "preferred_path", "rs485"] {
            #expect(example.contains("\n\(key) = "), "the example shows \(key)")
        }
    }

    /// The layout the VM tests create with gpio-sim (and Sources/vouch-gpio-vmtest expects).
    @Test func simIsTheGpioSimLayoutOfTheVMTests() throws {
        let sim = try Self.shipped("sim")
        #expect(sim.chips.map(\.label) == ["vouch-sim", "vouch-sim-b"])
        let a = sim.lines(onChip: "vouch-sim")
        let expectedA = ["door", "motion", "run", "pulse", "tamper", "siren", "status_led"] + (7...15).map { "spare\($0)" }
        #expect(a.map(\.name) == expectedA)
        #expect(a.map(\.offset) == Array(0...15))
        #expect(a.filter { $0.direction == .output }.map(\.name) == ["siren", "status_led"])
        #expect(a.filter { $0.direction == .input }.count == 14)
        let b = sim.lines(onChip: "vouch-sim-b")
        #expect(b.map(\.name) == ["b0", "b1", "b2", "b3"] && b.map(\.offset) == [0, 1, 2, 3])
        #expect(sim.lines.allSatisfy { $0.biasSupported }, "gpio-sim implements pulls; the tests drive inputs with them")
        #expect(sim.serialPorts.isEmpty)
    }

    /// BCM numbers to 40-pin header pins: the Raspberry Pi pinout both boards share.
    static let raspberryPiHeader: [Int: Int] = [
        0: 27, 1: 28, 2: 3, 3: 5, 4: 7, 5: 29, 6: 31, 7: 26, 8: 24, 9: 21, 10: 19, 11: 23, 12: 32, 13: 33,
        14: 8, 15: 10, 16: 36, 17: 11, 18: 12, 19: 35, 20: 38, 21: 40, 22: 15, 23: 16, 24: 18, 25: 22, 26: 37, 27: 13,
    ]

    @Test(arguments: [("rpi4", "pinctrl-bcm2711"), ("rpi5", "pinctrl-rp1")])
    func raspberryPiHeaderLinesAreNamedByTheirGPIONumber(board name: String, chip: String) throws {
        let board = try Self.shipped(name)
        #expect(board.chips.map(\.label) == [chip])
        #expect(board.lines.count == 28)
        for line in board.lines {
            let expectedName = line.offset == 0 ? "ID_SDA" : line.offset == 1 ? "ID_SCL" : "GPIO\(line.offset)"
            #expect(line.name == expectedName)
            #expect(line.headerPin == Self.raspberryPiHeader[line.offset], "\(line.name)")
            #expect(line.biasSupported && line.direction == .both)
        }
        #expect(board.line(atHeaderPin: 11)?.name == "GPIO17")
        for powerOrGround in [1, 2, 4, 6, 9, 14, 17, 20, 25, 30, 34, 39] { #expect(board.line(atHeaderPin: powerOrGround) == nil) }
        #expect(board.line(named: "GPIO2")?.notes.contains("1.8 kΩ pull-up") == true)
    }

    @Test func aPi4LineIsFoundByItsMainlineKernelNameToo() throws {
        let pi4 = try Self.shipped("rpi4")
        #expect(pi4.line(named: "SDA1")?.name == "GPIO2")
        #expect(pi4.line(named: "TXD1")?.headerPin == 8)
        #expect(pi4.serialPorts.first?.pathForConfig == "/dev/serial0")
    }

    @Test func theIOT2050HeaderIsOnTwoSoCBanksWithoutSoftwareBias() throws {
        let iot = try Self.shipped("iot2050")
        #expect(Set(iot.chips.map(\.label)) == ["42110000.gpio", "600000.gpio"])
        #expect(iot.lines(onChip: "600000.gpio").map(\.name) == ["IO4", "IO5", "IO6", "IO7", "IO8", "IO9"])
        #expect(iot.line(named: "IO0").map { ($0.chip, $0.offset) } ?? ("", 0) == ("42110000.gpio", 29))
        #expect(iot.lines.allSatisfy { !$0.biasSupported && $0.headerPin == nil })
        #expect(iot.serialPorts.filter(\.rs485).map(\.path) == ["/dev/ttyS2", "/dev/ttyUSB0"])
    }

    // MARK: broken board files

    static let valid = """
        description = "a test board"

        [[chip]]
        label = "chip-a"
        description = "the test chip"

        [[line]]
        name = "door"
        chip = "chip-a"
        offset = 0
        header_pin = 3
        direction = "input"
        bias = true

        [[line]]
        name = "siren"
        chip = "chip-a"
        offset = 1
        header_pin = 5
        direction = "output"
        bias = false
        notes = "drives a relay module"

        [[serial]]
        path = "/dev/ttyAMA0"
        preferred_path = "/dev/serial0"
        description = "header UART"
        rs485 = false

        """

    static func validWith(_ old: String, _ new: String) -> String {
        precondition(valid.contains(old), "\(old) is not in the valid board")
        return valid.replacingOccurrences(of: old, with: new)
    }

    @Test func theValidTestBoardLoads() throws {
        let board = try BoardLoader.parse(Self.valid, name: "test", file: "board.toml")
        #expect(board.lines.map(\.name) == ["door", "siren"])
        #expect(board.line(named: "siren")?.canRead == false && board.line(named: "door")?.canDrive == false)
        #expect(board.serialPorts.first?.pathForConfig == "/dev/serial0")
    }

    /// Places in a broken board's text, by the text itself: `at(needle, occurrence, plus: columns)`.
    struct Place {
        let text: String
        func at(_ needle: String, _ occurrence: Int = 1, plus offset: Int = 0) -> SourcePosition {
            let p = position(of: needle, in: text, occurrence: occurrence)
            return SourcePosition(line: p.line, column: p.column + offset)
        }
    }

    struct BrokenBoard: Sendable, CustomTestStringConvertible {
        let what: String
        let text: String
        /// Every diagnostic expected, in order: where, and the exact message.
        let expected: @Sendable (Place) -> [(SourcePosition, String)]
        var testDescription: String { what }

        init(_ what: String, _ text: String, expected: @escaping @Sendable (Place) -> [(SourcePosition, String)]) {
            self.what = what
            self.text = text
            self.expected = expected
        }
    }

    static let unique = "Vouch finds lines by name, so a name may belong to one line only"

    static let brokenBoards: [BrokenBoard] = [
        BrokenBoard("duplicate line name", validWith(#"name = "siren""#, #"name = "door""#)) { p in
            [(p.at(#"name = "door""#, 2, plus: 7), #"line name "door" is already used at \#(p.at(#"name = "door""#, plus: 7)): \#(unique)"#)]
        },
        BrokenBoard("another name that is already a line's", validWith(#"notes = "drives a relay module""#, #"other_names = ["door"]"#)) { p in
            [(p.at(#"["door"]"#, plus: 1), #"line name "door" is already used at \#(p.at(#"name = "door""#, plus: 7)): \#(unique)"#)]
        },
        BrokenBoard("a line name already among another line's other names", validWith("bias = true", "bias = true\nother_names = [\"DOOR0\"]").replacingOccurrences(of: #"name = "siren""#, with: #"name = "DOOR0""#)) { p in
            [(p.at(#"name = "DOOR0""#, plus: 7), #"line name "DOOR0" is already used at \#(p.at(#"["DOOR0"]"#, plus: 1)) by line "door" (among its other_names): \#(unique)"#)]
        },
        BrokenBoard("unknown chip, close to a declared one", validWith(#"chip = "chip-a"\#noffset = 1"#, #"chip = "chip-b"\#noffset = 1"#)) { p in
            [(p.at(#"chip = "chip-b""#, plus: 7), #"line "siren" is on chip "chip-b", which no [[chip]] declares; did you mean "chip-a"?"#)]
        },
        BrokenBoard("unknown chip, nothing close", validWith(#"chip = "chip-a"\#noffset = 1"#, #"chip = "pinctrl-bcm2711"\#noffset = 1"#)) { p in
            [(p.at(#"chip = "pinctrl"#, plus: 7), #"line "siren" is on chip "pinctrl-bcm2711", which no [[chip]] declares (declared chips: chip-a)"#)]
        },
        BrokenBoard("duplicate chip label", validWith("[[line]]\nname = \"door\"", "[[chip]]\nlabel = \"chip-a\"\ndescription = \"again\"\n\n[[line]]\nname = \"door\"")) { p in
            [(p.at(#"label = "chip-a""#, 2, plus: 8), #"chip "chip-a" is declared twice (first at \#(p.at(#"label = "chip-a""#, plus: 8)))"#)]
        },
        BrokenBoard("duplicate header pin", validWith("header_pin = 5", "header_pin = 3")) { p in
            [(p.at("header_pin = 3", 2, plus: 13), #"header pin 3 is already line "door" (at \#(p.at("header_pin = 3", plus: 13)))"#)]
        },
        BrokenBoard("header pin beyond the 40-pin header", validWith("header_pin = 5", "header_pin = 41")) { p in
            [(p.at("header_pin = 41", plus: 13), #""header_pin" in [line] is 41, out of range (expected an integer from 1 to 40)"#)]
        },
        BrokenBoard("duplicate offset on one chip", validWith("offset = 1", "offset = 0")) { p in
            [(p.at("offset = 0", 2, plus: 9), #"offset 0 on chip "chip-a" is already line "door" (at \#(p.at("offset = 0", plus: 9)))"#)]
        },
        BrokenBoard("unknown key in [line], misspelt", validWith("bias = false", "bais = false")) { p in
            [(p.at("bais"), #"unknown key "bais" in [line]; did you mean "bias"?"#)]
        },
        BrokenBoard("unknown key at the top, misspelt", validWith("description = \"a test board\"", "descripton = \"a test board\"")) { p in
            [(p.at("descripton"), #"unknown key "descripton" in [board test]; did you mean "description"?"#)]
        },
        BrokenBoard("unknown key in [serial], nothing close", validWith("rs485 = false", "rs485 = false\nbaud_rate = 9600")) { p in
            [(p.at("baud_rate"), #"unknown key "baud_rate" in [serial] (known keys: path, preferred_path, description, rs485)"#)]
        },
        BrokenBoard("offset of the wrong type", validWith("offset = 1", #"offset = "1""#)) { p in
            [(p.at(#"offset = "1""#, plus: 9), #""offset" in [line] must be an integer from 0 to 65535, found a string"#)]
        },
        BrokenBoard("bias of the wrong type", validWith("bias = false", #"bias = "no""#)) { p in
            [(p.at(#"bias = "no""#, plus: 7), #""bias" in [line] must be true or false, found a string"#)]
        },
        BrokenBoard("bias left out", validWith("bias = false\n", "")) { p in
            [(p.at("[[line]]", 2), #"missing key "bias" in [line] (expected true or false: whether pull-up / pull-down can be set from software)"#)]
        },
        BrokenBoard("direction not one of the three", validWith(#"direction = "output""#, #"direction = "out""#)) { p in
            [(p.at(#"direction = "out""#, plus: 12), #""direction" in [line] is "out"; expected one of input, output, both"#)]
        },
        BrokenBoard("a line name longer than the kernel reports", validWith(#"name = "siren""#, #"name = "SIREN_RELAY_ON_THE_SECOND_FLOOR_X""#)) { p in
            [(p.at("name = \"SIREN", plus: 7),
              #""name" in [line] is "SIREN_RELAY_ON_THE_SECOND_FLOOR_X" (33 bytes); the kernel reports at most 31 bytes of a name, so none could ever match it"#)]
        },
        BrokenBoard("serial path not absolute", validWith(#"path = "/dev/ttyAMA0""#, #"path = "ttyAMA0""#)) { p in
            [(p.at(#"path = "ttyAMA0""#, plus: 7), #""path" in [serial] is "ttyAMA0"; expected an absolute device path such as "/dev/ttyAMA0""#)]
        },
        BrokenBoard("a board with nothing on it", "description = \"empty\"\n") { _ in
            [(SourcePosition(line: 1, column: 1), #"board "test" has no [[chip]] and no [[serial]]: there is nothing on it to wire"#)]
        },
        BrokenBoard("not TOML: a string without quotes", validWith(#"chip = "chip-a"\#noffset = 1"#, "chip = chip-a\noffset = 1")) { p in
            [(p.at("chip = chip-a", plus: 7), #"expected a value (string, number, boolean, array or table); strings need quotes, e.g. "chip-a""#)]
        },
        BrokenBoard(
            "every problem at once, in file order",
            validWith(#"chip = "chip-a"\#noffset = 1"#, #"chip = "chip-x"\#noffset = 1"#).replacingOccurrences(of: "header_pin = 5", with: "header_pin = 3")
                .replacingOccurrences(of: #"path = "/dev/ttyAMA0""#, with: #"path = "tty0""#)
        ) { p in
            [
                (p.at(#"chip = "chip-x""#, plus: 7), #"line "siren" is on chip "chip-x", which no [[chip]] declares; did you mean "chip-a"?"#),
                (p.at("header_pin = 3", 2, plus: 13), #"header pin 3 is already line "door" (at \#(p.at("header_pin = 3", plus: 13)))"#),
                (p.at(#"path = "tty0""#, plus: 7), #""path" in [serial] is "tty0"; expected an absolute device path such as "/dev/ttyAMA0""#),
            ]
        },
    ]

    @Test(arguments: brokenBoards)
    func aBrokenBoardFileSaysWhatAndWhere(_ broken: BrokenBoard) {
        let expected = broken.expected(Place(text: broken.text))
        do {
            let board = try BoardLoader.parse(broken.text, name: "test", file: "boards/test/board.toml")
            Issue.record("expected diagnostics, loaded \(board)")
        } catch {
            #expect(error.diagnostics.map(\.file).allSatisfy { $0 == "boards/test/board.toml" })
            #expect(error.diagnostics.map(\.position) == expected.map(\.0))
            #expect(error.diagnostics.map(\.message) == expected.map(\.1))
        }
    }

    // MARK: finding a board

    /// A boards directory holding `names` (minimal valid boards whose description is `<name> from <tag>`)
    /// and a `modbus/` folder of templates, which is not a board.
    static func boardsDirectory(_ names: [String], tag: String = "one") throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vouch-boards-\(UUID().uuidString)")
        for name in names {
            let folder = dir.appendingPathComponent(name)
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            try validWith("a test board", "\(name) from \(tag)").write(to: folder.appendingPathComponent("board.toml"), atomically: true, encoding: .utf8)
        }
        let templates = dir.appendingPathComponent("modbus")
        try FileManager.default.createDirectory(at: templates, withIntermediateDirectories: true)
        try "description = \"a meter\"\n".write(to: templates.appendingPathComponent("meter.toml"), atomically: true, encoding: .utf8)
        return dir.path
    }

    func notFound(_ name: String, in directories: [String], sourceLocation: SourceLocation = #_sourceLocation) -> ConfigDiagnostic? {
        do {
            let board = try BoardLoader.load(name: name, directories: directories)
            Issue.record("expected board \"\(name)\" not to be found, loaded \(board.file)", sourceLocation: sourceLocation)
            return nil
        } catch {
            #expect(error.diagnostics.count == 1, sourceLocation: sourceLocation)
            return error.diagnostics.first
        }
    }

    @Test func aMissingBoardNamesTheBoardsThereAndTheClosestOne() throws {
        let dir = try Self.boardsDirectory(["alpha", "beta"])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let d = notFound("alpah", in: [dir])
        #expect(d?.file == "\(dir)/alpah/board.toml")
        #expect(d?.position == SourcePosition(line: 1, column: 1))
        #expect(d?.message == #"board "alpah" not found: no alpah/board.toml in \#(dir); did you mean "alpha"? (available: alpha, beta)"#)
    }

    @Test func theModbusTemplatesFolderIsNotABoard() throws {
        let dir = try Self.boardsDirectory(["alpha", "beta"])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(BoardLoader.availableBoards(in: [dir]) == ["alpha", "beta"])
        #expect(notFound("modbus", in: [dir])?.message == #"board "modbus" not found: \#(dir)/modbus has no board.toml (available: alpha, beta)"#)
        #expect(notFound("modbus", in: [Self.boardsDirectory.path])?.message.contains("boards/modbus has no board.toml (available: iot2050, ") == true)
    }

    @Test func aDirectoryWithoutBoardsSaysSo() throws {
        let dir = try Self.boardsDirectory([])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(notFound("rpi4", in: [dir])?.message == #"board "rpi4" not found: no rpi4/board.toml in \#(dir), and no boards there at all (a board is a folder NAME holding board.toml)"#)
        #expect(notFound("rpi4", in: [])?.message == #"board "rpi4" not found: no board directories to look in"#)
    }

    @Test(arguments: ["../etc", "", ".hidden", "a/b"])
    func aBoardNameIsAFolderNameNotAPath(_ name: String) throws {
        let dir = try Self.boardsDirectory(["alpha"])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let d = notFound(name, in: [dir])
        #expect(d?.message == #"board name "\#(name)" must be a folder name without a path, e.g. "rpi4""#)
        #expect(d?.file == dir)
    }

    @Test func theFirstDirectoryHoldingTheBoardWinsAndAllAreListed() throws {
        let site = try Self.boardsDirectory(["alpha"], tag: "site")
        defer { try? FileManager.default.removeItem(atPath: site) }
        let packaged = try Self.boardsDirectory(["alpha", "beta"], tag: "package")
        defer { try? FileManager.default.removeItem(atPath: packaged) }
        #expect(try BoardLoader.load(name: "alpha", directories: [site, packaged]).description == "alpha from site")
        #expect(try BoardLoader.load(name: "beta", directories: [site, packaged]).file == "\(packaged)/beta/board.toml")
        #expect(notFound("gamma", in: [site, packaged])?.message == #"board "gamma" not found: no gamma/board.toml in \#(site), \#(packaged) (available: alpha, beta)"#)
    }

    @Test func aBrokenBoardFoundOnDiskIsReportedAgainstItsOwnFile() throws {
        let dir = try Self.boardsDirectory(["alpha"])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let file = "\(dir)/alpha/board.toml"
        try Self.validWith("offset = 1", "offset = 0").write(toFile: file, atomically: true, encoding: .utf8)
        do {
            _ = try BoardLoader.load(name: "alpha", directories: [dir])
            Issue.record("expected the duplicate offset to be reported")
        } catch {
            #expect(error.description.hasPrefix("\(file):"), "file:line:column, as editors link to: \(error.description)")
            #expect(error.diagnostics.map(\.message) == [#"offset 0 on chip "chip-a" is already line "door" (at 10:10)"#])
        }
    }
}
