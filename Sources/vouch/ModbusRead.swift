import ArgumentParser
import VouchAgent
import VouchCore
import VouchModbus

struct ModbusRead: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "read",
        abstract: "Read registers once and show the raw words and the decoded value; or poll every configured channel once.",
        discussion: """
            With --url, reads --count registers (or bits), or one value of --type, at --address (0-based, as on \
            the wire: register 40001 of a manual is holding address 0) and prints every word in hex and decimal, \
            then the decoded value and the integer the agent would store with --scale/--offset/--decimals.

            Not sure of the byte order? A float32/float64 type, --count 2 or 4 without a type, or --all-orders \
            prints the value in all four orders (ABCD, CDAB, BADC, DCBA) side by side: pick the one that matches \
            the device's display and put it in the config as byte_order. NaN and inf mark orders that cannot be right.

            With --config, polls every configured channel once exactly as the agent does (joined requests, \
            byte orders, scaling) and prints a table: channel, value with unit, quality, raw words.

            Types: bool (with --bit in a register), uint16, int16, uint32, int32, uint64, int64, float32, \
            float64, string (with --length in registers); also u16 … f64 and Telegraf's INT16 … FLOAT64.

            Exit status: 0 the read succeeded (with --config: every channel read); 64 a usage error; 69 the \
            device did not answer, refused the read (an exception), or answered garbled; 78 the config is invalid.

            Examples:
              vouch modbus read --url tcp://192.168.1.20 \\
                  --register input --address 52 --type float32
              vouch modbus read --url tcp://192.168.1.20:502 --unit 2 \\
                  --register holding --address 0 --count 10
              vouch modbus read --url tcp://192.168.1.20 --register holding \\
                  --address 10 --type uint32 --byte-order CDAB --all-orders
              vouch modbus read --url tcp://192.168.1.20 --register input \\
                  --address 0 --type float32 --decimals 1 --json
              vouch modbus read \\
                  --url rtu:///dev/serial/by-id/usb-1a86_USB_Serial-if00-port0 \\
                  --baud 19200 --parity even --unit 3 \\
                  --register holding --address 100 --count 2
              vouch modbus read \\
                  --url rtu:///dev/serial/by-id/usb-1a86_USB_Serial-if00-port0 \\
                  --unit 5 --register coil --address 0 --count 8
              vouch modbus read --config /etc/vouch/vouch.toml
              vouch modbus read --config /etc/vouch/vouch.toml --device meter --json
            """)

    @OptionGroup(title: "Connection")
    var connection: ModbusConnectionOptions

    @Option(help: ArgumentHelp("Register kind: holding, input, coil or discrete.", valueName: "kind"))
    var register: String?

    @Option(help: ArgumentHelp("First address, 0-based as on the wire (0–65535).", valueName: "address"))
    var address: Int?

    @Option(help: ArgumentHelp("Registers (1–125) or bits (1–2000) to read, shown raw. Excludes --type.", valueName: "n"))
    var count: Int?

    @Option(help: ArgumentHelp("Decode one value of this type: bool, uint16, int16, uint32, int32, uint64, int64, float32, float64 or string.", valueName: "type"))
    var type: String?

    @Option(help: ArgumentHelp("For --type string: registers it occupies (two characters each, 1–125).", valueName: "registers"))
    var length: Int?

    @Option(help: ArgumentHelp("For --type bool in a holding or input register: which bit (0 = least significant … 15).", valueName: "bit"))
    var bit: Int?

    @Option(help: ArgumentHelp("Byte order of a multi-register value: ABCD (default, big-endian), CDAB, BADC or DCBA.", valueName: "order"))
    var byteOrder: String?

    @Flag(help: "Show a 2- or 4-register value decoded in all four byte orders.")
    var allOrders = false

    // .unconditional: a negative value ("--offset -30") is a value, not an option.
    @Option(parsing: .unconditional, help: ArgumentHelp("Engineering value = raw × scale + offset (default 1).", valueName: "x"))
    var scale: Double?

    @Option(parsing: .unconditional, help: ArgumentHelp("Engineering value = raw × scale + offset (default 0).", valueName: "y"))
    var offset: Double?

    @Option(help: ArgumentHelp("Decimal places kept in the stored integer (0–9, default 0).", valueName: "d"))
    var decimals: Int?

    @Flag(help: "Print one JSON document on standard output instead of text.")
    var json = false

    @Option(help: ArgumentHelp("Poll every channel of this config once, instead of --url.", valueName: "file"))
    var config: String?

    @Option(help: ArgumentHelp("With --config: only this device (repeat for several).", valueName: "name"))
    var device: [String] = []

    enum Job {
        case config(String)
        case url(ModbusConnection, Request)
    }

    /// The validated options. Checked once in `validate()`, so that a usage error comes with this
    /// command's usage line (exit 64), and again in `run()`.
    func job() throws -> Job {
        if let config {
            let urlOnly: [(Bool, String)] = [
                (connection.url != nil, "--url"), (connection.baud != nil, "--baud"), (connection.parity != nil, "--parity"),
                (connection.dataBits != nil, "--data-bits"), (connection.stopBits != nil, "--stop-bits"), (connection.rs485, "--rs485"),
                (connection.timeout != nil, "--timeout"), (connection.unit != nil, "--unit"), (register != nil, "--register"),
                (address != nil, "--address"), (count != nil, "--count"), (type != nil, "--type"), (length != nil, "--length"),
                (bit != nil, "--bit"), (byteOrder != nil, "--byte-order"), (allOrders, "--all-orders"), (scale != nil, "--scale"),
                (offset != nil, "--offset"), (decimals != nil, "--decimals"),
            ]
            if let (_, name) = urlOnly.first(where: { $0.0 }) {
                throw ValidationError(
                    "\(name == "--url" ? "--url and --config exclude each other" : "\(name) applies to a --url read"): with --config \(config) every device, channel and setting comes from the file")
            }
            return .config(config)
        }
        guard device.isEmpty else { throw ValidationError("--device picks devices of a config: it needs --config FILE") }
        guard connection.url != nil else {
            throw ValidationError("give --url URL (one device: \(ModbusConnectionOptions.urlHelp)) or --config FILE (every configured channel)")
        }
        return .url(try connection.resolve(defaultTimeout: .seconds(1)), try makeRequest())
    }

    func validate() throws { _ = try job() }

    func run() throws {
        switch try job() {
        case .config(let file): try readConfig(file)
        case .url(let target, let request): try readURL(target, request)
        }
    }

    // MARK: - One read (--url)

    /// A validated --url read: what to read and how to decode it.
    struct Request {
        let kind: ModbusRegisterKind
        let address: Int
        let count: Int
        /// Set with --type (or a single bit): the value to decode, as a config channel would.
        let channel: ModbusChannelSettings?
        /// Whether --scale/--offset/--decimals were given.
        let scaled: Bool
        let order: ModbusByteOrder
        let showOrders: Bool
    }

    func makeRequest() throws -> Request {
        guard let registerText = register else {
            throw ValidationError("--register is missing: expected holding, input, coil or discrete")
        }
        guard let kind = ModbusRegisterKind(configName: registerText) else {
            throw ValidationError("--register \"\(registerText)\" is not a register kind; expected holding, input, coil or discrete")
        }
        guard let address else {
            throw ValidationError("--address is missing: the first address, 0-based as on the wire (register 40001 of a manual is holding address 0)")
        }
        guard (0...65535).contains(address) else { throw ValidationError("--address \(address) is out of range; expected 0–65535") }

        let dataType: ModbusDataType?
        if let type {
            guard let t = ModbusDataType(configName: type) else {
                throw ValidationError(
                    "--type \"\(type)\" is not a data type; expected one of \(ModbusDataType.allCases.map(\.rawValue).joined(separator: ", ")) (or u16, i16, u32, i32, u64, i64, f32, f64)")
            }
            dataType = t
        } else {
            dataType = nil
        }
        let order: ModbusByteOrder
        if let byteOrder {
            guard let o = ModbusByteOrder(rawValue: byteOrder.uppercased()) else {
                throw ValidationError("--byte-order \"\(byteOrder)\" is not a byte order; expected ABCD, CDAB, BADC or DCBA")
            }
            order = o
        } else {
            order = .abcd
        }
        if let count, type != nil {
            throw ValidationError("--count \(count) and --type exclude each other: a type sets how many registers are read (float32 reads 2, uint64 reads 4)")
        }
        if let length, dataType != .string {
            throw ValidationError("--length \(length) applies only to --type string; \(dataType.map { "\($0.rawValue) has a fixed size" } ?? "without --type, use --count")")
        }
        if let bit, dataType != .bool || kind.isBit {
            throw ValidationError("--bit \(bit) applies only to --type bool in a holding or input register")
        }
        let scaling = [(scale != nil, "--scale"), (offset != nil, "--offset"), (decimals != nil, "--decimals")]
        if let (_, name) = scaling.first(where: { $0.0 }), dataType == nil || dataType == .bool || dataType == .string || kind.isBit {
            throw ValidationError("\(name) applies to a number: give a numeric --type (uint16 … float64)\(dataType.map { ", not \($0.rawValue)" } ?? "")")
        }
        if let scale, scale == 0 || !scale.isFinite { throw ValidationError("--scale must be a finite number other than 0") }
        if let offset, !offset.isFinite { throw ValidationError("--offset must be a finite number") }
        if let decimals, !(0...9).contains(decimals) { throw ValidationError("--decimals \(decimals) is out of range; expected 0–9") }

        if kind.isBit {
            if let dataType, dataType != .bool {
                throw ValidationError("--type \(dataType.rawValue) cannot be read from a \(kind.rawValue): it is a single bit (use --type bool, or leave --type out)")
            }
            if byteOrder != nil { throw ValidationError("--byte-order applies to registers; a \(kind.rawValue) is a single bit") }
            if allOrders { throw ValidationError("--all-orders applies to 2- or 4-register values; a \(kind.rawValue) is a single bit") }
            let n = count ?? 1
            guard (1...kind.maxPerRequest).contains(n) else {
                throw ValidationError("--count \(n) is out of range; one read covers 1–\(kind.maxPerRequest) \(kind.rawValue)s")
            }
            guard address + n <= 65536 else { throw ValidationError("--address \(address) with --count \(n) runs past address 65535") }
            let channel = n == 1 ? ModbusChannelSettings(id: "cli", register: kind, address: address, dataType: .bool) : nil
            return Request(kind: kind, address: address, count: n, channel: channel, scaled: false, order: .abcd, showOrders: false)
        }

        var channel: ModbusChannelSettings?
        if let dataType {
            if dataType == .bool && bit == nil {
                throw ValidationError("--type bool in a \(kind.rawValue) register needs --bit (0 = least significant … 15)")
            }
            if let bit, !(0...15).contains(bit) { throw ValidationError("--bit \(bit) is out of range; expected 0–15") }
            if dataType == .string {
                guard let length else { throw ValidationError("--type string needs --length: how many registers (two characters each) it occupies") }
                guard (1...125).contains(length) else { throw ValidationError("--length \(length) is out of range; expected 1–125 registers") }
                if order.swapsWords {
                    throw ValidationError("--byte-order \(order.rawValue) does not apply to a string; expected ABCD (first character in the high byte) or BADC (low byte first)")
                }
            }
            let storedOrder = dataType == .string || dataType == .bool ? (order.swapsBytes ? .badc : .abcd) : order
            channel = ModbusChannelSettings(
                id: "cli", register: kind, address: address, dataType: dataType, byteOrder: storedOrder, bit: bit, length: length,
                scale: scale ?? 1, offset: offset ?? 0, decimals: decimals ?? 0)
        }
        let n = channel?.registerCount ?? count ?? 1
        guard (1...kind.maxPerRequest).contains(n) else {
            throw ValidationError("--count \(n) is out of range; one read covers 1–\(kind.maxPerRequest) registers")
        }
        guard address + n <= 65536 else {
            throw ValidationError("\(channel.map { "--type \($0.dataType.rawValue)" } ?? "--count \(n)") at --address \(address) runs past register 65535")
        }
        let multiWord = (n == 2 || n == 4) && (channel.map { $0.dataType.isNumeric && $0.dataType != .bool } ?? true)
        if allOrders && !multiWord {
            throw ValidationError(
                "--all-orders needs a 2- or 4-register number (uint32, int32, float32, uint64, int64, float64, or --count 2 or 4); this read is \(channel.map { $0.dataType.rawValue } ?? "\(n) register(s)")")
        }
        if byteOrder != nil && channel == nil && n == 1 {
            throw ValidationError("--byte-order applies to a value: give --type (e.g. --type int16), or --count 2/4 to compare orders")
        }
        let showOrders = allOrders || (multiWord && (channel == nil || channel?.dataType.isFloat == true))
        return Request(kind: kind, address: address, count: n, channel: channel, scaled: scale != nil || offset != nil || decimals != nil, order: order, showOrders: showOrders)
    }

    func readURL(_ target: ModbusConnection, _ request: Request) throws {
        if !json { ModbusCLI.noteRenumberingPath(target.endpoint) }
        let client = target.client()
        let words: [UInt16]
        do throws(ModbusError) {
            words = try client.readBlocking(request.kind, unit: target.unit, address: request.address, count: request.count, timeout: target.timeout)
        } catch {
            FileHandleOutput.standardError("vouch modbus read: \(error)")
            if let hint = ModbusCLI.addressHint(error, kind: request.kind, address: request.address) { FileHandleOutput.standardError("vouch modbus read: \(hint)") }
            if target.serial != nil, ModbusCLI.classify(error) == .garbled || error.errnoName == "ETIMEDOUT" {
                FileHandleOutput.standardError("vouch modbus read: line settings used: \(target.summary)")
            }
            throw ModbusCLI.unreachable
        }
        client.close()

        let decoded = request.channel.map { RegisterDecoding.decode(words, channel: $0) }
        // The integer the agent would store: numbers only (not bits, bools in a register, or strings).
        let stored = request.channel.flatMap { channel -> Result<Int64, RegisterDecoding.DecodeFailure>? in
            guard !channel.register.isBit, channel.dataType.isNumeric, channel.dataType != .bool, case .success(let value)? = decoded else { return nil }
            return RegisterDecoding.scaled(value, channel: channel)
        }
        let orders = request.showOrders ? Self.orderRows(words) : []

        if json {
            printJSON(target, request, words, decoded: decoded, stored: stored, orders: orders)
        } else {
            printText(target, request, words, decoded: decoded, stored: stored, orders: orders)
        }
    }

    /// One byte order's reading of 2 or 4 words: as a float and as unsigned and signed integers.
    struct OrderRow {
        let order: ModbusByteOrder
        let float: Double
        let floatText: String
        let unsigned: UInt64
        let signed: Int64
    }

    static func orderRows(_ words: [UInt16]) -> [OrderRow] {
        RegisterDecoding.floatDecodings(words).map { order, value in
            let b = RegisterDecoding.bytes(words, order: order)
            let u = b.reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            let s = words.count == 2 ? Int64(Int32(bitPattern: UInt32(truncatingIfNeeded: u))) : Int64(bitPattern: u)
            return OrderRow(order: order, float: value, floatText: floatText(value, registers: words.count), unsigned: u, signed: s)
        }
    }

    /// A float as the device means it: float32 values printed as Float ("230.1", not 230.10000610351562).
    static func floatText(_ value: Double, registers: Int) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value < 0 ? "-inf" : "inf" }
        return registers == 2 ? "\(Float(value))" : "\(value)"
    }

    /// The JSON number for a float: float32 values via their shortest Float text.
    static func floatNumber(_ value: Double, registers: Int) -> CLIJSON {
        guard value.isFinite else { return .null }
        return registers == 2 ? .double(Double("\(Float(value))") ?? value) : .double(value)
    }

    func valueText(_ value: RegisterDecoding.Value, _ channel: ModbusChannelSettings) -> String {
        if case .float(let f) = value { return Self.floatText(f, registers: channel.registerCount) }
        return value.description
    }

    func printText(
        _ target: ModbusConnection, _ request: Request, _ words: [UInt16], decoded: Result<RegisterDecoding.Value, RegisterDecoding.DecodeFailure>?,
        stored: Result<Int64, RegisterDecoding.DecodeFailure>?, orders: [OrderRow]
    ) {
        let what = request.kind.isBit ? (request.kind == .coil ? "coils" : "discrete inputs") : "\(request.kind.rawValue) registers"
        let range = request.count == 1 ? "\(request.address)" : "\(request.address)–\(request.address + request.count - 1)"
        print("\(target.summary) unit \(target.unit): \(request.count == 1 ? String(what.dropLast()) : what) \(range)")
        var rows: [[String]] = request.kind.isBit ? [["address", "value"]] : [["address", "hex", "decimal", "int16"]]
        for (i, w) in words.enumerated() {
            rows.append(request.kind.isBit ? ["\(request.address + i)", "\(w)"] : ["\(request.address + i)", ModbusCLI.hex(w), "\(w)", "\(Int16(bitPattern: w))"])
        }
        ModbusCLI.table(rows, indent: "  ").forEach { print($0) }
        if let channel = request.channel, let decoded {
            let label = channel.register.isBit ? "bool" : channel.dataType == .bool ? "bool (bit \(channel.bit ?? 0))" : channel.dataType.isNumeric && channel.registerCount > 1 ? "\(channel.dataType.rawValue) \(channel.byteOrder.rawValue)" : channel.dataType.rawValue
            switch decoded {
            case .success(let value): print("\(label): \(valueText(value, channel))")
            case .failure(let f): print("\(label): cannot decode: \(f.message)")
            }
            switch stored {
            case .success(let v)?:
                let how = "raw × \(Self.number(channel.scale)) + \(Self.number(channel.offset)), \(channel.decimals) decimal\(channel.decimals == 1 ? "" : "s")"
                if request.scaled {
                    print("scaled (\(how)): \(ModbusCLI.decimal(v, exponent: channel.scaleExponent)), stored as \(v)")
                } else {
                    print("stored as: \(v)" + (channel.dataType.isFloat ? " (rounded: add --decimals to keep fractions)" : ""))
                }
            case .failure(let f)?: print("stored as: nothing — \(f.message)")
            case nil: break
            }
        } else if !request.kind.isBit && request.count == 1, let w = words.first {
            print("uint16: \(w)   int16: \(Int16(bitPattern: w))")
        }
        if !orders.isEmpty {
            let bits = words.count * 16
            print("")
            print("In all four byte orders (\(request.channel == nil ? "pick the one that matches the device's display" : "--byte-order \(request.order.rawValue) marked")):")
            var rows: [[String]] = [["order", "float\(bits)", "uint\(bits)", "int\(bits)", ""]]
            for r in orders {
                var note = r.float.isNaN ? "NaN: not a float in this order" : r.float.isInfinite ? "infinite: not a float in this order" : ""
                if request.channel != nil && r.order == request.order { note = note.isEmpty ? "← --byte-order" : note + "  ← --byte-order" }
                rows.append([r.order.rawValue, r.floatText, "\(r.unsigned)", "\(r.signed)", note])
            }
            ModbusCLI.table(rows, indent: "  ").forEach { print($0) }
        }
    }

    static func number(_ d: Double) -> String { d == d.rounded() && abs(d) < 1e15 ? String(Int64(d)) : "\(d)" }

    func printJSON(
        _ target: ModbusConnection, _ request: Request, _ words: [UInt16], decoded: Result<RegisterDecoding.Value, RegisterDecoding.DecodeFailure>?,
        stored: Result<Int64, RegisterDecoding.DecodeFailure>?, orders: [OrderRow]
    ) {
        var doc: [String: CLIJSON] = [
            "url": .string(target.endpoint.description), "unit": .int(Int64(target.unit)), "register": .string(request.kind.rawValue),
            "function": .int(Int64(request.kind.functionCode)), "address": .int(Int64(request.address)), "count": .int(Int64(request.count)),
            "words": CLIJSON.words(words), "hex": .array(words.map { .string(ModbusCLI.hex($0)) }),
        ]
        if let channel = request.channel, let decoded {
            doc["type"] = .string(channel.register.isBit ? "bool" : channel.dataType.rawValue)
            if !channel.register.isBit && channel.dataType.isNumeric && channel.dataType != .bool { doc["byte_order"] = .string(channel.byteOrder.rawValue) }
            switch decoded {
            case .success(let value):
                switch value {
                case .bool(let b): doc["value"] = .bool(b)
                case .unsigned(let u): doc["value"] = .uint(u)
                case .signed(let i): doc["value"] = .int(i)
                case .float(let f): doc["value"] = Self.floatNumber(f, registers: channel.registerCount)
                case .text(let t): doc["value"] = .string(t)
                }
                doc["display"] = .string(valueText(value, channel))
                doc["error"] = .null
            case .failure(let f):
                doc["value"] = .null
                doc["display"] = .null
                doc["error"] = .string(f.message)
            }
            switch stored {
            case .success(let v)?:
                doc["stored"] = .object([
                    "value": .int(v), "scale_exponent": .int(channel.scaleExponent), "display": .string(ModbusCLI.decimal(v, exponent: channel.scaleExponent)),
                    "scale": .double(channel.scale), "offset": .double(channel.offset), "decimals": .int(Int64(channel.decimals)), "error": .null,
                ])
            case .failure(let f)?:
                doc["stored"] = .object(["value": .null, "scale_exponent": .int(channel.scaleExponent), "display": .null, "error": .string(f.message)])
            case nil: break
            }
        }
        if !orders.isEmpty {
            doc["orders"] = .array(orders.map { r in
                .object([
                    "order": .string(r.order.rawValue), "float": Self.floatNumber(r.float, registers: words.count), "float_text": .string(r.floatText),
                    "finite": .bool(r.float.isFinite), "uint": .uint(r.unsigned), "int": .int(r.signed),
                ])
            })
        }
        print(CLIJSON.object(doc).text)
    }

    // MARK: - Every configured channel (--config)

    func readConfig(_ file: String) throws {
        let config = try ModbusCLI.loadConfig(file)
        var devices = config.modbusDevices
        if !device.isEmpty {
            let known = devices.map(\.name)
            for name in device where !known.contains(name) {
                throw ModbusCLI.usageError("modbus read", "--device \"\(name)\" is not a device of \(file); expected one of \(known.joined(separator: ", "))")
            }
            devices = devices.filter { device.contains($0.name) }
        }
        let buses = ModbusBus.group(devices)
        // Polling the config's devices while its agent polls them puts two masters on the bus.
        if !connection.direct, let pong = try? ControlSocket.ask(ControlRequest(op: "ping"), socketPath: ControlSocket.path(dataDir: config.device.dataDir), timeout: .seconds(3)),
            let owned = pong.endpoints, case let shared = buses.map(\.endpoint.description).filter(owned.contains), !shared.isEmpty
        {
            FileHandleOutput.standardError(
                "error: the agent (\(pong.device ?? "?")) is running and polls \(shared.joined(separator: ", ")): reading them now would put a second master on the bus. Read single registers through it with `vouch modbus read --url \(shared[0]) --register … --address …`, stop the agent, or add --direct.")
            throw ModbusCLI.unreachable
        }
        let logger = ModbusCLI.stderrLogger()
        let clock = SystemClock(bootCount: 0)
        let polled = devices
        let readings = ModbusCLI.waitFor { () async -> [Reading] in await ModbusBusPoller.pollOnce(polled, clock: clock, logger: logger) }
        // Config order, whatever order the buses were polled in.
        let order = Dictionary(devices.flatMap(\.channels).enumerated().map { ($1.id, $0) }, uniquingKeysWith: { a, _ in a })
        let sorted = readings.sorted { (order[$0.channel] ?? 0) < (order[$1.channel] ?? 0) }
        let deviceOf = Dictionary(devices.flatMap { d in d.channels.map { ($0.id, d.name) } }, uniquingKeysWith: { a, _ in a })
        let failed = sorted.filter { $0.quality != .ok }

        func display(_ r: Reading) -> String? {
            guard r.quality == .ok else { return nil }
            if let text = r.text { return text }
            return r.value.map { ModbusCLI.decimal($0, exponent: r.scaleExponent) }
        }
        if json {
            let rows: [CLIJSON] = sorted.map { r in
                var code: String?
                var message: String?
                if case .commError(let c, let m) = r.quality {
                    code = c
                    message = m
                }
                return .object([
                    "channel": .string(r.channel), "device": .optional(deviceOf[r.channel]), "value": r.value.map { .int($0) } ?? .null,
                    "scale_exponent": .int(r.scaleExponent), "display": .optional(display(r)), "unit": .string(r.unit),
                    "quality": .string(code == nil ? "ok" : "error"), "code": .optional(code), "message": .optional(message),
                    "words": CLIJSON.words(r.rawWords),
                ])
            }
            print(CLIJSON.object(["channels": .array(rows), "ok": .int(Int64(sorted.count - failed.count)), "failed": .int(Int64(failed.count))]).text)
        } else {
            var rows = [["channel", "value", "quality", "raw"]]
            for r in sorted {
                var quality = "ok"
                if case .commError(let code, _) = r.quality { quality = code }
                let value = display(r).map { r.text != nil ? "\"\($0)\"" : $0 + (r.unit.isEmpty ? "" : " \(r.unit)") } ?? "—"
                rows.append([r.channel, value, quality, r.rawWords.isEmpty ? "—" : r.rawWords.map(ModbusCLI.hex).joined(separator: " ")])
            }
            ModbusCLI.table(rows).forEach { print($0) }
            if !failed.isEmpty {
                print("")
                for r in failed {
                    if case .commError(_, let message) = r.quality { print("\(r.channel): \(message)") }
                }
            }
            print("")
            print("\(sorted.count) channel(s) of \(devices.count) device(s): \(sorted.count - failed.count) ok, \(failed.count) failed")
        }
        if !failed.isEmpty { throw ModbusCLI.unreachable }
    }
}
