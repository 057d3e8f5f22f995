import Foundation
import Logging
import Synchronization
import Testing
import VouchCore
@testable import VouchModbus

/// What a messy RS-485 bus does to a poller, with real peers: a frozen device, a device restarted, a
/// USB adapter unplugged and plugged back, a device that answers garbage or bad CRCs, one silent unit
/// among three. In every case the poller keeps running and the healthy devices keep their rate.
@Suite(.serialized) struct ModbusBusFaultTests {
    /// Readings handed to the sink, from the poller's task.
    final class Collected: Sendable {
        private let readings = Mutex<[Reading]>([])
        func add(_ r: [Reading]) { readings.withLock { $0 += r } }
        var all: [Reading] { readings.withLock { $0 } }
        func of(_ channel: String) -> [Reading] { all.filter { $0.channel == channel } }
        func ok(_ channel: String) -> Int { of(channel).filter { $0.quality == .ok }.count }
    }

    /// Runs `poller` in a task until `body` returns, then stops it and checks it was still running.
    func whilePolling(_ poller: ModbusBusPoller, _ body: (Collected) async throws -> Void) async throws {
        let collected = Collected()
        let running = Mutex(true)
        let task = Task {
            await poller.run { collected.add($0) }
            running.withLock { $0 = false }
        }
        do { try await body(collected) } catch {
            task.cancel()
            throw error
        }
        #expect(running.withLock { $0 }, "the poller stopped on its own: polling must never stop for good")
        task.cancel()
        await task.value
    }

    /// Waits until `condition` holds (polling, asynchronously), or fails after `timeout`.
    func eventually(_ what: String, timeout: Duration = .seconds(15), _ condition: () -> Bool, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let deadline = ContinuousClock.now + timeout
        while !condition() {
            guard ContinuousClock.now < deadline else {
                Issue.record("timed out waiting until \(what)", sourceLocation: sourceLocation)
                return
            }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    func rtuDevice(_ name: String, unit: Int, port: URL, interval: Duration = .milliseconds(100), timeout: Duration = .milliseconds(200)) -> ModbusDeviceSettings {
        ModbusDeviceSettings(
            name: name, endpoint: .rtu(path: port.path), serial: SerialSettings(baudRate: 19200), unitId: unit, responseTimeout: timeout, pollInterval: interval,
            channels: [ModbusChannelSettings(id: "\(name).r0", register: .holding, address: 0, dataType: .uint16)])
    }

    func poller(_ devices: [ModbusDeviceSettings]) -> ModbusBusPoller {
        let buses = ModbusBus.group(devices)
        #expect(buses.count == 1, "one serial port, one bus")
        return ModbusBusPoller(bus: buses[0], clock: FixedClock(), logger: Logger(label: "test"))
    }

    @Test func frozenRTUDeviceTimesOutThenRecovers() async throws {
        let served = try await ServedLayout.start(try ModbusPeer.write([1: ["holding": [0: [42]]]]), over: .rtu)
        defer { served.stop() }
        let client = ModbusClient(endpoint: served.endpoint.modbus, serial: SerialSettings(baudRate: 19200))
        #expect(try await client.read(.holding, unit: 1, address: 0, count: 1, timeout: .milliseconds(300)) == [42])
        served.peer.process.freeze()
        let error = await #expect(throws: ModbusError.self) {
            _ = try await client.read(.holding, unit: 1, address: 0, count: 1, timeout: .milliseconds(300))
        }
        #expect(error?.errnoName == "ETIMEDOUT")
        served.peer.process.thaw()
        // The late answer to the timed-out request must not be taken for the next one's: the port was flushed.
        try await Task.sleep(for: .milliseconds(300))
        #expect(try await client.read(.holding, unit: 1, address: 0, count: 1, timeout: .milliseconds(500)) == [42])
    }

    /// Counts the poll thread's time stamps: one per request answered (or failed).
    final class CountingClock: AgentClock {
        let calls = Mutex(0)
        func now() -> ClockReading {
            calls.withLock { $0 += 1 }
            return FixedClock().now()
        }
    }

    /// Polling flat out, then shut down: every request that got an answer reaches the sink before `run`
    /// returns, including the last group the thread had not yet passed on (found by review: the stream
    /// ended on cancellation and dropped them).
    @Test func shutdownPassesOnEverythingReadFromTheWire() async throws {
        let served = try await ServedLayout.start(try ModbusPeer.write([1: ["holding": [0: [9]]]]), over: .tcp)
        defer { served.stop() }
        let device = ModbusDeviceSettings(
            name: "a", endpoint: served.endpoint.modbus, unitId: 1, responseTimeout: .milliseconds(500), pollInterval: .zero,
            channels: [ModbusChannelSettings(id: "a.r0", register: .holding, address: 0, dataType: .uint16)])
        let clock = CountingClock()
        let poller = ModbusBusPoller(bus: ModbusBus.group([device])[0], clock: clock, logger: Logger(label: "test"))
        let got = Collected()
        let task = Task { await poller.run { got.add($0) } }
        try await Task.sleep(for: .milliseconds(500))
        task.cancel()
        await task.value
        let stamped = clock.calls.withLock { $0 }
        #expect(stamped > 20, "the poller ran flat out: \(stamped) requests")
        #expect(got.all.count == stamped, "\(stamped) requests answered, \(got.all.count) readings delivered")
        #expect(got.all.allSatisfy { $0.value == 9 })
        try await Task.sleep(for: .milliseconds(100))
        #expect(got.all.count == stamped, "nothing arrives after run() returned")
    }

    /// A pty (like most USB adapters) has no kernel RS-485 mode: asking for it is an error that says
    /// what to change, not a silent fallback.
    @Test func rs485ModeOnAPortWithoutItSaysWhatToChange() async throws {
        let served = try await ServedLayout.start(try ModbusPeer.write([1: ["holding": [0: [42]]]]), over: .rtu)
        defer { served.stop() }
        let client = ModbusClient(endpoint: served.endpoint.modbus, serial: SerialSettings(baudRate: 19200, rs485: true))
        let error = await #expect(throws: ModbusError.self) {
            _ = try await client.read(.holding, unit: 1, address: 0, count: 1, timeout: .milliseconds(300))
        }
        #expect(error?.errnoName == "ENOTTY", "\(String(describing: error))")
        #expect(error?.message.contains("set rs485 = false") == true)
        #expect(error?.operation.contains("RS-485") == true)
        // The same port without the mode reads fine.
        let plain = ModbusClient(endpoint: served.endpoint.modbus, serial: SerialSettings(baudRate: 19200))
        #expect(try await plain.read(.holding, unit: 1, address: 0, count: 1, timeout: .milliseconds(500)) == [42])
    }

    @Test func restartedRTUDeviceIsReadAgain() async throws {
        let file = try ModbusPeer.write([1: ["holding": [0: [7]]]])
        let served = try await ServedLayout.start(file, over: .rtu)
        defer { served.stop() }
        let pty = try #require(served.pty)
        try await whilePolling(poller([rtuDevice("a", unit: 1, port: pty.port)])) { got in
            try await eventually("a first reading") { got.ok("a.r0") > 0 }
            await served.peer.process.stopAndWait()
            let before = got.of("a.r0").count
            try await eventually("failures are recorded") { got.of("a.r0").dropFirst(before).contains { $0.quality.code == "E_MODBUS_ETIMEDOUT" } }
            let again = try await ModbusPeer.rtu(file, on: pty)
            defer { again.process.stop() }
            let failedSoFar = got.of("a.r0").count
            try await eventually("readings are ok again") { got.of("a.r0").dropFirst(failedSoFar).contains { $0.quality == .ok } }
        }
    }

    /// The USB adapter is pulled out: the port's node disappears and reads fail with EIO, then ENOENT.
    /// When it is plugged back in (a new pty under the same name), the poller reopens it by itself.
    @Test func vanishedSerialPortIsReopenedWhenItComesBack() async throws {
        let file = try ModbusPeer.write([1: ["holding": [0: [5]]]])
        let served = try await ServedLayout.start(file, over: .rtu)
        defer { served.stop() }
        let pty = try #require(served.pty)
        try await whilePolling(poller([rtuDevice("a", unit: 1, port: pty.port)])) { got in
            try await eventually("a first reading") { got.ok("a.r0") > 0 }
            await pty.unplug()
            await served.peer.process.stopAndWait()
            let mark = got.of("a.r0").count
            // The open port fails with EIO; the poller closes it, and reopening finds no such device.
            try await eventually("the port is reported gone") { got.of("a.r0").dropFirst(mark).contains { $0.quality.code == "E_MODBUS_ENOENT" } }
            let gone = Set(got.of("a.r0").dropFirst(mark).compactMap { $0.quality.code })
            #expect(gone.isSubset(of: ["E_MODBUS_EIO", "E_MODBUS_ENOENT"]), "\(gone)")
            let back = try await pty.replug()
            defer { back.stop() }
            let peer = try await ModbusPeer.rtu(file, on: back)
            defer { peer.process.stop() }
            let unplugged = got.of("a.r0").count
            try await eventually("readings are ok again after replugging") { got.of("a.r0").dropFirst(unplugged).contains { $0.quality == .ok } }
            #expect(got.of("a.r0").last?.value == 5)
        }
    }

    @Test(arguments: [("bad-crc", "E_MODBUS_EMBBADCRC"), ("wrong-unit", "E_MODBUS_EMBBADSLAVE"), ("garbage", nil)])
    func unreadableAnswersAreErrorsAndTheDeviceRecovers(mode: String, code: String?) async throws {
        let pty = try await PtyPair.start()
        defer { pty.stop() }
        let bad = try await RTUResponder.start(on: pty, mode: mode)
        try await whilePolling(poller([rtuDevice("a", unit: 1, port: pty.port)])) { got in
            try await eventually("failed readings") { got.of("a.r0").count >= 3 }
            let codes = Set(got.of("a.r0").compactMap { $0.quality.code })
            #expect(got.ok("a.r0") == 0, "nothing from a \(mode) answer may pass as a value")
            if let code { #expect(codes.contains(code), "\(mode) gave \(codes)") } else { #expect(!codes.isEmpty) }
            await bad.stopAndWait()
            let good = try await RTUResponder.start(on: pty, mode: "normal")
            defer { good.stop() }
            try await eventually("ok readings after the device is fixed") { got.ok("a.r0") > 0 }
            #expect(got.of("a.r0").last?.value == 0, "the normal responder answers register 0 with 0")
        }
    }

    /// Three meters on one line, unit 2 dead, polled every 200 ms with a 250 ms timeout — a line with
    /// no room for a timeout in each cycle. Units 1 and 3 must keep the rate they have without unit 2
    /// (measured in the same test, after a warm-up in which unit 2 is found dead), and unit 2 must be
    /// backed off while it still gets a comm-error reading at each of its poll times.
    @Test func oneSilentUnitDoesNotSlowTheOthers() async throws {
        let file = try ModbusPeer.write([1: ["holding": [0: [1]]], 3: ["holding": [0: [3]]]])
        let served = try await ServedLayout.start(file, over: .rtu, extra: ["--unknown-unit", "silent"])
        defer { served.stop() }
        let pty = try #require(served.pty)
        let interval = Duration.milliseconds(200), timeout = Duration.milliseconds(250), warmUp = Duration.seconds(2), window = Duration.seconds(6)
        let healthy = [1, 3].map { rtuDevice("u\($0)", unit: $0, port: pty.port, interval: interval, timeout: timeout) }
        func healthyPolls(_ got: Collected) -> Int { min(got.ok("u1.r0"), got.ok("u3.r0")) }
        var baseline = 0
        try await whilePolling(poller(healthy)) { got in
            try await Task.sleep(for: warmUp)
            let start = healthyPolls(got)
            try await Task.sleep(for: window)
            baseline = healthyPolls(got) - start
        }
        let silent = rtuDevice("u2", unit: 2, port: pty.port, interval: interval, timeout: timeout)
        try await whilePolling(poller([healthy[0], silent, healthy[1]])) { got in
            try await Task.sleep(for: warmUp)
            let start = healthyPolls(got), deadStart = got.of("u2.r0").count
            try await Task.sleep(for: window)
            let withSilent = healthyPolls(got) - start
            let ratio = Double(withSilent) / Double(max(baseline, 1))
            print("silent unit: units 1/3 polled \(withSilent) times in \(window) with unit 2 dead, \(baseline) without (ratio \(String(format: "%.2f", ratio)))")
            #expect(baseline >= 20, "the baseline itself must have polled: \(baseline)")
            #expect(ratio >= 0.9, "units 1 and 3 lost their rate to a silent unit: \(withSilent) vs \(baseline)")
            let dead = got.of("u2.r0")
            let attempts = dead.filter { !($0.quality.message?.hasPrefix("not polled") ?? false) }
            #expect(dead.allSatisfy { $0.quality.code == "E_MODBUS_ETIMEDOUT" }, "unit 2's readings name the real failure")
            #expect(dead.count - deadStart >= baseline * 8 / 10, "unit 2 still gets a reading at each poll time: \(dead.count - deadStart)")
            #expect((2...6).contains(attempts.count), "unit 2 must be backed off (tried \(attempts.count) times)")
        }
    }
}

extension ReadingQuality {
    var message: String? { if case .commError(_, let m) = self { m } else { nil } }
}
