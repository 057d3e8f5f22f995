import VouchCore

/// What Vouch needs from a GPIO library. ``LibgpiodV1`` implements it with libgpiod 1.6 (Debian 12);
/// a libgpiod 2.x backend (Debian 13, Ubuntu 24.04, Raspberry Pi OS trixie) can be added beside it
/// without touching callers. Chips are found by label and lines by name, never by number: numbers
/// change between kernels and boards, names are what the board's device tree says.
public protocol GPIOBackend: Sendable {
    /// Every chip the kernel exposes.
    func chips() throws(GPIOError) -> [GPIOChipInfo]
    /// Every line of the chip with this label.
    func lines(chip label: String) throws(GPIOError) -> [GPIOLineInfo]
    /// Requests lines of one chip as inputs with both-edge events and kernel timestamps.
    func requestInputs(chip label: String, lines: [GPIOInputSettings], consumer: String) throws(GPIOError) -> any GPIOInputs
    /// Requests one line as an output, driven to `initial` at once.
    func requestOutput(chip label: String, line: String, activeLow: Bool, initial: Bool, consumer: String) throws(GPIOError) -> any GPIOOutput
}

extension GPIOBackend {
    /// The chip that has every one of these lines (lines are named by the board; numbers move). The
    /// error lists the names each chip does have.
    public func chip(having lines: [String]) throws(GPIOError) -> String {
        let chips = try chips()
        var names: [String: Set<String>] = [:]
        for c in chips { names[c.label] = Set(try self.lines(chip: c.label).map(\.name)) }
        if let found = chips.first(where: { c in lines.allSatisfy { names[c.label]?.contains($0) == true } }) { return found.label }
        let missing = lines.filter { line in !chips.contains { names[$0.label]?.contains(line) == true } }
        if missing.isEmpty {
            throw GPIOError(code: GPIOError.lineNotFound, message: "no single chip has all of \(lines.joined(separator: ", ")): name the chip of each")
        }
        let listing = chips.map { "\($0.label): \((names[$0.label] ?? []).filter { !$0.isEmpty }.sorted().prefix(40).joined(separator: ", "))" }.joined(separator: "; ")
        throw GPIOError(code: GPIOError.lineNotFound, message: "no chip has a line named \(missing.map { "\"\($0)\"" }.joined(separator: ", ")); \(chips.isEmpty ? "there are no GPIO chips" : listing)")
    }
}

/// One GPIO chip as the kernel presents it (`/dev/gpiochipN`).
public struct GPIOChipInfo: Sendable, Equatable {
    public var path: String
    public var name: String
    /// The chip's label, which boards use to tell chips apart (e.g. "pinctrl-bcm2711").
    public var label: String
    public var lineCount: Int

    public init(path: String, name: String, label: String, lineCount: Int) {
        self.path = path
        self.name = name
        self.label = label
        self.lineCount = lineCount
    }
}

public struct GPIOLineInfo: Sendable, Equatable {
    public var offset: Int
    /// The kernel's name for the line; empty when the board's device tree names none.
    public var name: String
    public var isOutput: Bool
    public var activeLow: Bool
    public var bias: GPIOBias
    /// Who holds the line ("vouch", "gpioset", a kernel driver); nil when free.
    public var consumer: String?
    public var isUsed: Bool

    public init(offset: Int, name: String, isOutput: Bool, activeLow: Bool, bias: GPIOBias, consumer: String?, isUsed: Bool) {
        self.offset = offset
        self.name = name
        self.isOutput = isOutput
        self.activeLow = activeLow
        self.bias = bias
        self.consumer = consumer
        self.isUsed = isUsed
    }
}

public struct GPIOInputSettings: Sendable, Equatable {
    public var line: String
    public var bias: GPIOBias
    /// Active-low: a contact that pulls the line to ground reads as 1 (active).
    public var activeLow: Bool

    public init(line: String, bias: GPIOBias = .asIs, activeLow: Bool = false) {
        self.line = line
        self.bias = bias
        self.activeLow = activeLow
    }
}

/// One edge as the kernel saw it.
public struct GPIOEdge: Sendable, Equatable {
    /// Index of the line in the request.
    public var line: Int
    /// Rising means the line became active (high, or low for an active-low line).
    public var rising: Bool
    /// The kernel's timestamp, on CLOCK_BOOTTIME like every monotonic time in Vouch's records.
    public var monoNs: Int64

    public init(line: Int, rising: Bool, monoNs: Int64) {
        self.line = line
        self.rising = rising
        self.monoNs = monoNs
    }
}

/// Lines requested as inputs. Used by one thread at a time (the watcher); `close` releases them.
public protocol GPIOInputs: AnyObject, Sendable {
    var lineNames: [String] { get }
    /// Current levels (1 active, 0 inactive), in request order.
    func values() throws(GPIOError) -> [Int]
    /// Waits up to `timeout` for edges on any line and returns those queued, in kernel order per line.
    func waitForEdges(timeout: Duration) throws(GPIOError) -> [GPIOEdge]
    func close()
}

public protocol GPIOOutput: AnyObject, Sendable {
    var lineName: String { get }
    func set(_ active: Bool) throws(GPIOError)
    /// Drives the line inactive and releases it.
    func close()
}

/// A GPIO failure a technician can act on. `code` is stable and goes into evidence.
public struct GPIOError: Error, Sendable, Equatable, CustomStringConvertible {
    public let code: String
    public let message: String

    public init(code: String, message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }

    public static let chipNotFound = "E_GPIO_CHIP_NOT_FOUND"
    public static let lineNotFound = "E_GPIO_LINE_NOT_FOUND"
    public static let busy = "E_GPIO_BUSY"
    public static let permission = "E_GPIO_EACCES"
    public static let io = "E_GPIO_IO"
}
