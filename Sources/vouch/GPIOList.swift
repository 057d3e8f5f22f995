import ArgumentParser
import Foundation
import VouchCore
import VouchGPIO

struct GPIOList: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List GPIO chips and their lines: offset, name, direction, bias, active-low, consumer.",
        discussion: """
            Examples:
              vouch gpio list
              vouch gpio list --chip vouch-sim
              vouch gpio list --json | jq '.chips[].lines[] | select(.used)'
            """)

    @Option(help: ArgumentHelp("Only the chip with this label.", valueName: "label"))
    var chip: String?

    @Flag(help: "One JSON document on stdout.")
    var json = false

    func run() throws {
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
        if json {
            let doc: [String: Any] = [
                "libgpiod": GPIOLibrary.version,
                "chips": result.map { c, lines in
                    [
                        "path": c.path, "name": c.name, "label": c.label, "lines": lines.map { l in
                            [
                                "offset": l.offset, "name": l.name, "direction": l.isOutput ? "output" : "input", "active_low": l.activeLow,
                                "bias": l.bias.rawValue, "used": l.isUsed, "consumer": l.consumer as Any? ?? NSNull(),
                            ] as [String: Any]
                        },
                    ] as [String: Any]
                },
            ]
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
                let columns = ["  \(l.offset)".padding(toLength: 6, withPad: " ", startingAt: 0), name.padding(toLength: 16, withPad: " ", startingAt: 0), (l.isOutput ? "output" : "input").padding(toLength: 7, withPad: " ", startingAt: 0), l.bias.rawValue.padding(toLength: 10, withPad: " ", startingAt: 0), (l.activeLow ? "active-low" : "").padding(toLength: 11, withPad: " ", startingAt: 0), used]
                print(columns.joined(separator: " ").trimmingCharacters(in: .whitespaces).isEmpty ? "" : String(columns.joined(separator: " ").reversed().drop(while: { $0 == " " }).reversed()))
            }
        }
    }
}
