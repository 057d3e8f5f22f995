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
    struct DeviceState {
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

    /// Polls until the task is cancelled, handing each device poll's readings to `sink`.
    public func run(sink: @Sendable ([Reading]) async -> Void) async {
        let start = ContinuousClock.now
        var states = bus.devices.map { DeviceState(device: $0, plan: RequestPlanner.plan($0.channels, maxGap: $0.maxGap), nextPoll: start) }
        var lastProbe: ContinuousClock.Instant?
        while !Task.isCancelled {
            guard let i = states.indices.min(by: { states[$0].nextPoll < states[$1].nextPoll }) else { return }
            do { try await Task.sleep(until: states[i].nextPoll, clock: .continuous) } catch { break }
            let now = ContinuousClock.now
            var readings: [Reading]
            if let retryAt = states[i].retryAt, !mayProbe(i, states, retryAt: retryAt, lastProbe: lastProbe, now: now) {
                readings = notPolled(states[i])
            } else {
                if states[i].retryAt != nil { lastProbe = now }
                readings = await poll(&states[i])
            }
            await sink(readings)
            schedule(&states[i])
        }
        client.close()
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

    /// One poll of every device of the bus, in order, with no backoff: `vouch modbus read --config`, tests.
    public func pollOnce() async -> [Reading] {
        var readings: [Reading] = []
        for device in bus.devices {
            var state = DeviceState(device: device, plan: RequestPlanner.plan(device.channels, maxGap: device.maxGap), nextPoll: .now)
            readings += await poll(&state)
        }
        return readings
    }

    /// One poll of one device: its plan, request by request.
    func poll(_ state: inout DeviceState) async -> [Reading] {
        let device = state.device
        // Readings come back in config order, whatever order the plan reads them in.
        var readings = [Reading?](repeating: nil, count: device.channels.count)
        var index = 0
        var failure: ModbusError?
        while index < state.plan.count {
            let request = state.plan[index]
            if let failure {
                for c in request.channels { readings[c] = failed(device.channels[c], failure, skippedUnit: device.unitId) }
                index += 1
                continue
            }
            do {
                let words = try await client.read(request.kind, unit: device.unitId, address: request.address, count: request.count, timeout: device.responseTimeout)
                let time = clock.now()
                for c in request.channels { readings[c] = reading(device.channels[c], request.slice(words, for: device.channels[c]), time) }
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
                for c in request.channels { readings[c] = failed(device.channels[c], error) }
                if !error.isDeviceException { failure = error }
                index += 1
            }
            if device.pauseBetweenRequests > .zero { try? await Task.sleep(for: device.pauseBetweenRequests) }
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
        return readings.compactMap { $0 }
    }

    /// The channels of a backed-off device at a poll time it skips: comm errors naming the last failure.
    func notPolled(_ state: DeviceState) -> [Reading] {
        guard let error = state.lastError else { return [] }
        return state.device.channels.map { failed($0, error, skippedUnit: state.device.unitId) }
    }

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
    func failed(_ channel: ModbusChannelSettings, _ error: ModbusError, skippedUnit: Int? = nil) -> Reading {
        let message = skippedUnit.map { "not polled: unit \($0) is failing (\(error))" } ?? error.description
        return Reading(
            channel: channel.id, time: clock.now(), value: nil, scaleExponent: channel.scaleExponent, unit: channel.unit, rawWords: [],
            quality: .commError(code: error.code, message: message))
    }
}
