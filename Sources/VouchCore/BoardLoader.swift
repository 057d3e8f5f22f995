import Foundation

/// Finds and reads `<dir>/<name>/board.toml`, reporting every problem in the file at once with its
/// `file:line:column`, in the same words and through the same helpers as ``ConfigLoader``.
public enum BoardLoader {
    public static let fileName = "board.toml"
    /// Where boards are looked up when no directory is given: the site's own first, then the packaged ones.
    public static let defaultDirectories = ["/etc/vouch/boards", "/usr/share/vouch/boards"]

    /// The board `name` from the first directory that has `name/board.toml`. When none has, the one
    /// diagnostic names the directories searched and the boards they do hold.
    public static func load(name: String, directories: [String] = defaultDirectories) throws(ConfigError) -> Board {
        let fm = FileManager.default
        let start = SourcePosition(line: 1, column: 1)
        func failure(_ file: String, _ message: String) -> ConfigError {
            ConfigError(diagnostics: [ConfigDiagnostic(file: file, position: start, message: message)])
        }
        guard isFolderName(name) else {
            throw failure(directories.first ?? ".", "board name \"\(name)\" must be a folder name without a path, e.g. \"rpi4\"")
        }
        let candidates = directories.map { "\($0)/\(name)/\(fileName)" }
        guard let path = candidates.first(where: { fm.fileExists(atPath: $0) }) else {
            // Where the file would be expected, so the message points at where to create it.
            throw failure(candidates.first ?? "\(name)/\(fileName)", notFound(name, directories: directories))
        }
        guard let data = fm.contents(atPath: path) else { throw failure(path, "board file cannot be read (check its permissions)") }
        guard let text = String(data: data, encoding: .utf8) else { throw failure(path, "board file is not UTF-8 text") }
        return try parse(text, name: name, file: path)
    }

    /// Checks a board file's text; `name` is the board's folder name, `file` where the text came from.
    public static func parse(_ text: String, name: String, file: String) throws(ConfigError) -> Board {
        let table: TOMLTable
        do { table = try TOML.parse(text) } catch {
            throw ConfigError(diagnostics: [ConfigDiagnostic(file: file, position: error.position, message: error.message)])
        }
        var decoder = ConfigDecoder(file: file)
        let board = decoder.decodeBoard(table, name: name)
        if let board, decoder.diagnostics.isEmpty { return board }
        throw ConfigError(diagnostics: decoder.diagnostics.sorted { $0.position < $1.position })
    }

    /// Names of the boards in `directories` (folders holding a board.toml), sorted, each once. Folders
    /// without a board.toml, such as `modbus/` with its device templates, are not boards.
    public static func availableBoards(in directories: [String]) -> [String] {
        let fm = FileManager.default
        var names = Set<String>()
        for directory in directories {
            for entry in (try? fm.contentsOfDirectory(atPath: directory)) ?? [] where fm.fileExists(atPath: "\(directory)/\(entry)/\(fileName)") {
                names.insert(entry)
            }
        }
        return names.sorted()
    }

    static func isFolderName(_ name: String) -> Bool {
        !name.isEmpty && !name.hasPrefix(".") && name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == ".") }
    }

    static func notFound(_ name: String, directories: [String]) -> String {
        guard !directories.isEmpty else { return "board \"\(name)\" not found: no board directories to look in" }
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        let folderWithoutFile = directories.map { "\($0)/\(name)" }.first { fm.fileExists(atPath: $0, isDirectory: &isDirectory) && isDirectory.boolValue }
        let why = folderWithoutFile.map { "\($0) has no \(fileName)" } ?? "no \(name)/\(fileName) in \(directories.joined(separator: ", "))"
        let available = availableBoards(in: directories)
        guard !available.isEmpty else {
            return "board \"\(name)\" not found: \(why), and no boards there at all (a board is a folder NAME holding \(fileName))"
        }
        let guess = ConfigDecoder.closest(name, in: available).map { "; did you mean \"\($0)\"?" } ?? ""
        return "board \"\(name)\" not found: \(why)\(guess) (available: \(available.joined(separator: ", ")))"
    }
}

extension ConfigDecoder {
    static let boardKeys = ["description", "chip", "line", "serial"]
    static let boardChipKeys = ["label", "description"]
    static let boardLineKeys = ["name", "chip", "offset", "header_pin", "direction", "bias", "notes", "other_names"]
    static let boardSerialKeys = ["path", "preferred_path", "description", "rs485"]
    /// The GPIO uAPI hands out names and labels in 32-byte fields ending in NUL (GPIO_MAX_NAME_SIZE):
    /// a longer name in a board file could never match what the kernel reports.
    static let kernelNameLimit = 31

    /// The whole board file; nil when a required part is missing (the caller also refuses any diagnostic).
    mutating func decodeBoard(_ root: TOMLTable, name: String) -> Board? {
        let top = Section(table: root, name: "board \(name)", position: SourcePosition(line: 1, column: 1), known: Self.boardKeys)
        checkUnknown(top)
        let description = string(top, "description", expected: "a one-line description of the board")
        let chips = decodeBoardChips(root)
        let lines = decodeBoardLines(root, chips: chips)
        let serialPorts = decodeBoardSerialPorts(root)
        if root["chip"] == nil && root["serial"] == nil {
            report(top.position, "board \"\(name)\" has no [[chip]] and no [[serial]]: there is nothing on it to wire")
        }
        guard let description else { return nil }
        return Board(
            name: name, description: description, chips: chips.map(\.chip), lines: lines, serialPorts: serialPorts, file: file)
    }

    /// `[[chip]]`: labels unique, so every line's `chip` names exactly one.
    mutating func decodeBoardChips(_ root: TOMLTable) -> [(chip: Board.Chip, position: SourcePosition)] {
        var chips: [(chip: Board.Chip, position: SourcePosition)] = []
        for s in tableArray(root, "chip", name: "chip", known: Self.boardChipKeys) {
            let label = kernelName(s, "label", expected: "the chip's label as `gpiodetect` shows it in brackets, e.g. \"pinctrl-bcm2711\"", noun: "label")
            let description = string(s, "description", expected: "what the chip is and what on the board it serves")
            guard let label else { continue }
            let at = s.table["label"]?.position ?? s.position
            if let first = chips.first(where: { $0.chip.label == label }) {
                report(at, "chip \"\(label)\" is declared twice (first at \(first.position))")
                continue
            }
            guard let description else { continue }
            chips.append((Board.Chip(label: label, description: description), at))
        }
        return chips
    }

    /// `[[line]]`: names (and other names) unique on the board, each on a declared chip, offsets unique
    /// per chip, header pins unique.
    mutating func decodeBoardLines(_ root: TOMLTable, chips: [(chip: Board.Chip, position: SourcePosition)]) -> [Board.Line] {
        let labels = chips.map(\.chip.label)
        var lines: [Board.Line] = []
        // Every name a line answers to, with the line that owns it and where it was first given.
        var names: [String: (owner: String, position: SourcePosition)] = [:]
        var offsets: [String: [Int: (owner: String, position: SourcePosition)]] = [:]
        var headerPins: [Int: (owner: String, position: SourcePosition)] = [:]

        for s in tableArray(root, "line", name: "line", known: Self.boardLineKeys) {
            let name = kernelName(s, "name", expected: "the line's name exactly as `gpioinfo` shows it, e.g. \"GPIO17\"", noun: "name")
            let chip = string(s, "chip", expected: "the label of a chip declared with [[chip]]")
            let offset = integer(s, "offset", range: 0...65535)
            let headerPin = s.table["header_pin"] == nil ? nil : integer(s, "header_pin", range: 1...40, required: false)
            let direction = choice(s, "direction", Board.Direction.self, parse: { Board.Direction(rawValue: $0.lowercased()) })
            let bias = requiredBoolean(s, "bias", meaning: "whether pull-up / pull-down can be set from software")
            let notes = string(s, "notes", default: "")
            let otherNames = lineNames(s, "other_names")

            let owner = name ?? "?"
            func claim(_ claimed: String, at position: SourcePosition) -> Bool {
                if let first = names[claimed] {
                    let by = first.owner == claimed ? "" : " by line \"\(first.owner)\" (among its other_names)"
                    report(position, "line name \"\(claimed)\" is already used at \(first.position)\(by): Vouch finds lines by name, so a name may belong to one line only")
                    return false
                }
                names[claimed] = (owner, position)
                return true
            }
            var unique = true
            if let name, !claim(name, at: s.table["name"]?.position ?? s.position) { unique = false }
            for (other, at) in otherNames ?? [] {
                if !claim(other, at: at) { unique = false }
            }

            if let chip, !labels.contains(chip) {
                let hint =
                    labels.isEmpty
                    ? " (no [[chip]] is declared)"
                    : Self.closest(chip, in: labels).map { "; did you mean \"\($0)\"?" } ?? " (declared chips: \(labels.joined(separator: ", ")))"
                report(s.table["chip"]?.position ?? s.position, "line \"\(owner)\" is on chip \"\(chip)\", which no [[chip]] declares\(hint)")
            }
            if let chip, labels.contains(chip), let offset {
                let at = s.table["offset"]?.position ?? s.position
                if let first = offsets[chip]?[offset] {
                    report(at, "offset \(offset) on chip \"\(chip)\" is already line \"\(first.owner)\" (at \(first.position))")
                    unique = false
                } else {
                    offsets[chip, default: [:]][offset] = (owner, at)
                }
            }
            if let headerPin {
                let at = s.table["header_pin"]?.position ?? s.position
                if let first = headerPins[headerPin] {
                    report(at, "header pin \(headerPin) is already line \"\(first.owner)\" (at \(first.position))")
                    unique = false
                } else {
                    headerPins[headerPin] = (owner, at)
                }
            }
            guard unique, let name, let chip, labels.contains(chip), let offset, let direction, let bias, let notes, let otherNames,
                s.table["header_pin"] == nil || headerPin != nil
            else { continue }
            lines.append(
                Board.Line(
                    name: name, chip: chip, offset: offset, headerPin: headerPin, direction: direction, biasSupported: bias, notes: notes,
                    otherNames: otherNames.map(\.name)))
        }
        return lines
    }

    /// `[[serial]]`: absolute paths, each port once.
    mutating func decodeBoardSerialPorts(_ root: TOMLTable) -> [Board.SerialPort] {
        var ports: [Board.SerialPort] = []
        var paths: [String: SourcePosition] = [:]
        for s in tableArray(root, "serial", name: "serial", known: Self.boardSerialKeys) {
            let path = devicePath(s, "path", expected: "the port's device path, e.g. \"/dev/ttyAMA0\"")
            let preferred =
                s.table["preferred_path"] == nil
                ? nil : devicePath(s, "preferred_path", expected: "a name that survives renumbering, e.g. \"/dev/serial0\" or \"/dev/serial/by-id/…\"")
            let description = string(s, "description", expected: "what the port is, where it is wired and how to set it up")
            let rs485 = requiredBoolean(s, "rs485", meaning: "whether the port drives an RS-485 bus as it is, without an added transceiver")
            if let path {
                let at = s.table["path"]?.position ?? s.position
                if let first = paths[path] {
                    report(at, "serial port \"\(path)\" is listed twice (first at \(first))")
                    continue
                }
                paths[path] = at
            }
            guard let path, s.table["preferred_path"] == nil || preferred != nil, let description, let rs485 else { continue }
            ports.append(Board.SerialPort(path: path, preferredPath: preferred, description: description, rs485: rs485))
        }
        return ports
    }

    // MARK: values particular to board files

    /// A boolean that must be written out: a board file states what the hardware can do, and a default
    /// would let an unchecked board claim something nobody looked up.
    mutating func requiredBoolean(_ s: Section, _ key: String, meaning: String) -> Bool? {
        guard let n = node(s, key, required: true, expected: "true or false: \(meaning)") else { return nil }
        guard case .boolean(let value) = n.value else {
            report(n.position, "\"\(key)\" in [\(s.name)] must be true or false, found \(n.value.typeName)")
            return nil
        }
        return value
    }

    /// A line name or chip label, which has to be able to equal what the kernel reports.
    mutating func kernelName(_ s: Section, _ key: String, expected: String, noun: String) -> String? {
        guard let text = string(s, key, expected: expected) else { return nil }
        return checkedKernelName(text, described: "\"\(key)\" in [\(s.name)]", noun: noun, at: s.table[key]?.position ?? s.position)
    }

    mutating func checkedKernelName(_ text: String, described what: String, noun: String, at position: SourcePosition) -> String? {
        if text.isEmpty {
            report(position, "\(what) is empty; write the \(noun) exactly as the kernel reports it")
        } else if text.trimmingCharacters(in: .whitespaces) != text {
            report(position, "\(what) is \"\(text)\", with spaces at its start or end; write the \(noun) exactly as the kernel reports it")
        } else if text.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
            report(position, "\(what) contains a control character; write the \(noun) exactly as the kernel reports it")
        } else if text.utf8.count > Self.kernelNameLimit {
            report(
                position,
                "\(what) is \"\(text)\" (\(text.utf8.count) bytes); the kernel reports at most \(Self.kernelNameLimit) bytes of a \(noun), so none could ever match it")
        } else {
            return text
        }
        return nil
    }

    /// `other_names = ["SDA1"]`: each a possible kernel name, with where it was written.
    mutating func lineNames(_ s: Section, _ key: String) -> [(name: String, position: SourcePosition)]? {
        guard let n = s.table[key] else { return [] }
        guard case .array(let items) = n.value else {
            report(n.position, "\"\(key)\" in [\(s.name)] must be an array of line names such as [\"SDA1\"], found \(n.value.typeName)")
            return nil
        }
        var names: [(name: String, position: SourcePosition)] = []
        var ok = true
        for item in items {
            guard case .string(let text) = item.value else {
                report(item.position, "each of \"\(key)\" in [\(s.name)] must be a string, found \(item.value.typeName)")
                ok = false
                continue
            }
            if let name = checkedKernelName(text, described: "each of \"\(key)\" in [\(s.name)]", noun: "name", at: item.position) {
                names.append((name, item.position))
            } else {
                ok = false
            }
        }
        return ok ? names : nil
    }

    /// A device path: absolute, because a relative one would depend on the directory the agent starts in.
    mutating func devicePath(_ s: Section, _ key: String, expected: String) -> String? {
        guard let path = string(s, key, expected: expected) else { return nil }
        guard path.hasPrefix("/") else {
            report(s.table[key]?.position ?? s.position, "\"\(key)\" in [\(s.name)] is \"\(path)\"; expected an absolute device path such as \"/dev/ttyAMA0\"")
            return nil
        }
        return path
    }
}
