import Foundation
import Logging
import VouchCore
import VouchDetect
import VouchEvidence
import VouchStore

/// Readings in, records out: runs the summarisers and detectors and appends what they produce to
/// the outbox. One actor, so detectors see readings in order.
public actor EvidencePipeline {
    let outbox: Outbox
    let clock: any AgentClock
    let shift: ShiftCalendar
    let logger: Logger
    let onEvent: @Sendable () -> Void
    private var summarizers: [String: IntervalSummarizer] = [:]
    /// Raw-sample mode: each channel's samples of the open summary interval, and its poll period.
    private var rawBuffers: [String: RawBuffer] = [:]
    private var detectors: [StoppageDetector]
    /// The `[[detect]]` rules: the same engine `vouch detect replay` runs.
    private var engine: DetectionEngine
    private var failingSince: [String: Int] = [:]
    /// Channels failing now: the first failed poll's time and how many polls failed since.
    private var unreachable: [String: (since: ClockReading, failures: Int64, lastError: String)] = [:]
    private var seen: Set<String> = []
    /// `string` channels (serial numbers, firmware versions): watched for reachability and logged when
    /// their text changes, but not summarised (summaries hold integers).
    private let textChannels: Set<String>
    private var lastText: [String: String] = [:]
    /// Wall minus monotonic time at the last reading: a jump in it is a clock step.
    private var lastClock: ClockReading?
    /// Monotonic times of recent clock steps (bounded), to mark records whose span contains one.
    private var stepsAtMonoMs: [Int64] = []
    private let summaryIntervalMs: Int64
    /// A change of wall − monotonic beyond this is a step, not drift (slewing moves ≤ 0.5 ms/s).
    static let stepThresholdMs: Int64 = 1_000
    /// Records that could not be stored yet (disk full or failing): kept in memory, oldest first, and
    /// retried every `storeRetryMs`. Bounded: past `maxUnstored`, the oldest readings go first (each
    /// counted for a gap record); events, gaps and the device's own records are always kept.
    private var unstored: [EvidenceRecord] = []
    /// Since when the outbox cannot be written, and what was dropped from memory meanwhile.
    private var storeOutage: StoreOutage?
    /// While the outbox cannot be written, a store is retried at most this often (monotonic), not at
    /// every reading: a failing write costs I/O on a board that is already in trouble.
    static let storeRetryMs: Int64 = 5_000
    private var nextStoreAttemptMonoMs: Int64 = 0
    /// Records kept in memory while the outbox cannot be written (about 200 bytes each).
    let maxUnstored: Int

    /// What the rules must not forget across a restart (``DetectionEngine/carryOver``), as last
    /// stored, and whether it may have changed since: saved with the records of a finding or a closed
    /// summary interval, in their transaction.
    private var storedCarryOver: String?
    private var carryOverDirty = false
    public static let carryOverStateKey = "detector_carry_over"

    /// Open release windows: a drop they cover is a release, not an alarm (see ``ReleaseWindow``).
    private var releases: ReleaseBook
    private let releaseSettings: ReleaseSettings
    /// Every configured channel id, in config order: what a release window may name.
    private let channelIDs: [String]
    /// For `vouch status`: each channel's unit and scale, its last good reading, the rules and their
    /// open events (by rule id).
    private let channelUnits: [String: (unit: String, scale: Int64)]
    private var lastGood: [String: Reading] = [:]
    private let ruleList: [(id: String, kind: String, channel: String)]
    private var openEvents: [String: (eventId: String, severity: String, sinceWallMs: Int64)] = [:]

    public init(
        config: AgentConfig, outbox: Outbox, clock: any AgentClock, logger: Logger, maxUnstored: Int = 10_000, engine: DetectionEngine? = nil,
        releases: ReleaseBook = ReleaseBook(bootID: SystemClock.bootID()), onEvent: @escaping @Sendable () -> Void
    ) {
        self.engine = engine ?? DetectionEngine(detectors: [], calendar: SiteCalendar(shift: config.shift, calendar: config.calendar))
        self.releases = releases
        storedCarryOver = Self.encodeCarryOver(self.engine.carryOver)
        self.releaseSettings = config.release
        self.channelIDs = config.allChannels.map(\.id)
        self.channelUnits = Dictionary(config.allChannels.map { ($0.id, ($0.unit, $0.scaleExponent)) }, uniquingKeysWith: { a, _ in a })
        self.ruleList =
            config.stoppageRules.map { ($0.id, "stoppage", $0.channel) }
            + (engine?.detectors.map { ($0.rule.id, $0.rule.kind, $0.rule.channel) } ?? [])
            + (engine?.machines.map { ($0.rule.id, $0.rule.kind, $0.rule.channel) } ?? [])
        self.outbox = outbox
        self.maxUnstored = maxUnstored
        self.clock = clock
        self.shift = config.shift
        self.logger = logger
        self.onEvent = onEvent
        let intervalMs = Int64(config.evidence.summaryInterval.components.seconds * 1000)
        summaryIntervalMs = intervalMs
        for channel in config.allChannels where channel.isNumeric {
            summarizers[channel.id] = IntervalSummarizer(channel: channel.id, intervalMs: intervalMs)
        }
        textChannels = Set(config.allChannels.filter { !$0.isNumeric }.map(\.id))
        if config.evidence.rawSamples {
            for channel in config.allChannels where channel.isNumeric {
                let c = channel.period.components
                rawBuffers[channel.id] = RawBuffer(periodMs: max(1, c.seconds * 1000 + c.attoseconds / 1_000_000_000_000_000))
            }
        }
        let channels = Dictionary(uniqueKeysWithValues: config.allChannels.map { ($0.id, $0) })
        detectors = config.stoppageRules.compactMap { rule in
            guard let channel = channels[rule.channel], let threshold = IntegerScaling.scaled(rule.below, decimals: Int(-channel.scaleExponent)) else { return nil }
            return StoppageDetector(
                rule: .init(
                    id: rule.id, channel: rule.channel, threshold: threshold,
                    minDurationMs: Int64(rule.minDuration.components.seconds * 1000 + rule.minDuration.components.attoseconds / 1_000_000_000_000_000),
                    severity: rule.severity, windowSamples: rule.windowSamples, unit: channel.unit, scaleExponent: channel.scaleExponent))
        }
    }

    public func ingest(_ readings: [Reading]) {
        expireReleases()
        var records: [EvidenceRecord] = []
        for reading in readings {
            if reading.quality == .ok { lastGood[reading.channel] = reading }
            records += clockStep(reading.time)
            if let gap = narrate(reading) { records.append(gap) }
            if textChannels.contains(reading.channel) {
                if let text = reading.text, let before = lastText.updateValue(text, forKey: reading.channel), before != text {
                    logger.notice("\(reading.channel) changed from \"\(before)\" to \"\(text)\"")
                }
                continue
            }
            if let closed = summarizers[reading.channel]?.add(reading) {
                carryOverDirty = true
                records.append(summaryRecord(closed))
                if let raw = rawBuffers[reading.channel]?.take(channel: reading.channel) { records.append(raw) }
            }
            rawBuffers[reading.channel]?.add(reading)
            let inShift = shift.contains(wallMs: reading.time.wallMs)
            let sample = StoppageDetector.Sample(monoMs: reading.time.monoMs, wallMs: reading.time.wallMs, value: reading.value)
            for i in detectors.indices where detectors[i].rule.channel == reading.channel {
                if let output = detectors[i].feed(sample, inShift: inShift) {
                    records.append(eventRecord(output, rule: detectors[i].rule))
                }
            }
            let released = releases.covers(channel: reading.channel, monoMs: reading.time.monoMs)
            for finding in engine.feed(channel: reading.channel, sample, releaseOpen: released).findings {
                carryOverDirty = true
                records.append(eventRecord(finding))
            }
        }
        store(records)
    }

    /// The carry-over as stored (sorted JSON); nil when no rule keeps anything.
    static func encodeCarryOver(_ kept: [String: [String: Int64]]) -> String? {
        guard !kept.isEmpty else { return nil }
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return (try? encoder.encode(kept)).map { String(decoding: $0, as: UTF8.self) }
    }

    // MARK: release windows

    /// Opens a release window: validates the request, stores its `release_open` record and the new
    /// window state in one transaction, and only then lets it cover readings. Throws, opening nothing,
    /// when the request is wrong or the outbox cannot be written.
    public func openRelease(_ request: ReleaseRequest) throws(ReleaseError) -> ReleaseWindow {
        let r = try ReleaseBook.validate(request, settings: releaseSettings, channels: channelIDs)
        try makeWritable()
        expireReleases()
        let stamp = stamp()
        let book = releases
        let stored: [EvidenceRecord]
        do {
            stored = try outbox.append([ReleaseBook.openRecord(r, stamp: stamp)], now: stamp) { stored in
                var next = book
                next.add(book.window(for: stored[0], request: r))
                return (ReleaseBook.stateKey, next.encoded())
            }
        } catch { throw Self.notStored(error, "opened") }
        let window = releases.window(for: stored[0], request: r)
        releases.add(window)
        logger.notice("RELEASE window \(window.id) open until \(Self.clockTime(window.untilWallMs)) on \(window.scope), by \(window.who): \(window.reason)")
        onEvent()
        return window
    }

    /// Closes the window `id` (or the only open one when nil) before its time, with its record.
    public func closeRelease(id: Int64?, by: String? = nil, peer: UnixPeer? = nil, note: String? = nil) throws(ReleaseError) -> ReleaseWindow {
        expireReleases()
        let window = try releases.pick(id, monoMs: clock.now().monoMs)
        let trimmed = note?.trimmingCharacters(in: .whitespacesAndNewlines)
        if let trimmed, trimmed.count > ReleaseBook.maxReasonLength || trimmed.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
            throw ReleaseError(.input, "the note must be one line of at most \(ReleaseBook.maxReasonLength) characters")
        }
        try makeWritable()
        let stamp = stamp()
        var next = releases
        next.remove(window.id)
        let state = next.encoded()
        do {
            try outbox.append([ReleaseBook.closeRecord(window, stamp: stamp, by: by, peer: peer, note: trimmed?.isEmpty == false ? trimmed : nil)], now: stamp) { _ in
                (ReleaseBook.stateKey, state)
            }
        } catch { throw Self.notStored(error, "closed") }
        releases = next
        logger.notice("RELEASE window \(window.id) closed after \(HumanTime.duration(stamp.monoMs - window.openedMonoMs)); drops on \(window.scope) are alarms again")
        onEvent()
        return window
    }

    /// The windows open now.
    public func openReleases() -> [ReleaseWindow] { releases.openAt(monoMs: clock.now().monoMs) }

    /// Records the end of windows whose time is up. Their cover ends at their set time whatever
    /// happens here; if the outbox cannot be written now, the records are made at a later reading.
    private func expireReleases() {
        let now = clock.now().monoMs
        guard storeOutage == nil, releases.open.contains(where: { $0.untilMonoMs <= now }) else { return }
        var next = releases
        let stamp = stamp()
        let records = next.expire(monoMs: now, stamp: stamp)
        let state = next.encoded()
        do {
            try outbox.append(records, now: stamp) { _ in (ReleaseBook.stateKey, state) }
            releases = next
            for case .action(let a) in records { logger.notice("RELEASE \(a.explanation)") }
            onEvent()
        } catch {
            logger.error("could not record the end of a release window (\(error)); its cover has ended anyway, and the record is retried")
        }
    }

    /// Stores what was kept in memory first, so a release record follows everything accepted before
    /// it; throws when the outbox still cannot be written.
    private func makeWritable() throws(ReleaseError) {
        if storeOutage != nil { store([], force: true) }
        if let outage = storeOutage {
            throw ReleaseError(.store, "the outbox cannot be written (\(outage.lastError)); nothing was changed, try again once it is")
        }
    }

    private static func notStored(_ error: StoreError, _ what: String) -> ReleaseError {
        ReleaseError(.store, "the release window was not \(what): the outbox cannot be written (\(error))")
    }

    /// Closes open summary intervals (at shutdown) so no accepted reading is left unrecorded, and
    /// records a gap for every channel still unreachable.
    public func flush() {
        var records: [EvidenceRecord] = []
        for key in summarizers.keys.sorted() {
            if let s = summarizers[key]?.flush() { records.append(summaryRecord(s)) }
            if let raw = rawBuffers[key]?.take(channel: key) { records.append(raw) }
        }
        let now = clock.now()
        for channel in unreachable.keys.sorted() {
            if let gap = unreachableGap(channel, until: now, stillDown: true) { records.append(gap) }
        }
        unreachable = [:]
        failingSince = [:]
        carryOverDirty = true
        store(records, force: true)
    }

    /// Stores records made outside the readings path (heartbeats, start-up records), in order with
    /// everything else, with the same retry-on-disk-error guarantee.
    public func record(_ records: [EvidenceRecord]) {
        store(records)
    }

    /// A stamp for a record made now.
    public func stampNow() -> RecordStamp { stamp() }

    /// What `vouch status` shows of the pipeline.
    public func status() -> PipelineStatus {
        let now = clock.now()
        let channels = channelIDs.map { id -> AgentStatus.Channel in
            let units = channelUnits[id] ?? ("", 0)
            let good = lastGood[id]
            var c = AgentStatus.Channel(
                id: id, unit: units.unit, value: good?.value, scale: units.scale, text: good?.text, readWallMs: good?.time.wallMs,
                quality: good == nil ? "waiting" : "ok")
            if let failing = unreachable[id] {
                c.quality = "failing"
                c.failingSinceWallMs = failing.since.wallMs
                c.failures = failing.failures
                c.lastError = failing.lastError
            }
            return c
        }
        let rules = ruleList.map { r -> AgentStatus.Rule in
            guard let open = openEvents[r.id] else { return AgentStatus.Rule(id: r.id, kind: r.kind, channel: r.channel, state: "quiet") }
            return AgentStatus.Rule(
                id: r.id, kind: r.kind, channel: r.channel, state: "finding", eventId: open.eventId, severity: open.severity, sinceWallMs: open.sinceWallMs)
        }
        return PipelineStatus(
            clock: AgentStatus.Clock(wallMs: now.wallMs, quality: now.quality.rawValue), channels: channels, rules: rules,
            openReleases: releases.openAt(monoMs: now.monoMs).count)
    }

    /// Keeps the open events for `vouch status` as records are made.
    private func noteEvents(_ records: [EvidenceRecord]) {
        for case .event(let e) in records {
            switch e.phase {
            case .start: openEvents[e.rule] = (e.eventId, e.severity, e.startWallMs)
            case .end: openEvents[e.rule] = nil
            }
        }
    }

    /// A clock step between the previous reading and this one, as a record; and, when the clock was
    /// synchronised before it, as a `clock-step` event too. A first synchronisation (an RTC-less board
    /// whose clock starts in 1970 or at its last shutdown) is a step from an unsynchronised clock: a
    /// record, not an event, or every boot would warn.
    private func clockStep(_ time: ClockReading) -> [EvidenceRecord] {
        defer { lastClock = time }
        guard let last = lastClock else { return [] }
        let expectedWallMs = last.wallMs + (time.monoMs - last.monoMs)
        let stepMs = time.wallMs - expectedWallMs
        guard abs(stepMs) > Self.stepThresholdMs else { return [] }
        stepsAtMonoMs.append(time.monoMs)
        if stepsAtMonoMs.count > 16 { stepsAtMonoMs.removeFirst() }
        logger.warning("wall clock stepped by \(stepMs) ms (\(last.quality.rawValue) → \(time.quality.rawValue)); recorded as a clock step, ordering is unaffected")
        let stamp = RecordStamp(rseq: 0, boot: time.bootCount, monoMs: time.monoMs, wallMs: time.wallMs, timeQuality: time.quality)
        var records: [EvidenceRecord] = [.clockStep(ClockStep(stamp: stamp, expectedWallMs: expectedWallMs, stepMs: stepMs, qualityBefore: last.quality))]
        guard last.quality == .synchronized else { return records }
        let text =
            "the wall clock was set \(stepMs > 0 ? "forward" : "back") by \(HumanTime.duration(abs(stepMs))) while it was synchronised (it read \(Self.clockTime(expectedWallMs)), now \(Self.clockTime(time.wallMs))): set by hand or a time source jumped; the records stay in order by the monotonic clock"
        logger.warning("EVENT warning clock-step: \(text)")
        let params: [String: JSONValue] = ["step_ms": .int(stepMs), "expected_wall_ms": .int(expectedWallMs), "quality_after": .string(time.quality.rawValue)]
        for phase in [EventRecord.Phase.start, .end] {
            records.append(
                .event(
                    EventRecord(
                        stamp: stamp, eventId: "clock-step@\(time.monoMs)", phase: phase, rule: "clock-step", ruleVersion: 1, channel: "gateway",
                        severity: "warning", startMonoMs: time.monoMs, startWallMs: time.wallMs, endMonoMs: phase == .end ? time.monoMs : nil,
                        endWallMs: phase == .end ? time.wallMs : nil, durationMs: 0, unit: "", scale: 0, params: params, window: [], explanation: text)))
        }
        return records
    }

    /// The quality for a record spanning monotonic `fromMs` until `toMs` (now, if nil): stepped if a
    /// step fell inside.
    private func quality(_ base: TimeQuality, spanningFrom fromMs: Int64, to toMs: Int64? = nil) -> TimeQuality {
        stepsAtMonoMs.contains { $0 > fromMs && $0 <= (toMs ?? Int64.max) } ? .stepped : base
    }

    private func unreachableGap(_ channel: String, until now: ClockReading, stillDown: Bool) -> EvidenceRecord? {
        guard let down = unreachable[channel] else { return nil }
        let lastedMs = now.monoMs - down.since.monoMs
        // Shorter outages show in the summaries' error counts; a gap record is for one that cost at
        // least a whole summary interval.
        guard lastedMs >= summaryIntervalMs else { return nil }
        let detail = "\(channel) did not answer for \(lastedMs / 1000) s (\(down.failures) failed polls, last error \(down.lastError))"
            + (stillDown ? "; still unreachable when the agent stopped" : "")
        logger.warning("gap recorded: \(detail)")
        return .gap(
            GapRecord(
                stamp: stamp(), reason: .sensorUnreachable, channel: channel, fromBoot: down.since.bootCount, fromMonoMs: down.since.monoMs,
                fromWallMs: down.since.wallMs, toMonoMs: now.monoMs, toWallMs: now.wallMs, missing: down.failures, detail: detail))
    }

    private func store(_ records: [EvidenceRecord], force: Bool = false) {
        noteEvents(records)
        let kept = unstored + records
        guard !kept.isEmpty else { return }
        if storeOutage != nil, !force, clock.now().monoMs < nextStoreAttemptMonoMs {
            unstored = kept
            shedUnstored()
            return
        }
        // Storing again after an outage: the chain says what happened, after what was kept.
        let narration = storeOutage?.records(now: clock.now(), stamp: stamp()) ?? []
        // The rules' carry-over, when it changed, goes in the same transaction as these records: after
        // a power cut the agent resumes from what its last stored findings say, never from older.
        var carryOver: String?
        if carryOverDirty {
            let encoded = Self.encodeCarryOver(engine.carryOver)
            if encoded != storedCarryOver { carryOver = encoded }
        }
        do {
            let stored = try outbox.append(kept + narration, now: stamp(), state: carryOver.map { value in { _ in (Self.carryOverStateKey, value) } })
            if carryOverDirty {
                carryOverDirty = false
                if let carryOver { storedCarryOver = carryOver }
            }
            unstored = []
            if let outage = storeOutage {
                logger.notice(
                    "the outbox is writable again after \(outage.durationText(now: clock.now())); \(kept.count) record(s) kept in memory are stored, \(outage.droppedTotal) reading record(s) were dropped (recorded as disk_budget gaps)")
                storeOutage = nil
            }
            // After the commit: a test that cuts the power holds the agent to every range logged here.
            if let first = stored.first?.stamp.rseq, let last = stored.last?.stamp.rseq {
                logger.debug("stored records \(first)…\(last)")
            }
            if kept.contains(where: { if case .event = $0 { true } else { false } }) || !narration.isEmpty { onEvent() }
        } catch {
            if storeOutage == nil {
                storeOutage = StoreOutage(since: clock.now(), lastError: error)
                logger.critical("the outbox cannot be written (\(error)); the agent keeps running and keeps up to \(maxUnstored) records in memory until it can")
            }
            storeOutage?.lastError = error
            nextStoreAttemptMonoMs = clock.now().monoMs + Self.storeRetryMs
            unstored = kept
            shedUnstored()
        }
    }

    /// Keeps memory bounded while nothing can be stored: drops the oldest readings beyond
    /// `maxUnstored`, counting them per channel for the gap records written at recovery.
    private func shedUnstored() {
        guard unstored.count > maxUnstored else { return }
        var excess = unstored.count - maxUnstored
        var kept: [EvidenceRecord] = []
        kept.reserveCapacity(maxUnstored)
        for record in unstored {
            if excess > 0, record.isReading {
                storeOutage?.noteDropped(record)
                excess -= 1
            } else {
                kept.append(record)
            }
        }
        unstored = kept
    }

    private func stamp() -> RecordStamp {
        let now = clock.now()
        return RecordStamp(rseq: 0, boot: now.bootCount, monoMs: now.monoMs, wallMs: now.wallMs, timeQuality: now.quality)
    }

    private func summaryRecord(_ s: IntervalSummarizer.Summary) -> EvidenceRecord {
        var stamp = stamp()
        stamp.monoMs = s.start.monoMs
        stamp.wallMs = s.start.wallMs
        // The interval's readings are its span: a step detected by the reading that closes it is not in it.
        stamp.timeQuality = quality(s.start.quality, spanningFrom: s.start.monoMs, to: s.start.monoMs + s.intervalMs - 1)
        let mean = s.mean.map { Self.format($0, s.scaleExponent, s.unit) } ?? "—"
        logger.info("\(s.channel): \(s.count) readings in \(s.intervalMs / 1000) s, mean \(mean)\(s.errors > 0 ? ", \(s.errors) failed polls (\(s.lastError ?? ""))" : "")")
        return .summary(
            ReadingSummary(
                stamp: stamp, channel: s.channel, intervalMs: s.intervalMs, unit: s.unit, scale: s.scaleExponent, count: s.count,
                errors: s.errors, min: s.min, max: s.max, mean: s.mean, last: s.last, lastError: s.lastError))
    }

    private func eventRecord(_ output: StoppageDetector.Output, rule: StoppageDetector.Rule) -> EvidenceRecord {
        let params: [String: JSONValue] = ["below": .int(rule.threshold), "min_duration_ms": .int(rule.minDurationMs), "window_samples": .int(Int64(rule.windowSamples))]
        let baseline: JSONValue = ["threshold": .int(rule.threshold)]
        func stamp(since startMonoMs: Int64) -> RecordStamp {
            var s = self.stamp()
            s.timeQuality = quality(s.timeQuality, spanningFrom: startMonoMs)
            return s
        }
        let threshold = Self.format(rule.threshold, rule.scaleExponent, rule.unit)
        switch output {
        case .started(let start, let duration, let lowest, let window):
            let text = "\(rule.channel) below \(threshold) since \(Self.clockTime(start.wallMs)) (\(duration / 1000) s, lowest \(lowest.map { Self.format($0, rule.scaleExponent, rule.unit) } ?? "—")) during the shift: production stopped"
            logger.notice("STOPPAGE detected by rule \(rule.id): \(text)")
            return .event(
                EventRecord(
                    stamp: stamp(since: start.monoMs), eventId: Self.eventID(rule, start), phase: .start, rule: rule.id, ruleVersion: rule.version, channel: rule.channel,
                    severity: rule.severity, startMonoMs: start.monoMs, startWallMs: start.wallMs, endMonoMs: nil, endWallMs: nil, durationMs: duration,
                    unit: rule.unit, scale: rule.scaleExponent, params: params, baseline: baseline,
                    window: window.map { WindowSample(monoMs: $0.monoMs, wallMs: $0.wallMs, value: $0.value) }, explanation: text))
        case .ended(let start, let end, let duration):
            let text = "\(rule.channel) back at or above \(threshold) at \(Self.clockTime(end.wallMs)): production resumed after \(duration / 1000) s stopped"
            logger.notice("STOPPAGE ended (rule \(rule.id)): \(text)")
            return .event(
                EventRecord(
                    stamp: stamp(since: start.monoMs), eventId: Self.eventID(rule, start), phase: .end, rule: rule.id, ruleVersion: rule.version, channel: rule.channel,
                    severity: rule.severity, startMonoMs: start.monoMs, startWallMs: start.wallMs, endMonoMs: end.monoMs, endWallMs: end.wallMs,
                    durationMs: duration, unit: rule.unit, scale: rule.scaleExponent, params: params, baseline: baseline, window: [], explanation: text))
        }
    }

    /// Logs what a technician should see, and returns a gap record when an outage of a channel ends.
    private func narrate(_ reading: Reading) -> EvidenceRecord? {
        var gap: EvidenceRecord?
        switch reading.quality {
        case .ok:
            if let failures = failingSince.removeValue(forKey: reading.channel) {
                logger.notice("\(reading.channel) readable again after \(failures) failed poll(s)")
                gap = unreachableGap(reading.channel, until: reading.time, stillDown: false)
                unreachable[reading.channel] = nil
            }
            if seen.insert(reading.channel).inserted, let v = reading.value {
                logger.info("first reading from \(reading.channel): \(Self.format(v, reading.scaleExponent, reading.unit)) (raw registers \(reading.rawWords.map { String(format: "0x%04X", $0) }.joined(separator: " ")))")
            }
        case .commError(let code, let message):
            let failures = (failingSince[reading.channel] ?? 0) + 1
            failingSince[reading.channel] = failures
            if failures == 1 { logger.warning("\(reading.channel) unreadable (\(code)): \(message)") }
            let since = unreachable[reading.channel]?.since ?? reading.time
            unreachable[reading.channel] = (since, Int64(failures), code)
        }
        return gap
    }

    /// A `[[detect]]` rule's finding as an event record.
    private func eventRecord(_ f: Finding) -> EvidenceRecord {
        var stamp = self.stamp()
        stamp.timeQuality = quality(stamp.timeQuality, spanningFrom: f.start.monoMs)
        let params = f.params.mapValues { p -> JSONValue in
            switch p {
            case .int(let v): .int(v)
            case .text(let t): .string(t)
            }
        }
        let baseline: JSONValue = f.baseline.isEmpty ? .null : .object(f.baseline.mapValues { .int($0) })
        let text = "\(f.explanation) (since \(Self.clockTime(f.start.wallMs)))"
        logger.notice("\(f.phase == .start ? "EVENT" : "EVENT ENDED") \(f.severity.rawValue) by rule \(f.rule.id) (\(f.rule.kind)): \(text)")
        return .event(
            EventRecord(
                stamp: stamp, eventId: "\(f.rule.id)@\(f.start.monoMs)", phase: f.phase == .start ? .start : .end, rule: f.rule.id, ruleVersion: f.rule.version,
                channel: f.rule.channel, severity: f.severity.rawValue, startMonoMs: f.start.monoMs, startWallMs: f.start.wallMs, endMonoMs: f.end?.monoMs,
                endWallMs: f.end?.wallMs, durationMs: f.durationMs, unit: f.rule.unit, scale: f.rule.scaleExponent, params: params, baseline: baseline,
                window: f.window.map { WindowSample(monoMs: $0.monoMs, wallMs: $0.wallMs, value: $0.value) }, explanation: text))
    }

    static func eventID(_ rule: StoppageDetector.Rule, _ start: StoppageDetector.Sample) -> String {
        "\(rule.id)@\(start.monoMs)"
    }

    /// 12034 with exponent -1 and unit "W" → "1203.4 W".
    static func format(_ value: Int64, _ exponent: Int64, _ unit: String) -> String {
        IntegerScaling.text(value, exponent: exponent, unit: unit)
    }

    static func clockTime(_ wallMs: Int64) -> String {
        let f = DateFormatter()
        f.dateFormat = "HH:mm:ss"
        f.timeZone = TimeZone(identifier: "UTC")
        return f.string(from: Date(timeIntervalSince1970: Double(wallMs) / 1000)) + "Z"
    }
}

/// A time during which the outbox could not be written (file system full, failing storage), and the
/// readings the pipeline had to drop from memory meanwhile.
struct StoreOutage {
    let since: ClockReading
    var lastError: StoreError
    /// Dropped readings per channel: how many, from when to when (monotonic times of one boot: the
    /// pipeline lives in one).
    private var dropped: [String: (count: Int64, fromMonoMs: Int64, fromWallMs: Int64, toMonoMs: Int64, toWallMs: Int64)] = [:]

    init(since: ClockReading, lastError: StoreError) {
        self.since = since
        self.lastError = lastError
    }

    var droppedTotal: Int64 { dropped.values.reduce(0) { $0 + $1.count } }

    mutating func noteDropped(_ record: EvidenceRecord) {
        let (channel, endMono, endWall): (String, Int64, Int64)
        switch record {
        case .summary(let s): (channel, endMono, endWall) = (s.channel, s.stamp.monoMs + s.intervalMs, s.stamp.wallMs + s.intervalMs)
        case .raw(let r):
            let span = r.periodMs * Int64(r.values.count)
            (channel, endMono, endWall) = (r.channel, r.stamp.monoMs + span, r.stamp.wallMs + span)
        default: return
        }
        let s = record.stamp
        var entry = dropped[channel] ?? (0, s.monoMs, s.wallMs, endMono, endWall)
        entry.count += 1
        if s.monoMs < entry.fromMonoMs { (entry.fromMonoMs, entry.fromWallMs) = (s.monoMs, s.wallMs) }
        if endMono > entry.toMonoMs { (entry.toMonoMs, entry.toWallMs) = (endMono, endWall) }
        dropped[channel] = entry
    }

    func durationText(now: ClockReading) -> String { "\((now.monoMs - since.monoMs) / 1000) s" }

    /// What the chain is told once the outbox is writable again: the outage as an event (start and end
    /// together, since neither could be stored before) and a `disk_budget` gap per channel that lost
    /// readings.
    func records(now: ClockReading, stamp: RecordStamp) -> [EvidenceRecord] {
        let seconds = (now.monoMs - since.monoMs) / 1000
        let lost = droppedTotal
        let text =
            "the outbox could not be written for \(seconds) s (\(lastError.code.rawValue)); records were kept in memory and are stored now"
            + (lost > 0 ? "; \(lost) reading record(s) beyond the memory limit were dropped (see the disk_budget gaps)" : "; nothing was lost")
        func event(_ phase: EventRecord.Phase) -> EvidenceRecord {
            .event(
                EventRecord(
                    stamp: stamp, eventId: "store-unwritable@\(since.monoMs)", phase: phase, rule: "store-unwritable", ruleVersion: 1, channel: "outbox",
                    severity: "high", startMonoMs: since.monoMs, startWallMs: since.wallMs, endMonoMs: phase == .end ? now.monoMs : nil,
                    endWallMs: phase == .end ? now.wallMs : nil, durationMs: now.monoMs - since.monoMs, unit: "", scale: 0,
                    params: ["error": .string(lastError.code.rawValue)], window: [], explanation: text))
        }
        var records = [event(.start), event(.end)]
        for channel in dropped.keys.sorted() {
            guard let d = dropped[channel] else { continue }
            records.append(
                .gap(
                    GapRecord(
                        stamp: stamp, reason: .diskBudget, channel: channel, fromBoot: since.bootCount, fromMonoMs: d.fromMonoMs, fromWallMs: d.fromWallMs,
                        toMonoMs: d.toMonoMs, toWallMs: d.toWallMs, missing: d.count,
                        detail: "the outbox could not be written (\(lastError.code.rawValue)) and the agent's memory limit was reached: \(d.count) reading record(s) of \(channel) were dropped")))
        }
        return records
    }
}

/// The samples of one channel during one summary interval, for a `raw` record. A sample goes to the
/// period slot nearest its monotonic time; a slot no poll filled (a skipped or late cycle) and a failed
/// poll are both null. Memory: one optional integer per poll of the interval.
struct RawBuffer {
    let periodMs: Int64
    private var first: ClockReading?
    private var unit = ""
    private var scale: Int64 = 0
    private var values: [Int64?] = []

    init(periodMs: Int64) { self.periodMs = periodMs }

    mutating func add(_ reading: Reading) {
        let value: Int64? = if case .ok = reading.quality { reading.value } else { nil }
        guard let first else {
            self.first = reading.time
            unit = reading.unit
            scale = reading.scaleExponent
            values = [value]
            return
        }
        let slot = Int((reading.time.monoMs - first.monoMs + periodMs / 2) / periodMs)
        // Two samples in one slot (a late poll, then one on time): keep both, in order.
        if slot > values.count { values += Array(repeating: nil, count: slot - values.count) }
        values.append(value)
    }

    /// The record for the samples so far (nil if none), emptying the buffer.
    mutating func take(channel: String) -> EvidenceRecord? {
        guard let start = first else { return nil }
        defer {
            first = nil
            values = []
        }
        return .raw(
            RawSamples(
                stamp: RecordStamp(rseq: 0, boot: start.bootCount, monoMs: start.monoMs, wallMs: start.wallMs, timeQuality: start.quality),
                channel: channel, unit: unit, scale: scale, periodMs: periodMs, values: values))
    }
}
