import ArgumentParser
import Foundation
import VouchCore
import VouchModbus

struct ModbusScan: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scan",
        abstract: "Find which unit ids answer on a bus, or which registers of one device are readable.",
        discussion: """
            Unit scan (without --range): probes each unit id of --units with one short read of --register at \
            --address (200ms timeout unless --timeout) and lists the units that answered. An exception answer \
            (e.g. illegal data address) also means a device is there: it is listed with the exception's name. \
            Garbled answers (bad CRC, framing) are listed apart: something is on the line, but the baud rate, \
            parity or wiring is likely wrong. A TCP gateway's "target unit failed to respond" counts as no device.

            Register scan (--range): reads --range of one device (--unit) in blocks of --block; a refused block \
            is split in halves until the exact edges are found, and the readable addresses are reported as \
            contiguous ranges.

            Progress goes to stderr when it is a terminal; the result goes to stdout (with --json, one document).

            Exit status: 0 a device answered (unit scan) or the scan completed (register scan); 64 a usage error; \
            69 no unit answered, or the device or port cannot be reached.

            Examples:
              vouch modbus scan --baud 19200 \\
                  --url rtu:///dev/serial/by-id/usb-1a86_USB_Serial-if00-port0
              vouch modbus scan \\
                  --url rtu:///dev/serial/by-id/usb-1a86_USB_Serial-if00-port0 \\
                  --units 1-10,100 --register input
              vouch modbus scan --url tcp://192.168.1.20 --units 1-247 --json
              vouch modbus scan --url tcp://192.168.1.20 --unit 1 \\
                  --register holding --range 0-999
              vouch modbus scan \\
                  --url rtu:///dev/serial/by-id/usb-1a86_USB_Serial-if00-port0 \\
                  --unit 3 --register input --range 0-399 --block 40 --json
            """)

    @OptionGroup(title: "Connection")
    var connection: ModbusConnectionOptions

    @Option(help: ArgumentHelp("Unit ids to probe, e.g. 1-247 (default) or 1,3,10-20.", valueName: "list"))
    var units: String?

    @Option(help: ArgumentHelp("Register kind to read: holding (default), input, coil or discrete.", valueName: "kind"))
    var register: String = "holding"

    @Option(help: ArgumentHelp("Unit scan: the address each probe reads (default 0).", valueName: "address"))
    var address: Int?

    @Option(help: ArgumentHelp("Register scan: the addresses to test, e.g. 0-999.", valueName: "first-last"))
    var range: String?

    @Option(help: ArgumentHelp("Register scan: addresses per read (1–125 registers, 1–2000 bits; default 50).", valueName: "n"))
    var block: Int?

    @Flag(help: "Print one JSON document on standard output instead of text.")
    var json = false

    enum Job {
        case units(ModbusConnection, ModbusRegisterKind, address: Int, ids: [Int])
        case registers(ModbusConnection, ModbusRegisterKind, ClosedRange<Int>, block: Int)
    }

    /// The validated options; checked in `validate()` too, so that a usage error shows this command's usage.
    func job() throws -> Job {
        guard let kind = ModbusRegisterKind(configName: register) else {
            throw ValidationError("--register \"\(register)\" is not a register kind; expected holding, input, coil or discrete")
        }
        if let range {
            if units != nil {
                throw ValidationError("--units applies to a unit scan; a register scan (--range) reads one device: give it with --unit")
            }
            if address != nil { throw ValidationError("--address applies to a unit scan; a register scan reads the addresses of --range") }
            let target = try connection.resolve(defaultTimeout: .seconds(1))
            let addresses = try Self.parseRange(range)
            let blockSize = block ?? min(50, kind.maxPerRequest)
            guard (1...kind.maxPerRequest).contains(blockSize) else {
                throw ValidationError("--block \(blockSize) is out of range; one read covers 1–\(kind.maxPerRequest) \(kind.isBit ? "bits" : "registers")")
            }
            return .registers(target, kind, addresses, block: blockSize)
        }
        if connection.unit != nil {
            throw ValidationError("--unit picks the device of a register scan (--range); to probe unit ids, use --units, e.g. --units 1-247")
        }
        if block != nil { throw ValidationError("--block applies to a register scan (--range FIRST-LAST)") }
        let target = try connection.resolve(defaultTimeout: .milliseconds(200))
        let ids = try Self.parseUnits(units ?? "1-247", serial: target.endpoint.isSerial)
        let at = address ?? 0
        guard (0...65535).contains(at) else { throw ValidationError("--address \(at) is out of range; expected 0–65535") }
        return .units(target, kind, address: at, ids: ids)
    }

    func validate() throws { _ = try job() }

    func run() throws {
        let job = try job()
        switch job {
        case .units(let target, _, _, _), .registers(let target, _, _, _):
            if !json { ModbusCLI.noteRenumberingPath(target.endpoint) }
        }
        switch job {
        case .units(let target, let kind, let address, let ids): try scanUnits(target, kind: kind, address: address, units: ids)
        case .registers(let target, let kind, let range, let block): try scanRegisters(target, kind: kind, addresses: range, block: block)
        }
    }

    // MARK: - Units

    /// "1-247", "5", "1,3,10-20": sorted, without duplicates.
    static func parseUnits(_ text: String, serial: Bool) throws -> [Int] {
        let allowed = serial ? 1...247 : 0...255
        let expected = "unit ids \(allowed.lowerBound)–\(allowed.upperBound)\(serial ? " on a serial line (0 is broadcast, which no device answers)" : "") as a list such as 1-247 or 1,3,10-20"
        var ids = Set<Int>()
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            let bounds = part.split(separator: "-", omittingEmptySubsequences: false).map { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard (1...2).contains(bounds.count), let first = bounds.first ?? nil, let last = bounds.last ?? nil else {
                throw ValidationError("--units \"\(text)\": \"\(part)\" is not a unit id or a range; expected \(expected)")
            }
            guard first <= last else { throw ValidationError("--units \"\(text)\": \(first)-\(last) runs backwards; expected \(expected)") }
            guard allowed.contains(first), allowed.contains(last) else {
                throw ValidationError("--units \"\(text)\": \(part) is out of range; expected \(expected)")
            }
            ids.formUnion(first...last)
        }
        return ids.sorted()
    }

    struct UnitAnswer {
        let unit: Int
        let words: [UInt16]?
        let error: ModbusError?
    }

    func scanUnits(_ target: ModbusConnection, kind: ModbusRegisterKind, address: Int, units: [Int]) throws {
        let client = target.client()
        let start = ContinuousClock.now
        var answered: [UnitAnswer] = []
        var garbled: [UnitAnswer] = []
        var silent: [Int] = []
        var gatewaySaysNone = 0
        let progress = ModbusCLI.stderrIsTerminal
        if !json {
            FileHandleOutput.standardError(
                "scanning \(units.count) unit id(s) on \(target.summary): one read of \(kind.rawValue) \(address) each, timeout \(ModbusCLI.seconds(target.timeout))")
        }
        for (i, unit) in units.enumerated() {
            if progress { ModbusCLI.progress("scanning unit \(unit) (\(i + 1)/\(units.count)), \(answered.count) found…") }
            do throws(ModbusError) {
                let words = try client.readBlocking(kind, unit: unit, address: address, count: 1, timeout: target.timeout)
                answered.append(UnitAnswer(unit: unit, words: words, error: nil))
            } catch {
                switch ModbusCLI.classify(error) {
                case .exception: answered.append(UnitAnswer(unit: unit, words: nil, error: error))
                case .garbled: garbled.append(UnitAnswer(unit: unit, words: nil, error: error))
                case .silent: silent.append(unit)
                case .gatewayNoTarget:
                    silent.append(unit)
                    gatewaySaysNone += 1
                case .fatal:
                    if progress { ModbusCLI.clearProgress() }
                    FileHandleOutput.standardError("vouch modbus scan: \(error)")
                    throw ModbusCLI.unreachable
                }
            }
        }
        client.close()
        if progress { ModbusCLI.clearProgress() }
        let elapsed = ContinuousClock.now - start

        if json {
            func entry(_ a: UnitAnswer) -> CLIJSON {
                var o: [String: CLIJSON] = ["unit": .int(Int64(a.unit))]
                if let words = a.words {
                    o["status"] = .string("ok")
                    o["words"] = CLIJSON.words(words)
                } else if let e = a.error {
                    o["status"] = .string(e.isDeviceException ? "exception" : "garbled")
                    o[e.isDeviceException ? "exception" : "error"] = .string(e.errnoName)
                    o["message"] = .string(e.message)
                }
                return .object(o)
            }
            print(
                CLIJSON.object([
                    "url": .string(target.endpoint.description), "register": .string(kind.rawValue), "address": .int(Int64(address)),
                    "timeout_ms": .int(ModbusCLI.milliseconds(target.timeout)), "probed": .int(Int64(units.count)),
                    "answered": .array(answered.map(entry)), "garbled": .array(garbled.map(entry)),
                    "silent": .array(silent.map { .int(Int64($0)) }), "elapsed_ms": .int(ModbusCLI.milliseconds(elapsed)),
                ]).text)
        } else {
            var rows = [["unit", "answer"]]
            for a in answered {
                if let w = a.words?.first {
                    rows.append(["\(a.unit)", kind.isBit ? "ok: \(kind.rawValue) \(address) = \(w)" : "ok: \(kind.rawValue) \(address) = \(w) (\(ModbusCLI.hex(w)))"])
                } else if let e = a.error {
                    rows.append(["\(a.unit)", "exception \(e.errnoName) (\(e.message)): a device is there"])
                }
            }
            for g in garbled {
                if let e = g.error { rows.append(["\(g.unit)", "garbled: \(e.errnoName) (\(e.message))"]) }
            }
            if rows.count > 1 { ModbusCLI.table(rows).forEach { print($0) } }
            let list = answered.map { String($0.unit) }.joined(separator: ", ")
            print("\(answered.count) unit(s) answered of \(units.count) probed\(answered.isEmpty ? "" : ": \(list)"); \(silent.count) silent\(gatewaySaysNone > 0 ? " (\(gatewaySaysNone) reported missing by the gateway)" : ""); \(ModbusCLI.seconds(elapsed))")
            if !garbled.isEmpty {
                print("garbled answers from \(garbled.map { String($0.unit) }.joined(separator: ", ")): check baud rate, parity and A/B wiring (\(target.summary))")
            }
        }
        if answered.isEmpty {
            if !json {
                FileHandleOutput.standardError(
                    "vouch modbus scan: no unit answered on \(target.summary)\(target.endpoint.isSerial ? ": check baud rate and parity, A/B wiring and termination, and --timeout" : ": check the unit ids (a TCP device often uses 1 or 255) and --timeout")")
            }
            throw ModbusCLI.unreachable
        }
    }

    // MARK: - Registers of one device

    /// "0-999" or "100".
    static func parseRange(_ text: String) throws -> ClosedRange<Int> {
        let bounds = text.split(separator: "-", omittingEmptySubsequences: false).map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard (1...2).contains(bounds.count), let first = bounds.first ?? nil, let last = bounds.last ?? nil else {
            throw ValidationError("--range \"\(text)\" is not an address range; expected FIRST-LAST with 0-based addresses, e.g. 0-999")
        }
        guard first <= last else { throw ValidationError("--range \"\(text)\" runs backwards; expected FIRST-LAST with FIRST ≤ LAST, e.g. 0-999") }
        guard first >= 0, last <= 65535 else { throw ValidationError("--range \"\(text)\" is out of range; expected addresses 0–65535") }
        return first...last
    }

    /// Why a register scan stopped early.
    struct Stop: Error {
        let error: ModbusError
        let message: String
    }

    func scanRegisters(_ target: ModbusConnection, kind: ModbusRegisterKind, addresses: ClosedRange<Int>, block: Int) throws {
        let client = target.client()
        let start = ContinuousClock.now
        let progress = ModbusCLI.stderrIsTerminal
        let what = kind.isBit ? (kind == .coil ? "coils" : "discrete inputs") : "\(kind.rawValue) registers"
        var answeredOnce = false
        var refusals: [String: Int] = [:]
        var silentReads = 0
        var garbledReads = 0
        var lastProgress = ContinuousClock.now - .seconds(1)
        if !json {
            FileHandleOutput.standardError(
                "scanning \(what) \(addresses.lowerBound)–\(addresses.upperBound) of unit \(target.unit) on \(target.summary) in blocks of \(block)")
        }
        let outcome: RegisterRangeScan.Outcome
        do throws(Stop) {
            outcome = try RegisterRangeScan.scan(addresses, block: block) { (a: Int, n: Int) throws(Stop) -> Bool in
                if progress, ContinuousClock.now - lastProgress > .milliseconds(100) {
                    lastProgress = .now
                    ModbusCLI.progress("scanning \(kind.rawValue) \(a) (\(a - addresses.lowerBound + 1)/\(addresses.count))…")
                }
                do throws(ModbusError) {
                    _ = try client.readBlocking(kind, unit: target.unit, address: a, count: n, timeout: target.timeout)
                    answeredOnce = true
                    return true
                } catch {
                    switch ModbusCLI.classify(error) {
                    case .exception:
                        if error.errnoName == "EMBXILFUN" && !answeredOnce {
                            throw Stop(error: error, message: "unit \(target.unit) does not support reading \(what) (function \(kind.functionCode))")
                        }
                        answeredOnce = true
                        refusals[error.errnoName, default: 0] += 1
                        return false
                    case .silent, .garbled, .gatewayNoTarget:
                        // Some devices stay silent (or answer badly) instead of refusing an address; once the
                        // device has answered, treat that as a refusal. Before that, it is not reachable.
                        guard answeredOnce else { throw Stop(error: error, message: "unit \(target.unit) does not answer") }
                        if ModbusCLI.classify(error) == .garbled { garbledReads += 1 } else { silentReads += 1 }
                        return false
                    case .fatal:
                        throw Stop(error: error, message: "cannot reach the device")
                    }
                }
            }
        } catch {
            if progress { ModbusCLI.clearProgress() }
            FileHandleOutput.standardError("vouch modbus scan: \(error.message): \(error.error)")
            throw ModbusCLI.unreachable
        }
        client.close()
        if progress { ModbusCLI.clearProgress() }
        let elapsed = ContinuousClock.now - start
        let readableCount = outcome.readable.reduce(0) { $0 + $1.count }

        if json {
            print(
                CLIJSON.object([
                    "url": .string(target.endpoint.description), "unit": .int(Int64(target.unit)), "register": .string(kind.rawValue),
                    "range": .object(["first": .int(Int64(addresses.lowerBound)), "last": .int(Int64(addresses.upperBound))]),
                    "block": .int(Int64(block)),
                    "readable": .array(outcome.readable.map { r in
                        .object(["first": .int(Int64(r.lowerBound)), "last": .int(Int64(r.upperBound)), "count": .int(Int64(r.count))])
                    }),
                    "readable_count": .int(Int64(readableCount)), "requests": .int(Int64(outcome.requests)),
                    "refusals": .object(refusals.mapValues { .int(Int64($0)) }), "silent_reads": .int(Int64(silentReads)),
                    "garbled_reads": .int(Int64(garbledReads)), "elapsed_ms": .int(ModbusCLI.milliseconds(elapsed)),
                ]).text)
        } else {
            print(
                "unit \(target.unit) \(what) \(addresses.lowerBound)–\(addresses.upperBound) at \(target.summary): \(outcome.readable.count) readable range(s), \(readableCount) address(es); \(outcome.requests) read(s) in \(ModbusCLI.seconds(elapsed))"
            )
            let rows = outcome.readable.map { r in [r.count == 1 ? "\(r.lowerBound)" : "\(r.lowerBound)-\(r.upperBound)", "\(r.count) \(kind.isBit ? "bit" : "register")\(r.count == 1 ? "" : "s")"] }
            ModbusCLI.table(rows, indent: "  ").forEach { print($0) }
            if !refusals.isEmpty {
                print("refused reads: " + refusals.sorted { $0.key < $1.key }.map { "\($0.value) × \($0.key)" }.joined(separator: ", "))
            }
            if silentReads + garbledReads > 0 {
                print("unanswered reads: \(silentReads) silent, \(garbledReads) garbled (counted as refused; the device may not like some ranges)")
            }
        }
    }
}
