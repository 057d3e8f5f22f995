import Foundation
import Logging
import Synchronization
import Testing
import VouchCore
@testable import VouchGPIO

/// A fake chip for the watcher's logic: scripted edges, levels, and failures. The real kernel is in
/// the VM tests (scripts/gpio-vm-test); this pins what the watcher makes of what a chip reports.
final class FakeChip: GPIOBackend, GPIOInputs, Sendable {
    struct State {
        var levels: [String: Bool] = [:]
        var pending: [(line: String, rising: Bool, ns: Int64)] = []
        var requested: [String] = []
        var missing = false
        /// Edges the "kernel" dropped: applied to the level without being reported.
        var requests = 0
        /// Calls of waitForEdges: one per turn of the watcher's loop.
        var waits = 0
    }
    let label = "fake"
    let names: [String]
    let state = Mutex(State())
    let clock: TestClock

    init(lines: [String], clock: TestClock) {
        names = lines
        self.clock = clock
    }

    /// A real edge, reported with the clock's current time.
    func edge(_ line: String, _ rising: Bool) {
        state.withLock {
            $0.levels[line] = rising
            $0.pending.append((line, rising, clock.monoNs))
        }
    }

    /// The kernel's queue overflowed: the level moved, nothing was reported.
    func lostEdge(_ line: String, _ rising: Bool) { state.withLock { $0.levels[line] = rising } }

    // GPIOBackend
    func chips() throws(GPIOError) -> [GPIOChipInfo] {
        state.withLock { $0.missing } ? [] : [GPIOChipInfo(path: "/dev/gpiochip9", name: "gpiochip9", label: label, lineCount: names.count)]
    }
    func lines(chip: String) throws(GPIOError) -> [GPIOLineInfo] {
        names.enumerated().map { GPIOLineInfo(offset: $0.offset, name: $0.element, isOutput: false, activeLow: false, bias: .asIs, consumer: nil, isUsed: false) }
    }
    func requestInputs(chip: String, lines: [GPIOInputSettings], consumer: String) throws(GPIOError) -> any GPIOInputs {
        let missing = state.withLock { s -> Bool in
            s.requests += 1
            return s.missing
        }
        if missing { throw GPIOError(code: GPIOError.chipNotFound, message: "no GPIO chip labelled \"\(chip)\"") }
        state.withLock { $0.requested = lines.map(\.line) }
        return self
    }
    func requestOutput(chip: String, line: String, activeLow: Bool, initial: Bool, consumer: String) throws(GPIOError) -> any GPIOOutput {
        throw GPIOError(code: GPIOError.io, message: "no outputs on the fake chip")
    }

    // GPIOInputs
    var lineNames: [String] { state.withLock { $0.requested } }
    func values() throws(GPIOError) -> [Int] { state.withLock { s in s.requested.map { s.levels[$0] == true ? 1 : 0 } } }
    func waitForEdges(timeout: Duration) throws(GPIOError) -> [GPIOEdge] {
        let edges = state.withLock { s -> [GPIOEdge] in
            defer {
                s.pending = []
                s.waits += 1
            }
            return s.pending.compactMap { p in s.requested.firstIndex(of: p.line).map { GPIOEdge(line: $0, rising: p.rising, monoNs: p.ns) } }
        }
        if edges.isEmpty { Thread.sleep(forTimeInterval: 0.002) }
        return edges
    }
    func close() {}
}

/// Time the test moves by hand; readings and edges carry it.
final class TestClock: AgentClock, Sendable {
    private let ns = Mutex<Int64>(1_000_000_000)
    var monoNs: Int64 { ns.withLock { $0 } }
    func advance(ms: Int64) { ns.withLock { $0 += ms * 1_000_000 } }
    func now() -> ClockReading { ClockReading(bootCount: 1, monoNs: monoNs, wallNs: 1_700_000_000_000_000_000 + monoNs, quality: .synchronized) }
}

@Suite(.serialized) struct GPIOWatcherTests {
    final class Collected: Sendable {
        let readings = Mutex<[Reading]>([])
        func of(_ id: String) -> [Reading] { readings.withLock { $0.filter { $0.channel == id } } }
    }

    /// Runs the watcher while `script` moves time and lines, then stops it.
    func watching(_ channels: [GPIOInputChannelSettings], chip: FakeChip, clock: TestClock, _ script: () async throws -> Void) async throws -> Collected {
        let got = Collected()
        let watcher = GPIOWatcher(channels: channels, backend: chip, clock: clock, logger: Logger(label: "test"))
        let task = Task { await watcher.run { r in got.readings.withLock { $0 += r } } }
        try await script()
        task.cancel()
        await task.value
        return got
    }

    /// Waits until the watcher's thread has gone twice round its loop since now, so it has seen the
    /// current time and lines (whatever the machine's load; not a timed sleep).
    func settle(_ chip: FakeChip) async throws {
        let start = chip.state.withLock { $0.waits }
        let deadline = ContinuousClock.now + .seconds(30)
        while chip.state.withLock({ $0.waits }) < start + 2 {
            guard ContinuousClock.now < deadline else { throw WatcherStalled() }
            try await Task.sleep(for: .milliseconds(5))
        }
        try await Task.sleep(for: .milliseconds(5))  // and its readings have reached the sink
    }

    struct WatcherStalled: Error {}

    @Test func levelChangesAreReadingsDatedByTheKernelAndSamplesFollow() async throws {
        let clock = TestClock()
        let chip = FakeChip(lines: ["door"], clock: clock)
        let door = GPIOInputChannelSettings(id: "gpio.door", line: "door", debounce: .milliseconds(20), sampleInterval: .seconds(1))
        let got = try await watching([door], chip: chip, clock: clock) {
            try await settle(chip)  // watching
            // Bounce, then open for 300 ms, between two samples; then a sample.
            clock.advance(ms: 100)
            chip.edge("door", true)
            clock.advance(ms: 2)
            chip.edge("door", false)
            clock.advance(ms: 2)
            chip.edge("door", true)
            try await settle(chip)
            clock.advance(ms: 300)
            try await settle(chip)
            chip.edge("door", false)
            try await settle(chip)
            clock.advance(ms: 30)
            try await settle(chip)
            clock.advance(ms: 700)
            try await settle(chip)
        }
        let readings = got.of("gpio.door")
        // One opening (the bounce filtered), each change dated by the edge that started its stable run,
        // then the next sample (the test clock jumped past 2.0 s), reading closed.
        #expect(readings.map(\.value) == [1, 0, 0], "\(readings.map { ($0.time.monoNs, $0.value) })")
        #expect(readings.prefix(2).map(\.time.monoNs) == [1_104_000_000, 1_404_000_000])
        #expect((readings.last?.time.monoNs ?? 0) >= 2_000_000_000)
        #expect(readings.allSatisfy { $0.quality == .ok })
    }

    @Test func counterTotalsAndLostEdgesAreReportedBesideTheValue() async throws {
        let clock = TestClock()
        let chip = FakeChip(lines: ["pulse"], clock: clock)
        let pulse = GPIOInputChannelSettings(id: "gpio.pulse", line: "pulse", signal: .counter, sampleInterval: .seconds(1))
        let got = try await watching([pulse], chip: chip, clock: clock) {
            try await settle(chip)  // watching
            for _ in 0..<5 {
                clock.advance(ms: 50)
                chip.edge("pulse", true)
                clock.advance(ms: 50)
                chip.edge("pulse", false)
                try await settle(chip)
            }
            chip.lostEdge("pulse", true)  // the queue overflowed: the line is high, no edge reported
            try await settle(chip)
            clock.advance(ms: 600)
            try await settle(chip)
        }
        let readings = got.of("gpio.pulse")
        // 5 pulses seen, and the line found high with no edge: at least one more pulse, counted (a lower bound).
        #expect(readings.first { $0.quality == .ok }?.value == 6, "\(readings)")
        #expect(readings.contains { $0.quality == .commError(code: "E_GPIO_EDGES_LOST", message: "1 loss(es) of edges on pulse since the last sample (the kernel keeps 16 per line): counts and times are lower bounds") })
    }

    @Test func aMissingChipIsACommErrorEverySampleUntilItAppears() async throws {
        let clock = TestClock()
        let chip = FakeChip(lines: ["run"], clock: clock)
        chip.state.withLock { $0.missing = true }
        let run = GPIOInputChannelSettings(id: "gpio.run", line: "run", chip: "fake", signal: .duty, sampleInterval: .seconds(1))
        let got = try await watching([run], chip: chip, clock: clock) {
            for _ in 0..<3 {
                clock.advance(ms: 1000)
                try await Task.sleep(for: .milliseconds(150))  // the watcher sleeps up to 100 ms while it has no lines
            }
            chip.state.withLock { $0.missing = false }
            clock.advance(ms: 5000)  // the retry
            try await Task.sleep(for: .milliseconds(150))
            chip.edge("run", true)
            try await settle(chip)
            clock.advance(ms: 1000)
            try await settle(chip)
        }
        let readings = got.of("gpio.run")
        let failed = readings.filter { $0.quality != .ok }
        // At least one failed sample while the chip was missing (each second the watcher saw; under load it
        // may see the three one-second steps as fewer), all naming the failure.
        #expect(failed.count >= 1 && failed.allSatisfy { if case .commError(let code, _) = $0.quality { code == GPIOError.chipNotFound } else { false } })
        #expect(readings.last?.quality == .ok, "\(readings)")
        #expect(readings.last?.value == 1000, "active the whole last second: \(readings.last.map { "\($0.value ?? -1)" } ?? "-")")
        #expect(chip.state.withLock { $0.requests } >= 2, "requested again")
    }

    /// A sink that holds its first call until released, as a store stuck on a slow disk would.
    final class HeldSink: Sendable {
        let held = Mutex(true)
        let got = Collected()
        func take(_ readings: [Reading]) async {
            while held.withLock({ $0 }) { try? await Task.sleep(for: .milliseconds(2)) }
            got.readings.withLock { $0 += readings }
        }
    }

    @Test func aStoreThatFallsBehindCostsChangeDetailButNoCountAndNoUnboundedMemory() async throws {
        let clock = TestClock()
        let chip = FakeChip(lines: ["door", "pulse"], clock: clock)
        let door = GPIOInputChannelSettings(id: "gpio.door", line: "door", sampleInterval: .seconds(1))
        let pulse = GPIOInputChannelSettings(id: "gpio.pulse", line: "pulse", signal: .counter, sampleInterval: .seconds(1))
        let sink = HeldSink()
        let watcher = GPIOWatcher(channels: [door, pulse], backend: chip, clock: clock, logger: Logger(label: "test"), backlog: .init(shedChanges: 8, wait: 1_000))
        let task = Task { await watcher.run { await sink.take($0) } }
        try await settle(chip)
        // 40 door changes and 20 pulses, each seen on its own turn of the loop, with nothing consumed.
        for i in 0..<40 {
            clock.advance(ms: 1)
            chip.edge("door", i % 2 == 0)
            if i % 2 == 0 { chip.edge("pulse", true) } else { chip.edge("pulse", false) }
            try await settle(chip)
        }
        sink.held.withLock { $0 = false }
        clock.advance(ms: 1_000)
        try await settle(chip)
        try await settle(chip)
        task.cancel()
        await task.value
        let doorReadings = sink.got.of("gpio.door")
        let changes = doorReadings.filter { $0.quality == .ok && $0.time.monoNs < 2_000_000_000 }
        let notRecorded = doorReadings.compactMap { r -> Int? in
            guard case .commError("E_GPIO_CHANGES_NOT_RECORDED", let message) = r.quality else { return nil }
            return Int(message.prefix { $0.isNumber })
        }
        #expect(notRecorded.count == 1, "reported once, at the sample: \(doorReadings)")
        #expect((notRecorded.first ?? 0) > 0 && changes.count + (notRecorded.first ?? 0) == 40, "\(changes.count) recorded + \(notRecorded) counted")
        #expect(changes.count >= 8 && changes.count < 40, "recorded one by one until 8 readings were waiting: \(changes.count)")
        #expect(doorReadings.contains { $0.quality == .ok && $0.time.monoNs >= 2_000_000_000 && $0.value == 0 }, "the sample still says where the door is")
        #expect(sink.got.of("gpio.pulse").first { $0.quality == .ok }?.value == 20, "pulses are all counted: \(sink.got.of("gpio.pulse"))")
    }

    @Test func aStoreFarBehindMakesTheWatcherWaitAndResume() async throws {
        let clock = TestClock()
        let chip = FakeChip(lines: ["door"], clock: clock)
        let door = GPIOInputChannelSettings(id: "gpio.door", line: "door", sampleInterval: .seconds(1))
        let sink = HeldSink()
        let watcher = GPIOWatcher(channels: [door], backend: chip, clock: clock, logger: Logger(label: "test"), backlog: .init(shedChanges: 2, wait: 4))
        let task = Task { await watcher.run { await sink.take($0) } }
        try await settle(chip)
        for i in 0..<4 {
            clock.advance(ms: 1)
            chip.edge("door", i % 2 == 0)
            try await settle(chip)
        }
        // Three changes are out, none consumed (a change is final once time moves past its edge). Moving
        // time on finalises the fourth and makes a sample due: 5 outstanding, so the loop stops turning.
        clock.advance(ms: 1_000)
        try await Task.sleep(for: .milliseconds(100))
        let waitsWhileHeld = chip.state.withLock { $0.waits }
        try await Task.sleep(for: .milliseconds(300))
        #expect(chip.state.withLock { $0.waits } - waitsWhileHeld <= 1, "the watcher waits for the consumer instead of piling up readings")
        sink.held.withLock { $0 = false }
        try await settle(chip)
        task.cancel()
        await task.value
        #expect(sink.got.of("gpio.door").count >= 4, "everything handed over reaches the sink: \(sink.got.of("gpio.door"))")
    }

    @Test func stoppingSamplesEveryChannelSoTheLastPartialIntervalIsRecorded() async throws {
        let clock = TestClock()
        let chip = FakeChip(lines: ["pulse", "run"], clock: clock)
        let pulse = GPIOInputChannelSettings(id: "gpio.pulse", line: "pulse", signal: .counter, sampleInterval: .seconds(10))
        let run = GPIOInputChannelSettings(id: "gpio.run", line: "run", signal: .duty, sampleInterval: .seconds(10))
        let got = try await watching([pulse, run], chip: chip, clock: clock) {
            try await settle(chip)
            chip.edge("run", true)
            for _ in 0..<3 {
                clock.advance(ms: 100)
                chip.edge("pulse", true)
                clock.advance(ms: 100)
                chip.edge("pulse", false)
                try await settle(chip)
            }
            chip.edge("run", false)
            clock.advance(ms: 400)  // 1 s since watching began, 9 s before the first sample
            try await settle(chip)
        }
        // Stopped 1 s into a 10 s interval: the 3 pulses, and the run line's 600 ms of 1,000, are recorded.
        #expect(got.of("gpio.pulse").map(\.value) == [3], "\(got.of("gpio.pulse"))")
        #expect(got.of("gpio.run").map(\.value) == [600], "\(got.of("gpio.run"))")
    }
}
