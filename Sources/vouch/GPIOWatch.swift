import ArgumentParser
import Synchronization
import Foundation
import VouchCore
import VouchGPIO

struct GPIOWatch: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "watch",
        abstract: "Print edges on GPIO lines as they happen, with the kernel's timestamps.",
        discussion: """
            Each edge: the kernel timestamp (seconds of CLOCK_BOOTTIME), the wall-clock time, the line and \
            rising/falling (rising = became active). With --debounce, only changes that stay for that long. \
            A lost edge (the kernel queues 16 per line) is reported, never hidden. Ctrl-C or --for ends it \
            with a count per line.

            Examples:
              vouch gpio watch door_contact --active-low
              vouch gpio watch run pulse --for 30s
              vouch gpio watch door_contact --debounce 20ms --json
            """)

    @OptionGroup var options: GPIOLineOptions

    @Option(name: .customLong("for"), help: ArgumentHelp("Stop after this long, e.g. 30s or 5m (default: until Ctrl-C).", valueName: "duration"))
    var duration: String?

    @Option(help: ArgumentHelp("Only report changes that last this long, e.g. 20ms (0: every edge).", valueName: "duration"))
    var debounce: String = "0ms"

    @Flag(help: "One JSON object per edge on stdout, then a summary object.")
    var json = false

    static func parse(_ text: String, _ option: String) throws -> Int64 {
        let units: [(String, Int64)] = [("ms", 1_000_000), ("s", 1_000_000_000), ("m", 60_000_000_000), ("h", 3_600_000_000_000)]
        for (suffix, ns) in units where text.hasSuffix(suffix) {
            if let n = Int64(text.dropLast(suffix.count)), n >= 0 { return n * ns }
        }
        throw ValidationError("\(option) \"\(text)\" is not a duration; expected e.g. 20ms, 30s, 5m")
    }

    func validate() throws {
        _ = try Self.parse(debounce, "--debounce")
        if let duration { _ = try Self.parse(duration, "--for") }
    }

    func run() throws {
        let settings = try options.settings()
        let stableNs = try Self.parse(debounce, "--debounce")
        let forNs = try duration.map { try Self.parse($0, "--for") }
        let gpio = LibgpiodV1()
        let inputs: any GPIOInputs
        let chip: String
        do throws(GPIOError) {
            chip = try options.resolveChip(gpio)
            inputs = try gpio.requestInputs(chip: chip, lines: settings, consumer: "vouch-cli")
        } catch {
            throw GPIOCLI.fail(error)
        }
        defer { inputs.close() }
        signal(SIGINT, SIG_IGN)
        let interrupt = DispatchSource.makeSignalSource(signal: SIGINT)
        let stop = StopFlag()
        interrupt.setEventHandler { stop.set() }
        interrupt.resume()

        let initial: [Int]
        do { initial = try inputs.values() } catch { throw GPIOCLI.fail(error) }
        var debouncers = initial.map { Debouncer(stableNs: stableNs, initial: $0 == 1) }
        var continuity = initial.map { EdgeContinuity(level: $0 == 1) }
        var counts = [Int](repeating: 0, count: settings.count)
        let started = LibgpiodV1Clock.bootNs()
        if !json {
            print("watching \(options.lines.joined(separator: ", ")) on \"\(chip)\": levels \(zip(options.lines, initial).map { "\($0)=\($1)" }.joined(separator: " "))")
        }
        func report(_ line: Int, _ change: LevelChange) {
            counts[line] += 1
            let wall = Date().addingTimeInterval(-Double(LibgpiodV1Clock.bootNs() - change.sinceNs) / 1e9)
            let iso = ISO8601DateFormatter.string(from: wall, timeZone: TimeZone(identifier: "UTC") ?? .current, formatOptions: [.withInternetDateTime, .withFractionalSeconds])
            if json {
                print("{\"line\":\"\(options.lines[line])\",\"edge\":\"\(change.active ? "rising" : "falling")\",\"mono_s\":\(GPIOCLI.seconds(change.sinceNs)),\"wall\":\"\(iso)\"}")
            } else {
                print("\(GPIOCLI.seconds(change.sinceNs))  \(iso)  \(options.lines[line])  \(change.active ? "rising " : "falling")")
            }
        }
        while !stop.isSet {
            let now = LibgpiodV1Clock.bootNs()
            if let forNs, now - started >= forNs { break }
            let edges: [GPIOEdge]
            do { edges = try inputs.waitForEdges(timeout: .milliseconds(100)) } catch { throw GPIOCLI.fail(error) }
            for e in edges {
                if continuity[e.line].edge(rising: e.rising) {
                    FileHandleOutput.standardError("warning: \(options.lines[e.line]): an edge was lost before \(GPIOCLI.seconds(e.monoNs)) (the kernel keeps 16 per line)")
                }
                if let c = debouncers[e.line].edge(rising: e.rising, atNs: e.monoNs) { report(e.line, c) }
            }
            let after = LibgpiodV1Clock.bootNs()
            for i in debouncers.indices { if let c = debouncers[i].advance(toNs: after) { report(i, c) } }
            if edges.isEmpty, let levels = try? inputs.values() {
                for i in levels.indices where continuity[i].check(current: levels[i] == 1) {
                    FileHandleOutput.standardError("warning: \(options.lines[i]): edges were lost (the level is \(levels[i]), the last edge said otherwise)")
                }
            }
        }
        let losses = continuity.map(\.losses)
        if json {
            let summary = zip(options.lines, zip(counts, losses)).map { "\"\($0)\":{\"changes\":\($1.0),\"losses\":\($1.1)}" }.joined(separator: ",")
            print("{\"summary\":{\(summary)}}")
        } else {
            print("\(zip(options.lines, counts).map { "\($0): \($1) change(s)" }.joined(separator: ", "))\(losses.contains { $0 > 0 } ? "; edges lost: \(zip(options.lines, losses).map { "\($0) \($1)" }.joined(separator: ", "))" : "")")
        }
    }
}

/// Set from the SIGINT handler's queue, read by the watch loop.
final class StopFlag: Sendable {
    private let flag = Mutex(false)
    func set() { flag.withLock { $0 = true } }
    var isSet: Bool { flag.withLock { $0 } }
}

enum LibgpiodV1Clock {
    static func bootNs() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_BOOTTIME, &ts)
        return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
    }
}
