import Dispatch
#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Logging
import VouchCore

/// Every device reached through one connection: a serial port (an RS-485 line with several units) or
/// one TCP host:port (a device or a gateway with several units behind it, which may accept only one
/// client). One ``ModbusBusPoller`` owns each bus, so requests never race on the wire.
public struct ModbusBus: Sendable, Equatable {
    public let endpoint: ModbusEndpoint
    public let serial: SerialSettings?
    public let byteTimeout: Duration?
    public let devices: [ModbusDeviceSettings]

    /// Groups devices by connection, in the order the config first names each.
    public static func group(_ devices: [ModbusDeviceSettings]) -> [ModbusBus] {
        var order: [ModbusEndpoint] = []
        var members: [ModbusEndpoint: [ModbusDeviceSettings]] = [:]
        for d in devices {
            if members[d.endpoint] == nil { order.append(d.endpoint) }
            members[d.endpoint, default: []].append(d)
        }
        return order.map { e in
            let list = members[e] ?? []
            return ModbusBus(endpoint: e, serial: list.first?.serial, byteTimeout: list.compactMap(\.byteTimeout).max(), devices: list)
        }
    }

    public var name: String { devices.count == 1 ? devices[0].name : "\(endpoint) (\(devices.map(\.name).joined(separator: ", ")))" }
}

/// Polls the devices of one bus in turn, each at its own interval.
///
/// Invariants:
/// - Nothing stops the loop: every failure becomes readings with quality `.commError` (detectors and
///   the outbox see exactly which channel was unreadable when), and polling goes on.
/// - A device that does not answer costs at most one response timeout per poll: its remaining
///   requests in that poll are skipped. From its second failed poll on it is backed off: tried again
///   after 2×, 4×, … its interval (at most ``maxBackoff``), at most one backed-off device per
///   ``probeSpacing``, and only when a whole timeout fits before the next poll of a healthy device —
///   so a silent unit never delays the others by more than one timeout per cycle, and once backed off,
///   not at all while the line has idle time. Meanwhile its channels still get a comm-error reading
///   at every poll time.
/// - A joined request the device refuses with an exception (it does not like reading across the
///   unused registers in between) is split into gapless requests, then single channels, for good.
public struct ModbusBusPoller: Sendable {
    public let bus: ModbusBus
    public let client: ModbusClient
    let clock: any AgentClock
    let logger: Logger
    public static let maxBackoff: Duration = .seconds(60)

    public init(bus: ModbusBus, clock: any AgentClock, logger: Logger) {
        self.bus = bus
        self.client = ModbusClient(endpoint: bus.endpoint, serial: bus.serial, byteTimeout: bus.byteTimeout)
        self.clock = clock
        self.logger = logger
    }

    /// The time between probes of backed-off devices: the bus's shortest poll interval.
    var probeSpacing: Duration { bus.devices.map(\.pollInterval).min() ?? .seconds(1) }

    /// Per-device state of the loop.
    struct DeviceState: Sendable {
        let device: ModbusDeviceSettings
        var plan: [ModbusRequest]
        var nextPoll: ContinuousClock.Instant
        /// Consecutive polls that failed with a communication failure.
        var failures = 0
        var lastError: ModbusError?
        /// While backed off: when the next real attempt may be made.
        var retryAt: ContinuousClock.Instant?
        var latePolls = 0
    }

    /// Polls until the task is cancelled, handing each device poll's readings to `sink`, in order.
    ///
    /// The loop runs on a thread of its own that blocks in libmodbus and sleeps on the monotonic clock
    /// — one thread per bus, as in a firmware's bus task: no hop through a dispatch queue or the
    /// cooperative pool per request, so the line is driven as fast as a bare C loop drives it
    /// (scripts/bench-modbus). Readings reach `sink` through a bounded hand-off: when the consumer
    /// falls ``handoffLimit`` polls behind, the loop waits for it (polls are delayed, never dropped).
    /// Readings are passed on before each sleep; a loop with no time to sleep (polling flat out) passes
    /// them on in groups, so the consumer is not woken for every request.
    public func run(sink: @escaping @Sendable ([Reading]) async -> Void) async {
        let handoff = PollHandoff(limit: Self.handoffLimit)
        let thread = Thread { [self] in
            pollLoop(handoff)
            handoff.finish()
        }
        thread.name = "vouch.modbus \(bus.endpoint)"
        thread.start()
        // The consumer is not cancelled with us: on shutdown the thread stops, passes on what it read, and
        // ends the stream, and everything read from the wire reaches `sink` before this returns.
        let consumer = Task {
            for await polls in handoff.stream {
                for wire in polls {
                    await sink(readings(wire))
                    handoff.consumed()
                }
            }
        }
        await withTaskCancellationHandler {
            await consumer.value
        } onCancel: {
            handoff.stop()
        }
        // Wait for the thread itself (at most one response timeout) before closing the port, so it is not
        // reopened behind our back.
        await handoff.threadExited()
        client.close()
    }

    /// Polls the consumer may fall behind before the loop waits for it.
    static let handoffLimit = 256

    /// The blocking poll loop (the bus's thread).
    func pollLoop(_ handoff: PollHandoff) {
        let start = ContinuousClock.now
        var states = bus.devices.map { DeviceState(device: $0, plan: RequestPlanner.plan(device: $0), nextPoll: start) }
        var lastProbe: ContinuousClock.Instant?
        while !handoff.isStopped {
            guard let i = states.indices.min(by: { states[$0].nextPoll < states[$1].nextPoll }) else { return }
            if states[i].nextPoll > .now { handoff.flush() }
            if !handoff.sleep(until: states[i].nextPoll) { return }
            let now = ContinuousClock.now
            let wire: WirePoll
            if let retryAt = states[i].retryAt, !mayProbe(i, states, retryAt: retryAt, lastProbe: lastProbe, now: now) {
                wire = notPolled(states[i])
            } else {
                if states[i].retryAt != nil { lastProbe = now }
                wire = poll(&states[i], sleeper: handoff)
            }
            if !handoff.deliver(wire) { return }
            schedule(&states[i])
        }
    }

    /// Whether a backed-off device may be tried now: its backoff has passed, no other backed-off device
    /// was tried within ``probeSpacing``, and a full response timeout fits before the next poll of a
    /// healthy device on the bus — so a silent unit takes only idle time from the line. A probe that
    /// never fits (a bus with no idle time) is made anyway once it is ``maxBackoff`` overdue.
    func mayProbe(_ i: Int, _ states: [DeviceState], retryAt: ContinuousClock.Instant, lastProbe: ContinuousClock.Instant?, now: ContinuousClock.Instant) -> Bool {
        guard now >= retryAt else { return false }
        if let lastProbe, now - lastProbe < probeSpacing { return false }
        let nextHealthy = states.indices.filter { $0 != i && states[$0].retryAt == nil }.map { states[$0].nextPoll }.min()
        let fits = nextHealthy.map { now + states[i].device.responseTimeout <= $0 } ?? true
        return fits || now - retryAt > Self.maxBackoff
    }

    /// Every channel of `devices` read once, bus by bus, as the agent polls them (joined requests,
    /// byte orders, scaling); each bus's connection closed afterwards. For the CLI when no agent runs:
    /// `vouch modbus read --config`, `vouch sensors`, `vouch doctor`.
    public static func pollOnce(_ devices: [ModbusDeviceSettings], clock: any AgentClock, logger: Logger) async -> [Reading] {
        var all: [Reading] = []
        for bus in ModbusBus.group(devices) {
            let poller = ModbusBusPoller(bus: bus, clock: clock, logger: logger)
            all += await poller.pollOnce()
            poller.client.close()
        }
        return all
    }

    /// One poll of every device of the bus, in order, with no backoff: `vouch modbus read --config`, tests.
    /// Blocks a dispatch thread, not the caller's.
    public func pollOnce() async -> [Reading] {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                var readings: [Reading] = []
                for device in bus.devices {
                    var state = DeviceState(device: device, plan: RequestPlanner.plan(device: device), nextPoll: .now)
                    readings += self.readings(poll(&state, sleeper: nil))
                }
                continuation.resume(returning: readings)
            }
        }
    }

    /// What one device poll got from the wire, before any decoding: all the poll thread produces, so
    /// the next request goes out while the consumer turns this into readings on another core.
    struct WirePoll: Sendable {
        let device: ModbusDeviceSettings
        var results: [WireResult] = []
    }

    enum WireResult: Sendable {
        case words(ModbusRequest, [UInt16], ClockReading)
        /// `skipped`: not even asked, because the unit is failing.
        case failed(ModbusRequest, ModbusError, skipped: Bool, ClockReading)
    }

    /// One poll of one device: its plan, request by request (blocking).
    func poll(_ state: inout DeviceState, sleeper: PollHandoff?) -> WirePoll {
        let device = state.device
        var wire = WirePoll(device: device)
        wire.results.reserveCapacity(state.plan.count)
        var index = 0
        var failure: ModbusError?
        while index < state.plan.count {
            if sleeper?.isStopped == true { break }
            let request = state.plan[index]
            if let failure {
                wire.results.append(.failed(request, failure, skipped: true, clock.now()))
                index += 1
                continue
            }
            do {
                let words = try client.readBlocking(request.kind, unit: device.unitId, address: request.address, count: request.count, timeout: device.responseTimeout)
                wire.results.append(.words(request, words, clock.now()))
                index += 1
            } catch {
                if error.isDeviceException && request.channels.count > 1 {
                    let split = request.unusedCount(of: device.channels) > 0
                        ? RequestPlanner.gapless(device.channels, subset: request.channels)
                        : request.channels.map { c in ModbusRequest(kind: request.kind, address: device.channels[c].address, count: device.channels[c].registerCount, channels: [c]) }
                    logger.notice(
                        "\(device.name): unit \(device.unitId) refused a joined read of \(request.kind.rawValue) \(request.address)–\(request.address + request.count - 1) (\(error.errnoName)); reading those channels in \(split.count) requests from now on")
                    state.plan.replaceSubrange(index...index, with: split)
                    continue  // retry now, split
                }
                wire.results.append(.failed(request, error, skipped: false, clock.now()))
                if !error.isDeviceException { failure = error }
                index += 1
            }
            if device.pauseBetweenRequests > .zero {
                if let sleeper { _ = sleeper.sleep(until: .now + device.pauseBetweenRequests) } else { Thread.sleep(forTimeInterval: Self.seconds(device.pauseBetweenRequests)) }
            }
        }
        if let failure {
            state.failures += 1
            if state.failures == 1 || state.lastError?.code != failure.code {
                logger.warning("\(device.name) (unit \(device.unitId)): \(failure)")
            }
            state.lastError = failure
            if state.failures >= 2 {
                let factor = 1 << min(state.failures - 1, 16)
                let backoff = min(device.pollInterval * factor, Self.maxBackoff)
                state.retryAt = ContinuousClock.now + max(backoff, device.pollInterval)
            }
        } else {
            if state.failures > 0 { logger.notice("\(device.name) (unit \(device.unitId)) answers again after \(state.failures) failed poll(s)") }
            state.failures = 0
            state.lastError = nil
            state.retryAt = nil
        }
        return wire
    }

    /// The channels of a backed-off device at a poll time it skips: comm errors naming the last failure.
    func notPolled(_ state: DeviceState) -> WirePoll {
        guard let error = state.lastError else { return WirePoll(device: state.device) }
        let now = clock.now()
        return WirePoll(device: state.device, results: state.plan.map { .failed($0, error, skipped: true, now) })
    }

    /// Readings, in config order, from what a poll got on the wire.
    func readings(_ wire: WirePoll) -> [Reading] {
        let device = wire.device
        var readings: [Reading] = []
        var order: [Int] = []
        readings.reserveCapacity(device.channels.count)
        order.reserveCapacity(device.channels.count)
        for result in wire.results {
            switch result {
            case .words(let request, let words, let time):
                for c in request.channels {
                    readings.append(reading(device.channels[c], request.slice(words, for: device.channels[c]), time))
                    order.append(c)
                }
            case .failed(let request, let error, let skipped, let time):
                for c in request.channels {
                    readings.append(failed(device.channels[c], error, skippedUnit: skipped ? device.unitId : nil, time: time))
                    order.append(c)
                }
            }
        }
        // Config order, whatever order the plan read them in (usually the same: then nothing moves).
        if zip(order, order.dropFirst()).allSatisfy({ $0 < $1 }) { return readings }
        return order.indices.sorted { order[$0] < order[$1] }.map { readings[$0] }
    }

    static func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18 }

    private func schedule(_ state: inout DeviceState) {
        let interval = state.device.pollInterval
        var next = state.nextPoll.advanced(by: interval)
        let now = ContinuousClock.now
        if next < now {
            // Running late (a slow line, or too many channels for the interval): skip, don't bunch up.
            let skipped = interval > .zero ? Int((now - next) / interval) + 1 : 0
            state.latePolls += 1
            if interval > .zero && (state.latePolls == 1 || state.latePolls % 100 == 0) {
                logger.warning("polling \(state.device.name) is running late; skipping \(skipped) cycle(s) (\(state.latePolls) late poll(s) so far): lengthen poll_interval or reduce channels")
            }
            next = interval > .zero ? next.advanced(by: interval * skipped) : now
        }
        state.nextPoll = next
    }

    func reading(_ channel: ModbusChannelSettings, _ words: [UInt16], _ time: ClockReading) -> Reading {
        switch RegisterDecoding.decode(words, channel: channel) {
        case .success(.text(let text)):
            return Reading(channel: channel.id, time: time, value: nil, scaleExponent: 0, unit: channel.unit, rawWords: words, quality: .ok, text: text)
        case .success(let value):
            switch RegisterDecoding.scaled(value, channel: channel) {
            case .success(let v):
                return Reading(channel: channel.id, time: time, value: v, scaleExponent: channel.scaleExponent, unit: channel.unit, rawWords: words, quality: .ok)
            case .failure(let f):
                return Reading(channel: channel.id, time: time, value: nil, scaleExponent: channel.scaleExponent, unit: channel.unit, rawWords: words, quality: .commError(code: f.code, message: f.message))
            }
        case .failure(let f):
            return Reading(channel: channel.id, time: time, value: nil, scaleExponent: channel.scaleExponent, unit: channel.unit, rawWords: words, quality: .commError(code: f.code, message: f.message))
        }
    }

    /// A failed channel; `skippedUnit` when it was not even asked because its unit is failing.
    func failed(_ channel: ModbusChannelSettings, _ error: ModbusError, skippedUnit: Int? = nil, time: ClockReading) -> Reading {
        let message = skippedUnit.map { "not polled: unit \($0) is failing (\(error))" } ?? error.description
        return Reading(
            channel: channel.id, time: time, value: nil, scaleExponent: channel.scaleExponent, unit: channel.unit, rawWords: [],
            quality: .commError(code: error.code, message: message))
    }
}

/// Between a bus's poll thread and the task that consumes its readings: an unbounded stream with a
/// bound kept by the producer (it waits while `limit` polls are not yet consumed), and a stop flag
/// that wakes the producer's sleeps at once. Sleeps wait on a condition variable on CLOCK_MONOTONIC,
/// so a wall-clock step never stretches or skips a poll.
final class PollHandoff: @unchecked Sendable {
    // @unchecked: `stopped`, `outstanding`, `exited` and `exitWaiter` are only read and written between
    // `condition.lock()` and `condition.unlock()`; `pending` and `pendingSince` only by the poll thread
    // (deliver, flush, finish); the stream's continuation is itself Sendable.
    let stream: AsyncStream<[ModbusBusPoller.WirePoll]>
    private let continuation: AsyncStream<[ModbusBusPoller.WirePoll]>.Continuation
    /// Polls not yet passed on, and since when (touched by the poll thread only).
    private var pending: [ModbusBusPoller.WirePoll] = []
    private var pendingSince = ContinuousClock.now
    private let limit: Int
    private let condition = MonotonicCondition()
    private var stopped = false
    private var outstanding = 0

    init(limit: Int) {
        self.limit = limit
        (stream, continuation) = AsyncStream.makeStream(of: [ModbusBusPoller.WirePoll].self, bufferingPolicy: .unbounded)
    }

    var isStopped: Bool { condition.locked { stopped } }

    func stop() {
        condition.locked { stopped = true }
        condition.broadcast()
    }

    private var exited = false
    private var exitWaiter: CheckedContinuation<Void, Never>?

    /// Called by the thread as it ends.
    func finish() {
        flush()
        continuation.finish()
        let waiter = condition.locked { () -> CheckedContinuation<Void, Never>? in
            exited = true
            defer { exitWaiter = nil }
            return exitWaiter
        }
        waiter?.resume()
    }

    /// Returns once the thread has ended (a checked continuation: cancellation does not cut it short).
    func threadExited() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let done = condition.locked { () -> Bool in
                if exited { return true }
                exitWaiter = c
                return false
            }
            if done { c.resume() }
        }
    }

    /// Takes one poll's wire results, first waiting while the consumer is `limit` polls behind; they are
    /// passed on at the next ``flush()``, or at once when ``groupSize`` polls or ``groupAge`` have
    /// accumulated. False once stopped (the readings are still passed on).
    func deliver(_ wire: ModbusBusPoller.WirePoll) -> Bool {
        condition.lock()
        while !stopped && outstanding >= limit {
            condition.unlock()
            flush()  // the consumer may be waiting for exactly these
            condition.lock()
            if !stopped && outstanding >= limit { condition.wait(until: .now + .milliseconds(100)) }
        }
        outstanding += 1
        let stopping = stopped
        condition.unlock()
        // Read from the wire is passed on, even when stopping: the consumer drains the stream to its end.
        if pending.isEmpty { pendingSince = .now }
        pending.append(wire)
        if stopping || pending.count >= Self.groupSize || ContinuousClock.now - pendingSince >= Self.groupAge { flush() }
        return !stopping
    }

    /// Passes on what has accumulated (the poll thread only).
    func flush() {
        guard !pending.isEmpty else { return }
        continuation.yield(pending)
        pending = []
    }

    static let groupSize = 32
    static let groupAge: Duration = .milliseconds(20)

    func consumed() {
        condition.locked { outstanding -= 1 }
        condition.broadcast()
    }

    /// Sleeps until `deadline` or until stopped; false when stopped.
    func sleep(until deadline: ContinuousClock.Instant) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        while !stopped && ContinuousClock.now < deadline { condition.wait(until: deadline) }
        return !stopped
    }
}

/// A pthread mutex and a condition variable that times out on CLOCK_MONOTONIC.
final class MonotonicCondition: @unchecked Sendable {
    // @unchecked: the pthread objects are allocated once, never moved, and used only through pthread
    // calls, which are thread-safe by contract.
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let cond = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    init() {
        pthread_mutex_init(mutex, nil)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(cond, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        pthread_cond_destroy(cond)
        pthread_mutex_destroy(mutex)
        cond.deallocate()
        mutex.deallocate()
    }

    func lock() { pthread_mutex_lock(mutex) }
    func unlock() { pthread_mutex_unlock(mutex) }

    func locked<T>(_ body: () -> T) -> T {
        lock()
        defer { unlock() }
        return body()
    }

    /// With the lock held: waits for a broadcast.
    func wait() { pthread_cond_wait(cond, mutex) }

    /// With the lock held: waits for a broadcast or until `deadline` (ContinuousClock, converted to a
    /// CLOCK_MONOTONIC deadline).
    func wait(until deadline: ContinuousClock.Instant) {
        let remaining = deadline - ContinuousClock.now
        guard remaining > .zero else { return }
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let ns = Int64(now.tv_nsec) + remaining.components.attoseconds / 1_000_000_000 + (remaining.components.seconds % 1_000_000) * 1_000_000_000
        var until = timespec(tv_sec: now.tv_sec + Int(ns / 1_000_000_000), tv_nsec: Int(ns % 1_000_000_000))
        pthread_cond_timedwait(cond, mutex, &until)
    }

    func broadcast() { pthread_cond_broadcast(cond) }
}
