extension ConfigDecoder {
    static let gpioInputKeys = ["name", "line", "chip", "bias", "active_low", "debounce", "signal", "sample_interval"]
    static let gpioOutputKeys = ["name", "line", "chip", "active_low", "role"]

    /// `[[gpio.input]]` and `[[gpio.output]]`. Input channel ids are `gpio.NAME`.
    mutating func decodeGPIO(_ root: TOMLTable, channelIDs: inout [String: SourcePosition]) -> GPIOSettings {
        guard let node = root["gpio"] else { return GPIOSettings() }
        guard case .table(let table) = node.value else {
            report(node.keyPosition, "\"gpio\" must be a table with [[gpio.input]] / [[gpio.output]] entries")
            return GPIOSettings()
        }
        checkUnknown(Section(table: table, name: "gpio", position: node.position, known: ["input", "output"]))
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
        return settings
    }
}
