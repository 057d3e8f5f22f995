import Foundation

extension ConfigDecoder {
    static let gpioInputKeys = ["name", "line", "chip", "bias", "active_low", "debounce", "signal", "sample_interval"]
    static let gpioOutputKeys = ["name", "line", "chip", "active_low", "role"]

    /// `[gpio]` with its optional `board`, `[[gpio.input]]` and `[[gpio.output]]`. Input channel ids are `gpio.NAME`.
    mutating func decodeGPIO(_ root: TOMLTable, channelIDs: inout [String: SourcePosition]) -> GPIOSettings {
        guard let node = root["gpio"] else { return GPIOSettings() }
        guard case .table(let table) = node.value else {
            report(node.keyPosition, "\"gpio\" must be a table with [[gpio.input]] / [[gpio.output]] entries")
            return GPIOSettings()
        }
        let top = Section(table: table, name: "gpio", position: node.position, known: ["input", "output", "board", "boards"])
        checkUnknown(top)
        var settings = GPIOSettings()
        var lines: [String: SourcePosition] = [:]
        func claim(_ line: String?, chip: String?, _ s: Section) -> Bool {
            guard let line else { return true }
            let key = "\(chip ?? "*")/\(line)"
            if let first = lines[key] {
                report(s.table["line"]?.position ?? s.position, "line \"\(line)\" is used twice (first at \(first)): one line, one use")
                return false
            }
            lines[key] = s.table["line"]?.position ?? s.position
            return true
        }
        for s in tableArray(table, "input", name: "gpio.input", known: Self.gpioInputKeys) {
            let name = identifier(s, "name")
            let line = string(s, "line", expected: "the line's name as `vouch gpio list` shows it, e.g. \"GPIO17\"")
            let chip = string(s, "chip", required: false, expected: "a chip label, e.g. \"pinctrl-bcm2711\"")
            let bias = choice(s, "bias", GPIOBias.self, default: .asIs, parse: { GPIOBias(rawValue: $0.lowercased()) })
            let activeLow = boolean(s, "active_low", default: false)
            let debounce = duration(s, "debounce", min: .zero, default: .zero)
            let signal = choice(s, "signal", GPIOSignal.self, default: .level, parse: { GPIOSignal(rawValue: $0.lowercased()) })
            let interval = duration(s, "sample_interval", min: .milliseconds(100), default: .seconds(1))
            if let debounce, debounce > .seconds(10) {
                report(s.table["debounce"]?.position ?? s.position, "\"debounce\" in [gpio.input] is longer than 10s: a change would be reported that late; use the hold time of a detector instead")
            }
            let unique = claim(line, chip: chip, s)
            guard let name else { continue }
            let id = "gpio.\(name)"
            if let first = channelIDs[id] {
                report(s.table["name"]?.position ?? s.position, "channel \"\(id)\" is defined twice (first at \(first.line):\(first.column))")
                continue
            }
            channelIDs[id] = s.table["name"]?.position ?? s.position
            guard unique, let line, let bias, let activeLow, let debounce, let signal, let interval, s.table["chip"] == nil || chip != nil else { continue }
            settings.inputs.append(
                GPIOInputChannelSettings(id: id, line: line, chip: chip, bias: bias, activeLow: activeLow, debounce: debounce, signal: signal, sampleInterval: interval))
        }
        var outputNames = Set<String>()
        for s in tableArray(table, "output", name: "gpio.output", known: Self.gpioOutputKeys) {
            let name = identifier(s, "name")
            let line = string(s, "line", expected: "the line's name as `vouch gpio list` shows it")
            let chip = string(s, "chip", required: false, expected: "a chip label")
            let activeLow = boolean(s, "active_low", default: false)
            let role = choice(s, "role", GPIOOutputSettings.Role.self, default: .running, parse: { GPIOOutputSettings.Role(rawValue: $0.lowercased()) })
            let unique = claim(line, chip: chip, s)
            if let name, !outputNames.insert(name).inserted { report(s.table["name"]?.position ?? s.position, "output \"\(name)\" is defined twice") }
            guard unique, let name, let line, let activeLow, let role, s.table["chip"] == nil || chip != nil else { continue }
            settings.outputs.append(GPIOOutputSettings(name: name, line: line, chip: chip, activeLow: activeLow, role: role))
        }
        if let board = gpioBoard(top) {
            settings.board = board
            checkAgainstBoard(settings, board: board, table: table)
        }
        return settings
    }

    /// The board `[gpio] board = "NAME"` names, looked up in `[gpio] boards` (relative to the config
    /// file) or the default board directories. Its own problems are reported in the board file.
    mutating func gpioBoard(_ top: Section) -> Board? {
        guard top.table["board"] != nil,
            let name = string(top, "board", required: false, expected: "a board folder's name, e.g. \"rpi4\" (see boards/README.md)")
        else {
            if top.table["boards"] != nil { _ = string(top, "boards", required: false) }
            return nil
        }
        var directories = BoardLoader.defaultDirectories
        if let dir = string(top, "boards", required: false, expected: "the directory holding board folders (NAME/board.toml)") {
            let base = URL(fileURLWithPath: file).deletingLastPathComponent()
            directories = [dir.hasPrefix("/") ? dir : base.appendingPathComponent(dir).standardized.path]
        }
        let at = top.table["board"]?.position ?? top.position
        guard BoardLoader.isFolderName(name) else {
            report(at, "board name \"\(name)\" must be a folder name without a path, e.g. \"rpi4\"")
            return nil
        }
        // A board that is not there is this config's mistake; one that is broken is the board file's.
        guard directories.contains(where: { FileManager.default.fileExists(atPath: "\($0)/\(name)/\(BoardLoader.fileName)") }) else {
            report(at, BoardLoader.notFound(name, directories: directories))
            return nil
        }
        do {
            return try BoardLoader.load(name: name, directories: directories)
        } catch {
            diagnostics += error.diagnostics
            report(at, "board \"\(name)\" (\(error.diagnostics.first?.file ?? name)) has errors, listed below")
            return nil
        }
    }

    /// Every line the config names must be one the board has, usable the way the config uses it:
    /// a typo or an output-only pin is found by `vouch config check` in the office, not on site.
    mutating func checkAgainstBoard(_ settings: GPIOSettings, board: Board, table: TOMLTable) {
        let where_ = "board \(board.name) (\(board.file))"
        func position(_ list: String, _ index: Int, _ key: String) -> SourcePosition {
            guard case .array(let items) = table[list]?.value, index < items.count, case .table(let t) = items[index].value else {
                return SourcePosition(line: 1, column: 1)
            }
            return t[key]?.position ?? items[index].position
        }
        func find(_ line: String, chip: String?, at: SourcePosition) -> Board.Line? {
            guard let found = board.line(named: line) else {
                let names = board.lines.flatMap { [$0.name] + $0.otherNames }
                let hint = Self.closest(line, in: names).map { "; did you mean \"\($0)\"?" }
                    ?? " (its lines: \(board.lines.map(\.name).joined(separator: ", ")))"
                report(at, "line \"\(line)\" is not on \(where_)\(hint)")
                return nil
            }
            if let chip, chip != found.chip {
                report(at, "line \"\(line)\" is on chip \"\(found.chip)\" on board \(board.name), not on \"\(chip)\": set chip = \"\(found.chip)\" or leave chip out")
            }
            return found
        }
        func notes(_ line: Board.Line) -> String { line.notes.isEmpty ? "" : " (board notes: \(line.notes))" }
        // Inputs and outputs were appended in file order, skipping broken entries: match them by name.
        let inputEntries = entries(table, "input")
        for input in settings.inputs {
            let name = String(input.id.dropFirst("gpio.".count))
            guard let index = inputEntries.firstIndex(where: { $0 == name }) else { continue }
            let at = position("input", index, "line")
            guard let line = find(input.line, chip: input.chip, at: at) else { continue }
            if !line.canRead {
                report(at, "line \"\(input.line)\" on board \(board.name) is an output only\(notes(line)): it cannot be a [[gpio.input]]")
            }
            if input.bias != .asIs, input.bias != .disabled, !line.biasSupported {
                report(position("input", index, "bias"), "board \(board.name) cannot set the pull of line \"\(input.line)\" from software (the kernel may accept the request and do nothing, leaving the input floating)\(notes(line)): fit a resistor and set bias = \"as-is\"")
            }
        }
        let outputEntries = entries(table, "output")
        for output in settings.outputs {
            guard let index = outputEntries.firstIndex(where: { $0 == output.name }) else { continue }
            let at = position("output", index, "line")
            guard let line = find(output.line, chip: output.chip, at: at) else { continue }
            if !line.canDrive {
                report(at, "line \"\(output.line)\" on board \(board.name) is an input only\(notes(line)): it cannot be a [[gpio.output]]")
            }
        }
    }

    /// The `name` of each entry of `[[gpio.<list>]]`, in file order (nil where it has none).
    func entries(_ table: TOMLTable, _ list: String) -> [String?] {
        guard case .array(let items) = table[list]?.value else { return [] }
        return items.map { item in
            guard case .table(let t) = item.value, case .string(let name) = t["name"]?.value else { return nil }
            return name
        }
    }
}
