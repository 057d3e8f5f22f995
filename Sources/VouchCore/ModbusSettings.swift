/// Modbus configuration, validated by ``ConfigLoader``: where devices are, how their registers map to
/// channels. The vocabulary follows Telegraf's inputs.modbus where it has a word for a thing.

/// The four Modbus data tables. Coils and discrete inputs are bits; holding and input registers are 16-bit words.
public enum ModbusRegisterKind: String, Sendable, Equatable, CaseIterable, Comparable {
    case coil, discrete, holding, input

    /// The read function code: 1 read coils, 2 read discrete inputs, 3 read holding, 4 read input registers.
    public var functionCode: Int {
        switch self {
        case .coil: 1
        case .discrete: 2
        case .holding: 3
        case .input: 4
        }
    }

    public var isBit: Bool { self == .coil || self == .discrete }

    /// The protocol's limit on one read request: 2000 bits (FC 1/2) or 125 registers (FC 3/4).
    public var maxPerRequest: Int { isBit ? 2000 : 125 }

    /// Also accepts Telegraf's names ("coils", "discrete_inputs", "holding_registers", "input_registers").
    public init?(configName: String) {
        let aliases = [
            "coils": "coil", "discrete_input": "discrete", "discrete_inputs": "discrete", "holding_register": "holding",
            "holding_registers": "holding", "input_register": "input", "input_registers": "input",
        ]
        let lower = configName.lowercased()
        self.init(rawValue: aliases[lower] ?? lower)
    }

    public static func < (a: Self, b: Self) -> Bool { a.functionCode < b.functionCode }
}

public enum ModbusDataType: String, Sendable, Equatable, CaseIterable {
    case bool, uint16, int16, uint32, int32, uint64, int64, float32, float64, string

    /// Registers a value occupies; strings say their own length, a bool in a register takes one.
    public var fixedRegisterCount: Int? {
        switch self {
        case .bool, .uint16, .int16: 1
        case .uint32, .int32, .float32: 2
        case .uint64, .int64, .float64: 4
        case .string: nil
        }
    }

    public var isFloat: Bool { self == .float32 || self == .float64 }
    public var isNumeric: Bool { self != .string }

    /// Also accepts short names (u16 … f64, bit) and Telegraf's upper-case ones (INT16, FLOAT32, …).
    public init?(configName: String) {
        let aliases = [
            "bit": "bool", "boolean": "bool", "u16": "uint16", "i16": "int16", "u32": "uint32", "i32": "int32", "u64": "uint64", "i64": "int64",
            "f32": "float32", "f64": "float64", "float": "float32", "double": "float64", "str": "string",
        ]
        let lower = configName.lowercased()
        self.init(rawValue: aliases[lower] ?? lower)
    }
}

/// Order of the bytes of a value, A being the most significant. ABCD is big-endian (Modbus's own order);
/// CDAB swaps 16-bit words (low word first, as many PLCs), BADC swaps the bytes inside each word, DCBA
/// does both (little-endian). For 64-bit values the word swap reverses all four words; for 16-bit values
/// only the byte swap applies.
public enum ModbusByteOrder: String, Sendable, Equatable, CaseIterable {
    case abcd = "ABCD", cdab = "CDAB", badc = "BADC", dcba = "DCBA"
    public var swapsWords: Bool { self == .cdab || self == .dcba }
    public var swapsBytes: Bool { self == .badc || self == .dcba }
}

public enum ModbusEndpoint: Sendable, Hashable, CustomStringConvertible {
    case tcp(host: String, port: Int)
    /// A serial port: prefer /dev/serial/by-id/… paths, which survive USB adapters being renumbered.
    case rtu(path: String)

    public var description: String {
        switch self {
        case .tcp(let host, let port): "tcp://\(host):\(port)"
        case .rtu(let path): "rtu://\(path)"
        }
    }

    public var isSerial: Bool { if case .rtu = self { true } else { false } }
}

/// Line settings of a serial port. Every device on one port must agree on them.
public struct SerialSettings: Sendable, Hashable {
    public enum Parity: String, Sendable, Hashable, CaseIterable {
        case none, even, odd
        /// libmodbus's letter.
        public var letter: Character { self == .none ? "N" : self == .even ? "E" : "O" }
    }

    /// Driving RTS around a frame, for RS-485 transceivers whose direction pin is wired to RTS.
    public enum RTS: String, Sendable, Hashable, CaseIterable {
        case none, up, down
    }

    public var baudRate: Int
    public var parity: Parity
    public var dataBits: Int
    public var stopBits: Int
    /// Put the port in the kernel's RS-485 mode (TIOCSRS485). Most USB RS-485 adapters switch direction
    /// in hardware and need neither this nor `rts`.
    public var rs485: Bool
    public var rts: RTS

    public init(baudRate: Int = 9600, parity: Parity = .none, dataBits: Int = 8, stopBits: Int = 1, rs485: Bool = false, rts: RTS = .none) {
        self.baudRate = baudRate
        self.parity = parity
        self.dataBits = dataBits
        self.stopBits = stopBits
        self.rs485 = rs485
        self.rts = rts
    }

    /// "9600 8N1".
    public var summary: String { "\(baudRate) \(dataBits)\(parity.letter)\(stopBits)\(rs485 ? " RS-485" : "")\(rts == .none ? "" : " RTS \(rts.rawValue)")" }
}

public struct ModbusDeviceSettings: Sendable, Equatable {
    public var name: String
    public var endpoint: ModbusEndpoint
    /// Line settings; nil for TCP.
    public var serial: SerialSettings?
    public var unitId: Int
    public var responseTimeout: Duration
    /// Longest silence allowed between two bytes of one answer (RTU); nil keeps libmodbus's 0.5 s.
    public var byteTimeout: Duration?
    public var pollInterval: Duration
    /// Quiet time after each request to this device, for devices that need a rest between frames.
    public var pauseBetweenRequests: Duration
    /// Unused registers (or bits) the planner may read across to join two channels into one request.
    public var maxGap: Int
    /// Most registers one read may cover: the protocol's 125, or less for devices with a smaller
    /// limit (their manuals say; a longer read gets an exception).
    public var maxRegisters: Int
    /// The `boards/modbus` template the channels came from, if any.
    public var template: String?
    public var channels: [ModbusChannelSettings]

    public static let defaultMaxGap = 16
    public static let protocolMaxRegisters = 125

    public init(
        name: String, endpoint: ModbusEndpoint, serial: SerialSettings? = nil, unitId: Int, responseTimeout: Duration, byteTimeout: Duration? = nil,
        pollInterval: Duration, pauseBetweenRequests: Duration = .zero, maxGap: Int = ModbusDeviceSettings.defaultMaxGap,
        maxRegisters: Int = ModbusDeviceSettings.protocolMaxRegisters, template: String? = nil, channels: [ModbusChannelSettings]
    ) {
        self.maxRegisters = maxRegisters
        self.name = name
        self.endpoint = endpoint
        self.serial = serial
        self.unitId = unitId
        self.responseTimeout = responseTimeout
        self.byteTimeout = byteTimeout
        self.pollInterval = pollInterval
        self.pauseBetweenRequests = pauseBetweenRequests
        self.maxGap = maxGap
        self.template = template
        self.channels = channels
    }
}

public struct ModbusChannelSettings: Sendable, Equatable {
    /// `device.channel`, unique in the config; names the channel in every record.
    public var id: String
    public var register: ModbusRegisterKind
    /// 0-based, as on the wire (register 40001 of a manual is holding address 0).
    public var address: Int
    public var dataType: ModbusDataType
    public var byteOrder: ModbusByteOrder
    /// For `bool` in a holding/input register: which bit (0 = least significant).
    public var bit: Int?
    /// For `string`: how many registers (two characters each).
    public var length: Int?
    /// Engineering value = raw × scale + offset.
    public var scale: Double
    public var offset: Double
    /// Decimal places kept in evidence: stored integer = round(value × 10^decimals).
    public var decimals: Int
    public var unit: String

    /// The decimal exponent of stored values (`-decimals`).
    public var scaleExponent: Int64 { Int64(-decimals) }

    /// Registers (or bits, for coils and discrete inputs) this channel occupies.
    public var registerCount: Int {
        if register.isBit { return 1 }
        return dataType.fixedRegisterCount ?? max(1, length ?? 1)
    }

    public init(
        id: String, register: ModbusRegisterKind, address: Int, dataType: ModbusDataType, byteOrder: ModbusByteOrder = .abcd, bit: Int? = nil, length: Int? = nil,
        scale: Double = 1, offset: Double = 0, decimals: Int = 0, unit: String = ""
    ) {
        self.id = id
        self.register = register
        self.address = address
        self.dataType = dataType
        self.byteOrder = byteOrder
        self.bit = bit
        self.length = length
        self.scale = scale
        self.offset = offset
        self.decimals = decimals
        self.unit = unit
    }
}
