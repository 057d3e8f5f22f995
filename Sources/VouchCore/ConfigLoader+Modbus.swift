import Foundation
import VouchEvidence

/// A device template from `boards/modbus/NAME.toml`: a meter's register map, written once and
/// referenced from any config with `template = "NAME"`.
struct ModbusTemplate {
    let name: String
    let file: String
    let byteOrder: ModbusByteOrder
    let maxGap: Int?
    let maxRegisters: Int?
    /// Channel names (without the device prefix) in template order.
    let channels: [ModbusChannelSettings]
    let positions: [String: SourcePosition]
}

extension ConfigDecoder {
    static let deviceKeys = [
        "name", "url", "unit_id", "timeout", "byte_timeout", "poll_interval", "pause_between_requests", "max_gap", "max_registers", "template",
        "byte_order",
        "baud_rate", "parity", "data_bits", "stop_bits", "rs485", "rts", "channel",
    ]
    static let serialKeys = ["baud_rate", "parity", "data_bits", "stop_bits", "rs485", "rts", "byte_timeout"]
    static let channelKeys = ["name", "register", "address", "type", "byte_order", "bit", "length", "scale", "offset", "decimals", "unit"]
    /// Where `template = "NAME"` is looked up when [modbus] has no `templates` directory.
    static let defaultTemplateDirectories = ["/etc/vouch/modbus", "/usr/share/vouch/modbus"]

    /// `SHA-256(config file)`, or when templates are used, SHA-256 of the text
    /// `"<config hash>\n<template name> <template hash>\n…"` in order of first use: editing a template
    /// changes the config hash recorded in evidence just as editing the config would.
    static func effectiveHash(_ configHash: String, templates: [(name: String, sha256: String)]) -> String {
        guard !templates.isEmpty else { return configHash }
        let text = ([configHash] + templates.map { "\($0.name) \($0.sha256)" }).joined(separator: "\n") + "\n"
        return Digest256.sha256Hex(Array(text.utf8))
    }

    mutating func decodeModbus(_ root: TOMLTable, start: SourcePosition, channelIDs: inout [String: SourcePosition]) -> [ModbusDeviceSettings] {
        var devices: [ModbusDeviceSettings] = []
        if let modbus = root["modbus"] {
            if case .table(let mt) = modbus.value {
                let m = Section(table: mt, name: "modbus", position: modbus.position, known: ["device", "templates"])
                checkUnknown(m)
                var directories = Self.defaultTemplateDirectories
                if let dir = string(m, "templates", required: false, expected: "the directory holding device templates (NAME.toml)") {
                    let base = URL(fileURLWithPath: file).deletingLastPathComponent()
                    directories = [dir.hasPrefix("/") ? dir : base.appendingPathComponent(dir).standardized.path]
                }
                var placed: [DeviceKey: (device: String, position: SourcePosition)] = [:]
                var lines: [String: (serial: SerialSettings, device: String, position: SourcePosition)] = [:]
                for d in tableArray(mt, "device", name: "modbus.device", known: Self.deviceKeys) {
                    guard let dev = decodeModbusDevice(d, templateDirectories: directories, channelIDs: &channelIDs) else { continue }
                    // One bus, one unit id per device: two devices answering to one id corrupt each other's readings.
                    let key = DeviceKey(endpoint: dev.endpoint, unit: dev.unitId)
                    if let other = placed[key] {
                        report(d.table["unit_id"]?.position ?? d.position, "devices \"\(other.device)\" and \"\(dev.name)\" both use unit id \(dev.unitId) on \(dev.endpoint) (first at \(other.position))")
                    } else {
                        placed[key] = (dev.name, d.position)
                    }
                    if case .rtu(let path) = dev.endpoint, let serial = dev.serial {
                        if let other = lines[path], other.serial != serial {
                            report(
                                d.position,
                                "device \"\(dev.name)\" sets \(path) to \(serial.summary), but device \"\(other.device)\" (at \(other.position)) sets it to \(other.serial.summary): every device on one serial port must use the same line settings")
                        } else if lines[path] == nil {
                            lines[path] = (serial, dev.name, d.position)
                        }
                    }
                    devices.append(dev)
                }
            } else {
                report(modbus.keyPosition, "\"modbus\" must be a table with [[modbus.device]] entries")
            }
        }
        return devices
    }

    struct DeviceKey: Hashable {
        let endpoint: ModbusEndpoint
        let unit: Int
    }

    /// "tcp://host[:port]", "rtu:///dev/…" or Telegraf's "file:///dev/…" (the rules: ``ModbusEndpoint/parse(_:)``).
    mutating func modbusEndpoint(_ d: Section) -> ModbusEndpoint? {
        let expected = ModbusEndpoint.urlExpected
        guard let url = string(d, "url", expected: expected) else { return nil }
        let at = d.table["url"]?.position ?? d.position
        switch ModbusEndpoint.parse(url) {
        case .success(let endpoint):
            return endpoint
        case .failure(let problem):
            switch problem.kind {
            case .portOutOfRange(let port):
                report(at, "port \(port) in \"\(url)\" is out of range 1–65535")
            case .needsDevicePath(let scheme):
                report(at, "\"url\" \"\(url)\" needs an absolute device path after \(scheme), e.g. \"rtu:///dev/ttyUSB0\"; set line settings with baud_rate, parity, data_bits and stop_bits")
            case .unrecognised:
                report(at, "\"url\" in [modbus.device] is \"\(url)\"; expected \(expected)")
            }
            return nil
        }
    }

    mutating func decodeModbusDevice(_ d: Section, templateDirectories: [String], channelIDs: inout [String: SourcePosition]) -> ModbusDeviceSettings? {
        let name = identifier(d, "name")
        let endpoint = modbusEndpoint(d)
        let unit = integer(d, "unit_id", range: 0...255, default: 1)
        let timeout = duration(d, "timeout", min: .milliseconds(10), default: .seconds(1))
        let poll = duration(d, "poll_interval", min: .milliseconds(100), default: .seconds(1))
        let pause = duration(d, "pause_between_requests", min: .zero, default: .zero)
        let deviceOrder = d.table["byte_order"] == nil ? nil : choice(d, "byte_order", ModbusByteOrder.self, parse: { ModbusByteOrder(rawValue: $0.uppercased()) })
        let deviceOrderBad = d.table["byte_order"] != nil && deviceOrder == nil

        var serial: SerialSettings?
        var byteTimeout: Duration?
        if case .rtu = endpoint {
            let baud = integer(d, "baud_rate", range: 300...4_000_000, default: 9600)
            if let baud, ![300, 600, 1200, 2400, 4800, 9600, 14400, 19200, 38400, 57600, 115200, 230400, 460800, 921600].contains(baud) {
                report(d.table["baud_rate"]?.position ?? d.position, "\"baud_rate\" \(baud) is not a standard rate (9600, 19200, 38400, 57600, 115200, …)")
            }
            let parity = choice(d, "parity", SerialSettings.Parity.self, default: SerialSettings.Parity.none, parse: Self.parity)
            let dataBits = integer(d, "data_bits", range: 7...8, default: 8)
            let stopBits = integer(d, "stop_bits", range: 1...2, default: 1)
            let rs485 = boolean(d, "rs485", default: false)
            let rts = choice(d, "rts", SerialSettings.RTS.self, default: SerialSettings.RTS.none, parse: { SerialSettings.RTS(rawValue: $0.lowercased()) })
            byteTimeout = d.table["byte_timeout"] == nil ? nil : duration(d, "byte_timeout", min: .milliseconds(1), required: false)
            if let baud, let parity, let dataBits, let stopBits, let rs485, let rts {
                serial = SerialSettings(baudRate: baud, parity: parity, dataBits: dataBits, stopBits: stopBits, rs485: rs485, rts: rts)
            }
        } else if case .tcp = endpoint {
            filledIn.narrow(d, to: d.known.filter { !Self.serialKeys.contains($0) })
            for key in Self.serialKeys where d.table[key] != nil {
                report(d.table[key]?.keyPosition ?? d.position, "\"\(key)\" applies to serial devices (url \"rtu:///dev/…\") only, not to Modbus TCP")
            }
        }

        if case .rtu = endpoint, let unit, !(1...247).contains(unit) {
            report(d.table["unit_id"]?.position ?? d.position, "\"unit_id\" \(unit) cannot be polled on a serial line: use 1–247 (0 is broadcast, which no device answers)")
        }
        var template: ModbusTemplate?
        if let templateName = string(d, "template", required: false, expected: "the name of a device template, e.g. \"eastron-sdm630\"") {
            template = loadTemplate(templateName, at: d.table["template"]?.position ?? d.position, directories: templateDirectories)
        }
        if let template {
            let names = template.channels.map(\.id)
            note(d, "template \"\(template.name)\" (\(template.file)) adds \(names.count) channel\(names.count == 1 ? "" : "s"): \(names.joined(separator: ", "))")
        }
        let maxGap = integer(d, "max_gap", range: 0...124, default: template?.maxGap ?? ModbusDeviceSettings.defaultMaxGap)
        let maxRegisters = integer(d, "max_registers", range: 1...125, default: template?.maxRegisters ?? ModbusDeviceSettings.protocolMaxRegisters)

        let channelSections = tableArray(d.table, "channel", name: "modbus.device.channel", known: Self.channelKeys)
        if channelSections.isEmpty, d.table["channel"] == nil, d.table["template"] == nil {
            report(d.position, "[[modbus.device]] \(name.map { "\"\($0)\" " } ?? "")has no [[modbus.device.channel]] and no template")
        }
        // Template channels first, in template order; a channel of the same name in the config replaces one.
        var channels: [ModbusChannelSettings] = template?.channels ?? []
        var origin: [String: SourcePosition] = template?.positions ?? [:]
        let defaultOrder = deviceOrder ?? template?.byteOrder ?? .abcd
        if deviceOrder != nil {
            // A device-wide byte order overrides the template's default, not orders a template channel states.
            channels = channels.map { c in
                var c = c
                if c.byteOrder == template?.byteOrder && c.dataType.isNumeric { c.byteOrder = defaultOrder }
                return c
            }
        }
        var ownNames = Set<String>()
        var broken: [(String, SourcePosition)] = []
        for c in channelSections {
            let (channelName, decoded) = decodeChannel(c, defaultOrder: defaultOrder)
            guard let channelName else { continue }
            let position = c.table["name"]?.position ?? c.position
            if !ownNames.insert(channelName).inserted {
                report(position, "channel \"\(name ?? "?").\(channelName)\" is defined twice (first at \(origin[channelName].map(\.description) ?? "?"))")
                continue
            }
            origin[channelName] = position
            guard let channel = decoded else {
                broken.append((channelName, position))
                continue
            }
            if let i = channels.firstIndex(where: { $0.id == channel.id }) { channels[i] = channel } else { channels.append(channel) }
        }
        // Register ids as soon as the device's name is valid, so a mistake elsewhere in a device does not
        // also surface as "unknown channel" in every rule that names its channels.
        guard let name else { return nil }
        for (channelName, position) in broken where channelIDs["\(name).\(channelName)"] == nil { channelIDs["\(name).\(channelName)"] = position }
        channels = channels.map { c in
            var c = c
            c.id = "\(name).\(c.id)"
            return c
        }
        var unique: [ModbusChannelSettings] = []
        for c in channels {
            let at = origin[String(c.id.dropFirst(name.count + 1))] ?? d.position
            if let first = channelIDs[c.id] {
                report(at, "channel \"\(c.id)\" is defined twice (first at \(first.line):\(first.column))")
                continue
            }
            channelIDs[c.id] = at
            unique.append(c)
        }
        if let maxRegisters {
            for c in unique where !c.register.isBit && c.registerCount > maxRegisters {
                report(
                    origin[String(c.id.dropFirst(name.count + 1))] ?? d.table["max_registers"]?.position ?? d.position,
                    "channel \"\(c.id)\" needs \(c.registerCount) registers, more than this device's max_registers \(maxRegisters)")
            }
        }
        guard let endpoint, let unit, let timeout, let poll, let pause, let maxGap, let maxRegisters, !deviceOrderBad else { return nil }
        if endpoint.isSerial && !(1...247).contains(unit) { return nil }
        if endpoint.isSerial && serial == nil { return nil }
        if d.table["template"] != nil && template == nil { return nil }
        return ModbusDeviceSettings(
            name: name, endpoint: endpoint, serial: serial, unitId: unit, responseTimeout: timeout, byteTimeout: byteTimeout, pollInterval: poll,
            pauseBetweenRequests: pause, maxGap: maxGap, maxRegisters: maxRegisters, template: template?.name, channels: unique)
    }

    static func parity(_ text: String) -> SerialSettings.Parity? {
        switch text.lowercased() {
        case "none", "n": SerialSettings.Parity.none
        case "even", "e": .even
        case "odd", "o": .odd
        default: nil
        }
    }

    /// One channel; its `id` is only the channel's own name (the caller prefixes the device's). `name` is
    /// returned even when another field is wrong, so the id still exists for rules that name it.
    mutating func decodeChannel(_ c: Section, defaultOrder: ModbusByteOrder) -> (name: String?, channel: ModbusChannelSettings?) {
        let place = "[\(c.name)]"
        let name = identifier(c, "name")
        let register = choice(c, "register", ModbusRegisterKind.self, parse: ModbusRegisterKind.init(configName:))
        let address = integer(c, "address", range: 0...65535)
        let type = choice(c, "type", ModbusDataType.self, default: register?.isBit == true ? .bool : nil, parse: ModbusDataType.init(configName:))
        // A device's or template's default order is for its numbers; text and bits take their own or ABCD.
        let orderDefault = type == .string || type == .bool ? ModbusByteOrder.abcd : defaultOrder
        let order = choice(c, "byte_order", ModbusByteOrder.self, default: orderDefault, parse: { ModbusByteOrder(rawValue: $0.uppercased()) })
        let bit = c.table["bit"] == nil ? nil : integer(c, "bit", range: 0...15, required: false)
        let length = c.table["length"] == nil ? nil : integer(c, "length", range: 1...125, required: false)
        let scale = number(c, "scale", default: 1)
        let offset = number(c, "offset", default: 0)
        let decimals = integer(c, "decimals", range: 0...9, default: 0)
        let unit = string(c, "unit", default: "")
        // Text and bits have no scale: those keys are refused below when written, so they are not defaults either.
        if type == .bool || type == .string { unfill(c, ["scale", "offset", "decimals"]) }
        var ok = true
        func problem(_ key: String, _ message: String) {
            report(c.table[key]?.position ?? c.position, message)
            ok = false
        }
        if let register, let type {
            if register.isBit && type != .bool {
                problem("type", "\"type\" in \(place) is \(type.rawValue), but a \(register.rawValue) is a single bit: use type \"bool\" (or leave type out)")
            }
            if !register.isBit && type == .bool && c.table["bit"] == nil {
                problem("type", "a bool in a \(register.rawValue) register needs \"bit\" (0 = least significant … 15) in \(place)")
            }
            if c.table["bit"] != nil && (register.isBit || type != .bool) {
                problem("bit", "\"bit\" in \(place) applies only to type \"bool\" in a holding or input register")
            }
            if type == .string && c.table["length"] == nil {
                problem("type", "a string in \(place) needs \"length\": how many registers (two characters each) it occupies")
            }
            if type != .string && c.table["length"] != nil {
                problem("length", "\"length\" in \(place) applies only to type \"string\"; \(type.rawValue) has a fixed size")
            }
            if type == .string, let order, order.swapsWords, c.table["byte_order"] != nil {
                problem("byte_order", "byte_order \(order.rawValue) in \(place) does not apply to a string: use ABCD (first character in the high byte) or BADC (low byte first)")
            }
            if type == .bool || type == .string {
                for key in ["scale", "offset", "decimals"] where c.table[key] != nil {
                    problem(key, "\"\(key)\" in \(place) applies to numbers, not to a \(type.rawValue)")
                }
            }
            if let address, let length = type == .string ? (length ?? 1) : type.fixedRegisterCount, !register.isBit, address + length - 1 > 65535 {
                problem("address", "\(type.rawValue) at address \(address) runs past register 65535")
            }
        }
        if let scale, scale == 0 { problem("scale", "\"scale\" in \(place) must not be 0") }
        if c.table["bit"] != nil && bit == nil || c.table["length"] != nil && length == nil { ok = false }
        guard ok, let name, let register, let address, let type, let order, let scale, let offset, let decimals, let unit else { return (name, nil) }
        return (name, ModbusChannelSettings(
            id: name, register: register, address: address, dataType: type,
            // A device's or template's default order is for its numbers; text and bits take their own or ABCD.
            byteOrder: type == .string || type == .bool ? (c.table["byte_order"] != nil && order.swapsBytes ? .badc : .abcd) : order,
            bit: bit, length: length, scale: scale, offset: offset, decimals: decimals, unit: unit))
    }

    /// Finds and decodes `NAME.toml`; its problems are reported against the template file itself.
    mutating func loadTemplate(_ name: String, at position: SourcePosition, directories: [String]) -> ModbusTemplate? {
        if let cached = templateCache[name] { return cached }
        guard !name.isEmpty, name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == ".") }), !name.hasPrefix(".") else {
            report(position, "template name \"\(name)\" must be a file name without path, e.g. \"eastron-sdm630\"")
            return nil
        }
        let fm = FileManager.default
        guard let path = directories.map({ "\($0)/\(name).toml" }).first(where: { fm.fileExists(atPath: $0) }) else {
            let available = directories.flatMap { dir in ((try? fm.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.hasSuffix(".toml") }.map { String($0.dropLast(5)) } }
            let guess = Self.closest(name, in: available).map { "; did you mean \"\($0)\"?" } ?? ""
            let listing = available.isEmpty ? " (no templates there: set [modbus] templates = \"DIR\" to the folder holding NAME.toml files)" : " (available: \(available.sorted().joined(separator: ", ")))"
            report(position, "template \"\(name)\" not found in \(directories.joined(separator: ", "))\(guess.isEmpty ? listing : guess)")
            return nil
        }
        guard let data = fm.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            report(position, "template \"\(name)\" at \(path) cannot be read as UTF-8 text (check its permissions)")
            return nil
        }
        var inner = ConfigDecoder(file: path)
        let table: TOMLTable
        do { table = try TOML.parse(text) } catch {
            diagnostics.append(ConfigDiagnostic(file: path, position: error.position, message: error.message))
            report(position, "template \"\(name)\" (\(path)) has errors, listed below")
            return nil
        }
        let top = Section(table: table, name: "template \(name)", position: SourcePosition(line: 1, column: 1), known: ["description", "byte_order", "max_gap", "max_registers", "channel"])
        inner.checkUnknown(top)
        _ = inner.string(top, "description", required: false)
        let order = inner.choice(top, "byte_order", ModbusByteOrder.self, default: .abcd, parse: { ModbusByteOrder(rawValue: $0.uppercased()) }) ?? .abcd
        let maxGap = top.table["max_gap"] == nil ? nil : inner.integer(top, "max_gap", range: 0...124, required: false)
        let maxRegisters = top.table["max_registers"] == nil ? nil : inner.integer(top, "max_registers", range: 1...125, required: false)
        var channels: [ModbusChannelSettings] = []
        var positions: [String: SourcePosition] = [:]
        let sections = inner.tableArray(table, "channel", name: "channel", known: Self.channelKeys)
        if sections.isEmpty { inner.report(top.position, "template \"\(name)\" has no [[channel]]") }
        for c in sections {
            guard let channel = inner.decodeChannel(c, defaultOrder: order).channel else { continue }
            let at = c.table["name"]?.position ?? c.position
            if let first = positions[channel.id] {
                inner.report(at, "channel \"\(channel.id)\" is defined twice in template \"\(name)\" (first at \(first))")
                continue
            }
            positions[channel.id] = at
            channels.append(channel)
        }
        if !inner.diagnostics.isEmpty {
            diagnostics += inner.diagnostics
            report(position, "template \"\(name)\" (\(path)) has errors, listed below")
            return nil
        }
        templatesUsed.append((name, Digest256.sha256Hex(Array(data))))
        let template = ModbusTemplate(name: name, file: path, byteOrder: order, maxGap: maxGap, maxRegisters: maxRegisters, channels: channels, positions: [:])
        templateCache[name] = template
        return template
    }
}
