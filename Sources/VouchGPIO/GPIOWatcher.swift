import Foundation
import Logging
import Synchronization
import VouchCore

/// Watches the configured input lines and turns their edges into readings, on a thread of its own
/// that blocks in the kernel's event wait (edges are read promptly: the v1 uAPI queues only 16).
///
/// Per channel, at every sample interval: `level` 0/1, `counter` the running total of pulses, `duty`
/// the active share of the interval in per mille; a `level` channel also gets a reading at each
/// debounced change, dated by the kernel's timestamp, so a door opened and closed between two samples
/// is still on record. When the watcher stops, every channel is sampled once more (a partial interval),
/// so pulses and active time since the last sample are recorded too. Edges that were lost (see ``EdgeContinuity``) add a comm-error reading
/// `E_GPIO_EDGES_LOST` beside the value, never hiding it. A chip or line that cannot be requested
/// (missing, busy, no permission) gives a comm-error reading per sample with its code, and is
/// requested again every 5 s.
///
/// Memory stays bounded when the consumer (the store) falls behind a chattering line. Past
/// ``Backlog/shedChanges`` readings handed over and not yet consumed, a level channel's changes are
/// counted instead of recorded one by one, and the count is reported at the next sample as
/// `E_GPIO_CHANGES_NOT_RECORDED` (samples, pulse totals and duty stay exact: they are computed here).
/// Past ``Backlog/wait`` the watcher waits for the consumer, as a Modbus bus does; edges then queue in
/// the kernel, and any it drops are reported as `E_GPIO_EDGES_LOST`. Nothing is dropped unsaid.
public struct GPIOWatcher: Sendable {
    public let channels: [GPIOInputChannelSettings]
    let backend: any GPIOBackend
    let clock: any AgentClock
    let logger: Logger
    let backlog: Backlog
    public static let consumer = "vouch"
    static let retryNs: Int64 = 5_000_000_000

    /// Readings handed to the consumer and not yet consumed, at which the watcher changes course.
    public struct Backlog: Sendable {
        /// From here a level channel's changes are counted, not recorded one by one.
        public var shedChanges: Int
        /// From here the watcher waits for the consumer.
        public var wait: Int
        /// About 1 MB of readings held at most; 4,096 changes is a minute of a line chattering at 70 Hz
        /// with nothing consumed.
        public static let standard = Backlog(shedChanges: 4_096, wait: 16_384)

        public init(shedChanges: Int, wait: Int) {
            self.shedChanges = shedChanges
            self.wait = wait
        }
    }

    public init(channels: [GPIOInputChannelSettings], backend: any GPIOBackend, clock: any AgentClock, logger: Logger, backlog: Backlog = .standard) {
        self.channels = channels
        self.backend = backend
        self.clock = clock
        self.logger = logger
        self.backlog = backlog
    }

    /// Watches until the task is cancelled; everything observed reaches `sink` before this returns.
    public func run(sink: @escaping @Sendable ([Reading]) async -> Void) async {
        // Unbounded as a stream; the bound is kept by the watcher, which sees `outstanding`.
        let (stream, continuation) = AsyncStream.makeStream(of: [Reading].self, bufferingPolicy: .unbounded)
        let stop = Mutex(false)
        let outstanding = Atomic<Int>(0)
        let thread = Thread { [self] in
            watch(
                until: { stop.withLock { $0 } },
                deliver: {
                    outstanding.add($0.count, ordering: .relaxed)
                    continuation.yield($0)
                },
                outstanding: { outstanding.load(ordering: .relaxed) })
            continuation.finish()
        }
        thread.name = "vouch.gpio"
        thread.start()
        let consumer = Task {
            for await readings in stream {
                await sink(readings)
                outstanding.subtract(readings.count, ordering: .relaxed)
            }
        }
        await withTaskCancellationHandler {
            await consumer.value
        } onCancel: {
            stop.withLock { $0 = true }
        }
    }

    /// The lines of one chip, requested together.
    struct Group {
        var chip: String?
        var members: [Int]
        var inputs: (any GPIOInputs)?
        var error: GPIOError?
        var retryAtNs: Int64 = 0
    }

    struct ChannelState {
        var debouncer: Debouncer
        var continuity: EdgeContinuity
        var counter: PulseCounter
        var duty: DutyCycle
        var nextSampleNs: Int64
        /// When the last sample was taken (the start, before the first).
        var lastSampleNs: Int64
        var lostSinceSample: Int64 = 0
        /// Level changes counted but not recorded since the last sample (the consumer was behind).
        var unrecordedSinceSample: Int64 = 0
    }

    /// The blocking loop: `stopped` is polled at least every 100 ms. `outstanding`: readings delivered
    /// and not yet consumed.
    func watch(until stopped: () -> Bool, deliver: ([Reading]) -> Void, outstanding: () -> Int = { 0 }) {
        let start = clock.now().monoNs
        var groups = Dictionary(grouping: channels.indices, by: { channels[$0].chip }).map { Group(chip: $0.key, members: $0.value.sorted()) }
            .sorted { ($0.members.first ?? 0) < ($1.members.first ?? 0) }
        var states = channels.map {
            ChannelState(
                debouncer: Debouncer(stableNs: Self.ns($0.debounce), initial: false), continuity: EdgeContinuity(level: false), counter: PulseCounter(startNs: start),
                duty: DutyCycle(active: false, startNs: start), nextSampleNs: start + Self.ns($0.sampleInterval), lastSampleNs: start)
        }
        defer { for g in groups { g.inputs?.close() } }
        // The last turn, once stopped, reads the edges already queued and samples every channel: the
        // pulses and active time since the last sample are on record, not lost with the process.
        var stopping = false
        while !stopping {
            stopping = stopped()
            var out: [Reading] = []
            let shed = outstanding() >= backlog.shedChanges
            for gi in groups.indices where !stopping && groups[gi].inputs == nil && clock.now().monoNs >= groups[gi].retryAtNs {
                request(&groups[gi], &states)
            }
            let live = groups.indices.filter { groups[$0].inputs != nil }
            let nextSample = states.map(\.nextSampleNs).min() ?? (clock.now().monoNs + 1_000_000_000)
            let waitNs = stopping ? 0 : max(1_000_000, min(100_000_000, nextSample - clock.now().monoNs)) / Int64(max(1, live.count))
            if live.isEmpty && !stopping { Thread.sleep(forTimeInterval: Double(waitNs) / 1e9) }
            for gi in live {
                guard let inputs = groups[gi].inputs else { continue }
                do {
                    let edges = try inputs.waitForEdges(timeout: .nanoseconds(waitNs))
                    let now = clock.now()
                    for e in edges {
                        let c = groups[gi].members[e.line]
                        if states[c].continuity.edge(rising: e.rising) { states[c].lostSinceSample += 1 }
                        if let change = states[c].debouncer.edge(rising: e.rising, atNs: e.monoNs) { out += changed(c, change, &states, now, shed: shed) }
                    }
                    if edges.isEmpty {
                        // A quiet line's level must be what its last edge said; otherwise edges were lost.
                        let levels = try inputs.values()
                        for (i, c) in groups[gi].members.enumerated() where states[c].continuity.check(current: levels[i] == 1) {
                            states[c].lostSinceSample += 1
                            // The lost edges' times are unknown: the level is taken as of now.
                            if let change = states[c].debouncer.edge(rising: levels[i] == 1, atNs: now.monoNs) { out += changed(c, change, &states, now, shed: shed) }
                        }
                    }
                } catch {
                    logger.error("GPIO lines \(groups[gi].members.map { channels[$0].line }) stopped answering: \(error); requesting them again")
                    inputs.close()
                    groups[gi].inputs = nil
                    groups[gi].error = error
                    groups[gi].retryAtNs = clock.now().monoNs + Self.retryNs
                }
            }
            let now = clock.now()
            for c in states.indices {
                if let change = states[c].debouncer.advance(toNs: now.monoNs) { out += changed(c, change, &states, now, shed: shed) }
            }
            // (At stop, a channel sampled at this very instant has no interval left to report.)
            for c in states.indices where now.monoNs >= states[c].nextSampleNs || (stopping && now.monoNs > states[c].lastSampleNs) {
                let group = groups.first { $0.members.contains(c) }
                out += sample(c, &states, now, failure: group?.inputs == nil ? group?.error : nil)
                states[c].lastSampleNs = now.monoNs
                let interval = Self.ns(channels[c].sampleInterval)
                states[c].nextSampleNs += interval * max(1, (now.monoNs - states[c].nextSampleNs) / interval + 1)
            }
            if !out.isEmpty { deliver(out) }
            // The consumer is far behind: wait for it rather than grow without bound.
            while outstanding() >= backlog.wait && !stopping && !stopped() { Thread.sleep(forTimeInterval: 0.01) }
        }
    }

    private func request(_ group: inout Group, _ states: inout [ChannelState]) {
        let members = group.members
        do throws(GPIOError) {
            let chip: String
            if let named = group.chip { chip = named } else { chip = try backend.chip(having: members.map { channels[$0].line }) }
            let inputs = try backend.requestInputs(
                chip: chip, lines: members.map { GPIOInputSettings(line: channels[$0].line, bias: channels[$0].bias, activeLow: channels[$0].activeLow) },
                consumer: Self.consumer)
            let levels = try inputs.values()
            let now = clock.now().monoNs
            for (i, c) in members.enumerated() {
                let active = levels[i] == 1
                states[c].debouncer = Debouncer(stableNs: Self.ns(channels[c].debounce), initial: active)
                states[c].continuity = EdgeContinuity(level: active)
                // Intervals restart when watching (re)starts: time without the line is not time inactive.
                states[c].duty = DutyCycle(active: active, startNs: now)
                _ = states[c].counter.closeInterval(atNs: now)
            }
            if group.error != nil { logger.notice("GPIO lines \(members.map { channels[$0].line }) on \"\(chip)\" requested again") }
            logger.info("watching GPIO \(members.map { "\(channels[$0].line) (\(channels[$0].id), \(channels[$0].signal.rawValue))" }.joined(separator: ", ")) on \"\(chip)\"")
            group.inputs = inputs
            group.error = nil
        } catch {
            if group.error?.code != error.code { logger.error("GPIO: \(error)") }
            group.error = error
            group.retryAtNs = clock.now().monoNs + Self.retryNs
        }
    }

    private func changed(_ c: Int, _ change: LevelChange, _ states: inout [ChannelState], _ now: ClockReading, shed: Bool) -> [Reading] {
        states[c].duty.level(change)
        if change.active { states[c].counter.edge(rising: true) }
        guard channels[c].signal == .level else { return [] }
        guard !shed else {
            states[c].unrecordedSinceSample += 1
            return []
        }
        let at = ClockReading(bootCount: now.bootCount, monoNs: change.sinceNs, wallNs: now.wallNs - (now.monoNs - change.sinceNs), quality: now.quality)
        return [reading(c, at, value: change.active ? 1 : 0)]
    }

    private func sample(_ c: Int, _ states: inout [ChannelState], _ now: ClockReading, failure: GPIOError?) -> [Reading] {
        let channel = channels[c]
        if let failure {
            return [Reading(channel: channel.id, time: now, value: nil, scaleExponent: channel.signal.scaleExponent, unit: channel.signal.unit, rawWords: [], quality: .commError(code: failure.code, message: failure.message))]
        }
        let value: Int64
        switch channel.signal {
        case .level: value = states[c].debouncer.active ? 1 : 0
        case .counter:
            _ = states[c].counter.closeInterval(atNs: now.monoNs)
            value = states[c].counter.total
        case .duty: value = states[c].duty.closeInterval(atNs: now.monoNs)
        }
        var out = [reading(c, now, value: value)]
        // Beside the value, never instead of it: what the value may be missing.
        func flag(_ code: String, _ message: String) {
            out.append(
                Reading(
                    channel: channel.id, time: now, value: nil, scaleExponent: channel.signal.scaleExponent, unit: channel.signal.unit, rawWords: [],
                    quality: .commError(code: code, message: message)))
        }
        if states[c].lostSinceSample > 0 {
            flag("E_GPIO_EDGES_LOST", "\(states[c].lostSinceSample) loss(es) of edges on \(channel.line) since the last sample (the kernel keeps 16 per line): counts and times are lower bounds")
            states[c].lostSinceSample = 0
        }
        if states[c].unrecordedSinceSample > 0 {
            flag(
                "E_GPIO_CHANGES_NOT_RECORDED",
                "\(states[c].unrecordedSinceSample) change(s) of \(channel.line) since the last sample were counted but not recorded one by one: the store fell behind (the level at each sample is recorded)")
            states[c].unrecordedSinceSample = 0
        }
        return out
    }

    private func reading(_ c: Int, _ time: ClockReading, value: Int64) -> Reading {
        let channel = channels[c]
        return Reading(channel: channel.id, time: time, value: value, scaleExponent: channel.signal.scaleExponent, unit: channel.signal.unit, rawWords: [], quality: .ok)
    }

    static func ns(_ d: Duration) -> Int64 { d.components.seconds * 1_000_000_000 + d.components.attoseconds / 1_000_000_000 }
}

/// Drives the configured outputs: a `running` output is active from start to stop.
public final class GPIOOutputs: Sendable {
    private let held: Mutex<[any GPIOOutput]>
    let logger: Logger

    public init(settings: [GPIOOutputSettings], backend: any GPIOBackend, logger: Logger) {
        self.logger = logger
        var held: [any GPIOOutput] = []
        for o in settings {
            do throws(GPIOError) {
                let chip: String
                if let named = o.chip { chip = named } else { chip = try backend.chip(having: [o.line]) }
                held.append(try backend.requestOutput(chip: chip, line: o.line, activeLow: o.activeLow, initial: o.role == .running, consumer: GPIOWatcher.consumer))
                logger.info("GPIO output \(o.name) (\(o.line) on \"\(chip)\") on while the agent runs")
            } catch {
                logger.error("GPIO output \(o.name): \(error)")
            }
        }
        self.held = Mutex(held)
    }

    /// Drives every output inactive and releases it.
    public func release() {
        held.withLock { outputs in
            for o in outputs { o.close() }
            outputs = []
        }
    }
}
