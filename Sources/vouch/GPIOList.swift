import ArgumentParser
import Foundation
import VouchCore
import VouchGPIO

struct GPIOList: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List GPIO chips and their lines: offset, name, direction, bias, active-low, consumer.",
        discussion: """
            With --board, each line the board file knows gets its header pin and wiring notes, and the board's
            chips and lines this gateway does not have are listed at the end: a board file that does not fit
            the running kernel (other names, another chip label) shows there before a config relies on it.

            Examples:
              vouch gpio list
              vouch gpio list --chip vouch-sim
              vouch gpio list --board rpi4
              vouch gpio list --board sim --boards ./boards --json
              vouch gpio list --json | jq '.chips[].lines[] | select(.used)'
            """)

    @Option(help: ArgumentHelp("Only the chip with this label.", valueName: "label"))
    var chip: String?

    @Option(help: ArgumentHelp("Compare with this board's file (boards/NAME/board.toml).", valueName: "name"))
    var board: String?

    @Option(help: ArgumentHelp("Where board folders are (default /etc/vouch/boards, then /usr/share/vouch/boards).", valueName: "dir"))
    var boards: String?

    @Flag(help: "One JSON document on stdout.")
    var json = false

    func run() throws {
        var described: Board?
        if let board {
            do { described = try BoardLoader.load(name: board, directories: boards.map { [$0] } ?? BoardLoader.defaultDirectories) } catch {
                FileHandleOutput.standardError("\(error)")
                throw ExitCode(78)
            }
        }
        let gpio = LibgpiodV1()
        var result: [(GPIOChipInfo, [GPIOLineInfo])] = []
        do throws(GPIOError) {
            let chips = try gpio.chips()
            if let chip, !chips.contains(where: { $0.label == chip }) {
                throw GPIOError(code: GPIOError.chipNotFound, message: "no GPIO chip labelled \"\(chip)\"; chips here: \(chips.map { "\"\($0.label)\"" }.joined(separator: ", "))")
            }
            for c in chips where chip == nil || c.label == chip { result.append((c, try gpio.lines(chip: c.label))) }
        } catch {
            throw GPIOCLI.fail(error)
        }
        let comparison = described.map { BoardComparison(board: $0, found: result, onlyChip: chip) }
        if json {
            var doc: [String: Any] = [
                "libgpiod": GPIOLibrary.version,
                "chips": result.map { c, lines in
                    [
                        "path": c.path, "name": c.name, "label": c.label, "lines": lines.map { l in
                            [
                                "offset": l.offset, "name": l.name, "direction": l.isOutput ? "output" : "input", "active_low": l.activeLow,
                                "bias": l.bias.rawValue, "used": l.isUsed, "consumer": l.consumer as Any? ?? NSNull(),
                                "header_pin": comparison?.line(c.label, l.name)?.headerPin as Any? ?? NSNull(),
                            ] as [String: Any]
                        },
                    ] as [String: Any]
                },
            ]
            if let comparison {
                doc["board"] = [
                    "name": comparison.board.name, "file": comparison.board.file,
                    "missing_chips": comparison.missingChips.map(\.label),
                    "missing_lines": comparison.missingLines.map { ["name": $0.name, "chip": $0.chip, "offset": $0.offset] as [String: Any] },
                ] as [String: Any]
            }
            let data = try JSONSerialization.data(withJSONObject: doc, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
            return
        }
        if result.isEmpty { print("no GPIO chips (libgpiod \(GPIOLibrary.version))") }
        for (c, lines) in result {
            print("\(c.name) \"\(c.label)\" \(c.path), \(c.lineCount) lines")
            for l in lines {
                let name = l.name.isEmpty ? "(unnamed)" : l.name
                let used = l.consumer.map { "used by \"\($0)\"" } ?? (l.isUsed ? "used" : "")
                let pin = comparison?.line(c.label, l.name)?.headerPin.map { "pin \($0)" } ?? ""
                let columns = ["  \(l.offset)".padding(toLength: 6, withPad: " ", startingAt: 0), name.padding(toLength: 16, withPad: " ", startingAt: 0), (l.isOutput ? "output" : "input").padding(toLength: 7, withPad: " ", startingAt: 0), l.bias.rawValue.padding(toLength: 10, withPad: " ", startingAt: 0), (l.activeLow ? "active-low" : "").padding(toLength: 11, withPad: " ", startingAt: 0), pin.padding(toLength: comparison == nil ? 0 : 7, withPad: " ", startingAt: 0), used]
                print(columns.joined(separator: " ").trimmingCharacters(in: .whitespaces).isEmpty ? "" : String(columns.joined(separator: " ").reversed().drop(while: { $0 == " " }).reversed()))
            }
        }
        if let comparison {
            print(comparison.summary)
        }
    }
}

/// What a board file says against what the running kernel shows.
struct BoardComparison {
    let board: Board
    /// The board's chips no chip here is labelled as.
    let missingChips: [Board.Chip]
    /// The board's lines not on their chip here under their name or another of theirs.
    let missingLines: [Board.Line]
    private let byChipAndName: [String: Board.Line]

    /// `onlyChip`: compare only what the board has on that chip (the listing is limited to it).
    init(board: Board, found: [(GPIOChipInfo, [GPIOLineInfo])], onlyChip: String? = nil) {
        self.board = board
        var index: [String: Board.Line] = [:]
        for line in board.lines {
            for name in [line.name] + line.otherNames { index["\(line.chip)\u{0}\(name)"] = line }
        }
        byChipAndName = index
        let labels = Set(found.map(\.0.label))
        missingChips = board.chips.filter { !labels.contains($0.label) && (onlyChip == nil || $0.label == onlyChip) }
        let present = Set(found.flatMap { chip, lines in lines.map { "\(chip.label)\u{0}\($0.name)" } })
        missingLines = board.lines.filter { line in
            (onlyChip == nil || line.chip == onlyChip) && !([line.name] + line.otherNames).contains { present.contains("\(line.chip)\u{0}\($0)") }
        }
    }

    /// The board's line with this name on the chip with this label.
    func line(_ chip: String, _ name: String) -> Board.Line? { byChipAndName["\(chip)\u{0}\(name)"] }

    var summary: String {
        if missingChips.isEmpty && missingLines.isEmpty {
            return "board \(board.name): every chip and line of \(board.file) is here"
        }
        var parts: [String] = []
        if !missingChips.isEmpty { parts.append("no chip labelled \(missingChips.map { "\"\($0.label)\"" }.joined(separator: ", "))") }
        let onPresentChips = missingLines.filter { line in !missingChips.contains { $0.label == line.chip } }
        if !onPresentChips.isEmpty { parts.append("no line \(onPresentChips.map { "\($0.name) (\($0.chip) offset \($0.offset))" }.joined(separator: ", "))") }
        return "board \(board.name) does not fit this gateway: \(parts.joined(separator: "; ")). Is it the right board, and does \(board.file) name what `vouch gpio list` shows?"
    }
}
