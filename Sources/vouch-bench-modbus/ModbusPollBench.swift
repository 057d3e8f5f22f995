import Synchronization
import Foundation
import Logging
import VouchCore
import VouchModbus

/// `vouch-bench-modbus`: Vouch's real poll path (bus poller → planner → client → decoding) as fast
/// as the peer allows, for scripts/bench-modbus to compare with a bare C libmodbus loop against the same
/// server. COUNT u16 channels at ADDRESS… (the planner joins them into one COUNT-register request, as the
/// C loop reads), poll interval 0. Prints one JSON line.
///
/// Usage: vouch-bench-modbus --url URL [--unit 1] [--address 0] [--count 10] [--seconds 5] [--baud 9600] [--layer poller|client]
enum ModbusPollBench {
    static func run(_ arguments: [String]) async throws {
        var options: [String: String] = [:]
        var i = 0
        while i < arguments.count {
            guard arguments[i].hasPrefix("--"), i + 1 < arguments.count else { throw BenchUsage("expected --option value pairs, got \(arguments[i])") }
            options[String(arguments[i].dropFirst(2))] = arguments[i + 1]
            i += 2
        }
        func int(_ key: String, _ fallback: Int) throws -> Int {
            guard let text = options[key] else { return fallback }
            guard let v = Int(text), v >= 0 else { throw BenchUsage("--\(key) must be a non-negative integer, got \(text)") }
            return v
        }
        guard let url = options["url"] else { throw BenchUsage("--url tcp://HOST:PORT or rtu:///dev/PORT is required") }
        let endpoint: ModbusEndpoint
        switch ModbusEndpoint.parse(url) {
        case .success(let e): endpoint = e
        case .failure(let problem): throw BenchUsage("--url: \(problem)")
        }
        let unit = try int("unit", 1), address = try int("address", 0), count = try int("count", 10), seconds = try int("seconds", 5)
        let serial: SerialSettings? = endpoint.isSerial ? SerialSettings(baudRate: try int("baud", 9600)) : nil
        let channels = (0..<count).map { ModbusChannelSettings(id: "bench.r\(address + $0)", register: .holding, address: address + $0, dataType: .uint16) }
        let device = ModbusDeviceSettings(
            name: "bench", endpoint: endpoint, serial: serial, unitId: unit, responseTimeout: .seconds(1), pollInterval: .zero, maxGap: 0, channels: channels)
        guard RequestPlanner.plan(channels, maxGap: 0).count == 1 else { throw BenchUsage("--count must be 1–125 so one request covers it") }
        if options["layer"] == "client" {
            // Diagnostic: ModbusClient alone in a tight loop, to tell the wrapper's cost from the poller's.
            let client = ModbusClient(endpoint: endpoint, serial: serial)
            let deadline = ContinuousClock.now + .seconds(seconds)
            var reads = 0, errors = 0
            let started = ContinuousClock.now
            while ContinuousClock.now < deadline {
                do { _ = try client.readBlocking(.holding, unit: unit, address: address, count: count, timeout: .seconds(1)) } catch { errors += 1 }
                reads += 1
            }
            let s = Double((ContinuousClock.now - started).components.attoseconds) / 1e18 + Double((ContinuousClock.now - started).components.seconds)
            print("{\"tool\":\"vouch-client\",\"reads\":\(reads),\"errors\":\(errors),\"seconds\":\(String(format: "%.3f", s)),\"reads_per_s\":\(String(format: "%.1f", Double(reads) / s))}")
            return
        }
        let poller = ModbusBusPoller(bus: ModbusBus.group([device])[0], clock: SystemClock(bootCount: 0), logger: Logger(label: "bench"))
        let tally = Tally()
        let started = ContinuousClock.now
        let task = Task {
            await poller.run { readings in
                tally.add(failed: readings.contains { $0.quality != ReadingQuality.ok })
            }
        }
        try await Task.sleep(for: .seconds(seconds))
        task.cancel()
        await task.value
        let elapsed = ContinuousClock.now - started
        let s = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        let (reads, errors) = tally.totals
        print("{\"tool\":\"vouch\",\"reads\":\(reads),\"errors\":\(errors),\"seconds\":\(String(format: "%.3f", s)),\"reads_per_s\":\(String(format: "%.1f", Double(reads) / s))}")
    }

    /// Polls are counted from the poller's task; the lock is held for two integer updates.
    final class Tally: Sendable {
        private let state = Mutex((reads: 0, errors: 0))
        func add(failed: Bool) { state.withLock { $0.reads += 1; if failed { $0.errors += 1 } } }
        var totals: (Int, Int) { state.withLock { ($0.reads, $0.errors) } }
    }
}

struct BenchUsage: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}
