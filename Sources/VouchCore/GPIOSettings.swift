/// GPIO configuration, validated by ``ConfigLoader``: which lines the agent watches and drives.

public enum GPIOBias: String, Sendable, Equatable, CaseIterable {
    /// Leave the line's bias as it is (firmware or device tree decides).
    case asIs = "as-is"
    case disabled
    case pullUp = "pull-up"
    case pullDown = "pull-down"
}

/// What a watched line's readings are.
public enum GPIOSignal: String, Sendable, Equatable, CaseIterable {
    /// 0/1 at every sample, and a reading at every (debounced) change: doors, motion, tamper switches.
    case level
    /// Running total of pulses (rising edges) at every sample: production counters, flow meters.
    case counter
    /// Share of the last sample interval the line was active, in per mille: a machine's run signal.
    case duty

    public var unit: String {
        switch self {
        case .level: ""
        case .counter: "pulses"
        case .duty: "1"
        }
    }

    /// Decimal exponent of stored values: duty is stored in thousandths.
    public var scaleExponent: Int64 { self == .duty ? -3 : 0 }
}

public struct GPIOInputChannelSettings: Sendable, Equatable {
    /// `gpio.NAME`: names the channel in every record.
    public var id: String
    /// The kernel's line name (as `vouch gpio list` shows it).
    public var line: String
    /// The chip's label; nil: whichever chip has the line.
    public var chip: String?
    public var bias: GPIOBias
    public var activeLow: Bool
    public var debounce: Duration
    public var signal: GPIOSignal
    public var sampleInterval: Duration

    public init(
        id: String, line: String, chip: String? = nil, bias: GPIOBias = .asIs, activeLow: Bool = false, debounce: Duration = .zero, signal: GPIOSignal = .level,
        sampleInterval: Duration = .seconds(1)
    ) {
        self.id = id
        self.line = line
        self.chip = chip
        self.bias = bias
        self.activeLow = activeLow
        self.debounce = debounce
        self.signal = signal
        self.sampleInterval = sampleInterval
    }
}

/// An output the agent drives. `running`: active while the agent runs (a status LED), inactive once
/// it stops, however it stops cleanly.
public struct GPIOOutputSettings: Sendable, Equatable {
    public enum Role: String, Sendable, Equatable, CaseIterable {
        case running
    }

    public var name: String
    public var line: String
    public var chip: String?
    public var activeLow: Bool
    public var role: Role

    public init(name: String, line: String, chip: String? = nil, activeLow: Bool = false, role: Role = .running) {
        self.name = name
        self.line = line
        self.chip = chip
        self.activeLow = activeLow
        self.role = role
    }
}

public struct GPIOSettings: Sendable, Equatable {
    public var inputs: [GPIOInputChannelSettings]
    public var outputs: [GPIOOutputSettings]
    /// The board `[gpio] board` names; every line above was checked against it. Nil: lines are
    /// found on whatever chips the gateway has, unchecked until the agent starts.
    public var board: Board?

    public init(inputs: [GPIOInputChannelSettings] = [], outputs: [GPIOOutputSettings] = [], board: Board? = nil) {
        self.inputs = inputs
        self.outputs = outputs
        self.board = board
    }
}

/// What the pipeline needs to know of any channel, Modbus or GPIO.
public struct ChannelDescriptor: Sendable, Equatable {
    public var id: String
    public var unit: String
    public var scaleExponent: Int64
    /// False for text channels (a meter's serial number): not summarised.
    public var isNumeric: Bool
    /// How often it is sampled.
    public var period: Duration

    public init(id: String, unit: String, scaleExponent: Int64, isNumeric: Bool, period: Duration) {
        self.id = id
        self.unit = unit
        self.scaleExponent = scaleExponent
        self.isNumeric = isNumeric
        self.period = period
    }
}
