/// A board Vouch runs on: its GPIO chips and the named lines on them, and its serial ports, as
/// `boards/<name>/board.toml` describes them. Only ``BoardLoader`` makes one, after every check passed.
///
/// Lines are known by the kernel's name for them (the device tree's `gpio-line-names`, what
/// `gpioinfo` prints) and chips by their label, never by number: chip numbers move between kernels
/// (a Raspberry Pi 5's header chip was gpiochip4, then gpiochip0), names are what the board's maker
/// published. Offsets and header pins are recorded for the technician holding a wire, not to find lines.
public struct Board: Sendable, Equatable {
    /// A GPIO controller, as `gpiodetect` shows it: `gpiochip0 [pinctrl-bcm2711] (58 lines)`.
    public struct Chip: Sendable, Equatable {
        /// The label in brackets; stable across kernels, unlike the `gpiochipN` number.
        public let label: String
        /// What the chip is and what on the board hangs off it.
        public let description: String
    }

    /// Which ways a line can be used on this board (the wiring, not only the silicon, decides).
    public enum Direction: String, Sendable, Equatable, CaseIterable {
        case input
        case output
        case both
    }

    public struct Line: Sendable, Equatable {
        /// Exactly the kernel's name for the line, as `gpioinfo` shows it.
        public let name: String
        /// Label of the ``Chip`` the line is on.
        public let chip: String
        /// The line's offset on its chip, as the board's documentation gives it.
        public let offset: Int
        /// Pin number on the board's 40-pin header, where the line is on one.
        public let headerPin: Int?
        public let direction: Direction
        /// Whether pull-up / pull-down can be set from software (a `bias` in the config takes effect).
        public let biasSupported: Bool
        /// What a technician must know before wiring it ("3.3 V only", "1.8 kΩ pull-up on the board").
        public let notes: String
        /// Names the same line has under other kernels (e.g. a mainline device tree instead of the vendor's).
        public let otherNames: [String]

        public var canRead: Bool { direction != .output }
        public var canDrive: Bool { direction != .input }
    }

    public struct SerialPort: Sendable, Equatable {
        /// The device node, e.g. `/dev/ttyAMA0`.
        public let path: String
        /// A name that survives renumbering (`/dev/serial0`, `/dev/serial/by-id/…`), where there is one.
        public let preferredPath: String?
        public let description: String
        /// True when the port drives an RS-485 bus as it is; false when it needs a transceiver first.
        public let rs485: Bool

        /// What a configuration should name: the stable path when the board has one.
        public var pathForConfig: String { preferredPath ?? path }
    }

    /// The board folder's name (`rpi4`, `sim`); configurations refer to the board by it.
    public let name: String
    public let description: String
    public let chips: [Chip]
    public let lines: [Line]
    public let serialPorts: [SerialPort]
    /// The `board.toml` it was read from.
    public let file: String

    /// The line with this name, or with it among its ``Line/otherNames``.
    public func line(named name: String) -> Line? {
        lines.first { $0.name == name } ?? lines.first { $0.otherNames.contains(name) }
    }

    /// The line on this pin of the 40-pin header.
    public func line(atHeaderPin pin: Int) -> Line? {
        lines.first { $0.headerPin == pin }
    }

    /// Lines on one chip, in offset order.
    public func lines(onChip label: String) -> [Line] {
        lines.filter { $0.chip == label }.sorted { $0.offset < $1.offset }
    }
}
