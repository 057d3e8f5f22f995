import ArgumentParser
import Foundation
import VouchCore
import VouchGPIO

struct GPIOCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gpio",
        abstract: "The technician's GPIO tools: list chips and lines, read lines, watch edges.",
        discussion: """
            Lines are named as the board's device tree names them (`vouch gpio list` shows them); a line is \
            found on whichever chip has it, or on --chip LABEL. Reading a line requests it for a moment: \
            a line the agent holds is busy, and the error names its holder.

            Exit status: 0 success; 64 a usage error; 69 a chip or line that is missing or busy; 77 no permission (join group gpio).

            Examples:
              vouch gpio list
              vouch gpio list --chip pinctrl-bcm2711 --json
              vouch gpio get GPIO17 GPIO27 --bias pull-up
              vouch gpio watch door_contact --active-low --debounce 20ms --for 30s
            """,
        subcommands: [GPIOList.self, GPIOGet.self, GPIOWatch.self])
}

/// Options shared by `get` and `watch`: which lines and how to request them.
struct GPIOLineOptions: ParsableArguments {
    @Argument(help: "Line names, e.g. GPIO17 door_contact.")
    var lines: [String]

    @Option(help: ArgumentHelp("The chip's label; default: the chip that has the lines.", valueName: "label"))
    var chip: String?

    @Option(help: ArgumentHelp("Bias: as-is, disabled, pull-up or pull-down.", valueName: "bias"))
    var bias: String = "as-is"

    @Flag(help: "Active-low: a contact that pulls the line to ground reads as 1.")
    var activeLow = false

    func validate() throws { _ = try settings() }

    func settings() throws -> [GPIOInputSettings] {
        guard let b = GPIOBias(rawValue: bias.lowercased()) else {
            throw ValidationError("--bias \"\(bias)\" is not a bias; expected as-is, disabled, pull-up or pull-down")
        }
        guard !lines.isEmpty else { throw ValidationError("name at least one line (see `vouch gpio list`)") }
        return lines.map { GPIOInputSettings(line: $0, bias: b, activeLow: activeLow) }
    }

    /// The chip holding every named line: --chip, or the one chip that has them all.
    func resolveChip(_ gpio: any GPIOBackend) throws(GPIOError) -> String {
        if let chip { return chip }
        return try gpio.chip(having: lines)
    }
}

enum GPIOCLI {
    static let unavailable = ExitCode(69)
    /// EX_NOPERM: the fix is a group membership, not a wire.
    static let noPermission = ExitCode(77)

    static func fail(_ error: GPIOError) -> ExitCode {
        FileHandleOutput.standardError("error: \(error)")
        return error.code == GPIOError.permission ? noPermission : unavailable
    }

    /// "12.345678" seconds of CLOCK_BOOTTIME.
    static func seconds(_ ns: Int64) -> String { String(format: "%.6f", Double(ns) / 1e9) }
}
