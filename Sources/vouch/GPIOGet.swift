import ArgumentParser
import Foundation
import VouchCore
import VouchGPIO

struct GPIOGet: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "get",
        abstract: "Read GPIO lines once (1 = active).",
        discussion: """
            Examples:
              vouch gpio get door_contact
              vouch gpio get GPIO17 GPIO27 --bias pull-up --active-low
              vouch gpio get --chip vouch-sim run pulse --json
            """)

    @OptionGroup var options: GPIOLineOptions

    @Flag(help: "One JSON document on stdout.")
    var json = false

    func run() throws {
        let gpio = LibgpiodV1()
        let settings = try options.settings()
        let values: [Int]
        let chip: String
        do throws(GPIOError) {
            chip = try options.resolveChip(gpio)
            let inputs = try gpio.requestInputs(chip: chip, lines: settings, consumer: "vouch-cli")
            defer { inputs.close() }
            values = try inputs.values()
        } catch {
            throw GPIOCLI.fail(error)
        }
        if json {
            let doc: [String: Any] = ["chip": chip, "lines": zip(options.lines, values).map { ["name": $0, "value": $1] }]
            print(String(decoding: try JSONSerialization.data(withJSONObject: doc, options: [.sortedKeys]), as: UTF8.self))
        } else {
            for (name, value) in zip(options.lines, values) { print("\(name)=\(value)") }
        }
    }
}
