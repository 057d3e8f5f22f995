import ArgumentParser
import Foundation
import VouchCore
import VouchModbus

struct ModbusPlan: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Show the read requests the agent makes for each configured device in one poll cycle.",
        discussion: """
            Channels of one register kind that lie close together (at most the device's max_gap unused registers \
            apart) share one request; the plan lists each request with the channels it serves and how many of \
            its registers nothing uses, and compares the count with one request per channel. The bytes on the \
            wire are an estimate from the frame sizes (RTU: request 8 bytes, answer 5 + data; TCP: 12 and 9 + data); \
            for a serial line, the line time adds start, parity and stop bits and the 3.5-character gaps, not the \
            device's reaction time. Nothing is sent to any device.

            With --json, prints one document: {"devices": [{"name", "url", "unit", "channels" (how many), \
            "requests": [{"function", "kind", "address", "count", "unused", "channels": [ids]}]}]}.

            Exit status: 0 shown; 78 the config is invalid (every error listed with file:line:column).

            Examples:
              vouch modbus plan --config /etc/vouch/vouch.toml
              vouch modbus plan --config site.toml --json | \\
                  jq '.devices[] | {name, requests: (.requests | length)}'
            """)

    @Option(name: .shortAndLong, help: ArgumentHelp("Config file.", valueName: "file"))
    var config = "/etc/vouch/vouch.toml"

    @Flag(help: "Print one JSON document on standard output instead of text.")
    var json = false

    func run() throws {
        let settings = try ModbusCLI.loadConfig(config)
        if json {
            let devices: [CLIJSON] = settings.modbusDevices.map { d in
                let requests = RequestPlanner.plan(device: d)
                return .object([
                    "name": .string(d.name), "url": .string(d.endpoint.description), "unit": .int(Int64(d.unitId)), "channels": .int(Int64(d.channels.count)),
                    "requests": .array(requests.map { r in
                        .object([
                            "function": .int(Int64(r.kind.functionCode)), "kind": .string(r.kind.rawValue), "address": .int(Int64(r.address)),
                            "count": .int(Int64(r.count)), "unused": .int(Int64(r.unusedCount(of: d.channels))),
                            "channels": .array(r.channels.map { .string(d.channels[$0].id) }),
                        ])
                    }),
                ])
            }
            print(CLIJSON.object(["devices": .array(devices)]).text)
            return
        }
        for (i, d) in settings.modbusDevices.enumerated() {
            if i > 0 { print("") }
            let requests = RequestPlanner.plan(device: d)
            let lines = RequestPlanner.describe(device: d)
            print("\(lines.first ?? d.name) — unit \(d.unitId) at \(d.serial.map { "\(d.endpoint) (\($0.summary))" } ?? d.endpoint.description)")
            for line in lines.dropFirst() { print("  \(line)") }
            let n = d.channels.count
            print("  \(n) channel\(n == 1 ? "" : "s"): \(requests.count) request\(requests.count == 1 ? "" : "s") per cycle instead of \(n) (one per channel)")
            let single = d.channels.map { ModbusRequest(kind: $0.register, address: $0.address, count: $0.registerCount, channels: []) }
            let planned = Self.wire(requests, d)
            let unplanned = Self.wire(single, d)
            var estimate = "  ≈ \(planned.bytes) bytes on the wire per cycle (\(unplanned.bytes) one per channel)"
            if let ms = planned.lineMs, let msSingle = unplanned.lineMs, let serial = d.serial {
                estimate += "; ≈ \(Self.ms(ms)) of line time at \(serial.summary) (\(Self.ms(msSingle)) one per channel)"
            }
            print(estimate)
        }
    }

    /// Bytes of requests and answers for one cycle; on a serial line also the time they occupy it.
    static func wire(_ requests: [ModbusRequest], _ device: ModbusDeviceSettings) -> (bytes: Int, lineMs: Double?) {
        let serial = device.serial
        var bytes = 0
        for r in requests {
            let data = r.kind.isBit ? (r.count + 7) / 8 : 2 * r.count
            bytes += serial != nil ? 8 + 5 + data : 12 + 9 + data
        }
        guard let serial else { return (bytes, nil) }
        let bitsPerCharacter = 1 + serial.dataBits + (serial.parity == .none ? 0 : 1) + serial.stopBits
        // Each frame (request and answer) is followed by at least 3.5 characters of silence.
        let characters = Double(bytes) + 3.5 * 2 * Double(requests.count)
        return (bytes, characters * Double(bitsPerCharacter) * 1000 / Double(serial.baudRate))
    }

    static func ms(_ v: Double) -> String { v < 10 ? String(format: "%.1f ms", v) : "\(Int(v.rounded())) ms" }
}
