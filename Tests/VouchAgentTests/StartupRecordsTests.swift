import Foundation
import Testing
import VouchCore
import VouchEvidence
import VouchStore
@testable import VouchAgent

@Suite struct StartupRecordsTests {
    static let bootA = "6f1c2a9e-3b7d-4e21-9c0a-5d8e7f6a1b2c"
    static let bootB = "0b8f6f4e-1a2b-4c3d-8e9f-a0b1c2d3e4f5"
    static let binary = String(repeating: "be", count: 32)
    static let oldConfigHash = String(repeating: "0c", count: 32)

    /// The last record the previous run stored: a heartbeat of boot 1.
    static let lastStamp = RecordStamp(rseq: 0, boot: 1, monoMs: 900_000, wallMs: 1_700_000_000_000, timeQuality: .synchronized)

    static func context(
        now: ClockReading, bootID: String = bootA, previous: Outbox.PreviousRun?, config: AgentConfig, readingsPerSecond: Double = 1,
        who: String? = "j.doe"
    ) -> StartupRecords.Context {
        StartupRecords.Context(
            deviceID: "acme-press-1", now: now, bootID: bootID, previous: previous, config: config, binarySha256: binary, keyID: "kid-7",
            readingsPerSecond: readingsPerSecond, heartbeatIntervalMs: 300_000, who: who)
    }

    /// What the outbox reports of a previous run that stored `records` (the last one stamped
    /// `lastStamp`), ran with config hash `configSha256`, and stopped cleanly at `cleanStop` if given.
    static func previousRun(
        in outbox: Outbox, bootID: String = bootA, records: Bool = true, configSha256: String? = oldConfigHash, cleanStop: Int64? = nil
    ) throws -> Outbox.PreviousRun {
        #expect(try outbox.previousRun() == nil, "a fresh outbox has no previous run")
        #expect(try outbox.beginBoot(bootID: bootID) == 1)
        if records {
            var earlier = lastStamp
            earlier.monoMs -= 60_000
            earlier.wallMs -= 60_000
            try outbox.append([
                .heartbeat(Heartbeat(stamp: earlier, intervalMs: 300_000, uptimeMs: 0, backlog: 0)),
                .heartbeat(Heartbeat(stamp: lastStamp, intervalMs: 300_000, uptimeMs: 60_000, backlog: 0)),
            ])
        }
        if let configSha256 { try outbox.noteConfig(sha256: configSha256) }
        if let cleanStop { try outbox.noteCleanStop(wallMs: cleanStop) }
        return try #require(try outbox.previousRun())
    }

    /// Now: boot 2, `downSeconds` of wall time after the previous run's last record.
    static func now(downSeconds: Int64 = 3_600, quality: TimeQuality = .synchronized) -> ClockReading {
        ClockReading(bootCount: 2, monoNs: 42_000 * 1_000_000, wallNs: (lastStamp.wallMs + downSeconds * 1000) * 1_000_000, quality: quality)
    }

    static func stamp(_ now: ClockReading) -> RecordStamp {
        RecordStamp(rseq: 0, boot: now.bootCount, monoMs: now.monoMs, wallMs: now.wallMs, timeQuality: now.quality)
    }

    // MARK: first start

    @Test func firstStartRecordsTheConfigurationWhatRunsAndAHeartbeat() throws {
        let store = try TemporaryOutbox()
        defer { store.cleanUp() }
        #expect(try store.outbox.previousRun() == nil)
        let config = try AgentFixtures.config()
        let now = Self.now()
        let records = StartupRecords.make(Self.context(now: now, previous: nil, config: config))
        #expect(records.map(\.kind) == ["cfg", "att", "hb"])
        #expect(records.allSatisfy { $0.stamp == Self.stamp(now) })

        let cfg = try #require(records[0].configChange)
        #expect(cfg.configSha256 == config.sourceHash)
        #expect(cfg.previousSha256 == nil)
        #expect(cfg.source == "/etc/vouch/vouch.toml")
        #expect(cfg.who == "j.doe")
        #expect(cfg.summary == "first configuration: 1 channel(s) on 1 Modbus device(s), 1 stoppage rule(s)")

        let att = try #require(records[1].attestation)
        #expect(
            att.claims == [
                "bootcount": 2, "bootseed": "bxwqnjt9TiGcCl2Of2obLA", "uptime": 42, "swname": "vouch", "swversion": .array([.string(VouchCoreInfo.agentVersion)]),
                "vouch.bin_sha256": .string(Self.binary), "vouch.cfg_sha256": .string(config.sourceHash), "vouch.keyprot": "software-file",
                "vouch.kid": "kid-7",
            ])

        let hb = try #require(records[2].heartbeat)
        #expect(hb.intervalMs == 300_000)
        #expect(hb.uptimeMs == 0)
        #expect(hb.backlog == 0)
    }

    @Test func startupRecordsAreStoredAsValidRecordsWithTheirRseq() throws {
        let store = try TemporaryOutbox()
        defer { store.cleanUp() }
        let config = try AgentFixtures.config()
        let previous = try Self.previousRun(in: store.outbox)
        let records = StartupRecords.make(Self.context(now: Self.now(), bootID: Self.bootB, previous: previous, config: config))
        let stored = try store.outbox.append(records)
        #expect(stored.map(\.stamp.rseq) == [3, 4, 5, 6, 7, 8])
        let verified = try store.sealAndVerifyRecords()
        #expect(verified.map(\.kind) == ["hb", "hb", "gap", "evt", "evt", "cfg", "att", "hb"])
        #expect(Array(verified.suffix(6)) == stored)
    }

    @Test func aPreviousRunThatStoredNoRecordLeavesNoGap() throws {
        let store = try TemporaryOutbox()
        defer { store.cleanUp() }
        let config = try AgentFixtures.config()
        let previous = try Self.previousRun(in: store.outbox, records: false, configSha256: nil)
        #expect(previous.lastRecord == nil)
        let records = StartupRecords.make(Self.context(now: Self.now(), previous: previous, config: config))
        #expect(records.map(\.kind) == ["cfg", "att", "hb"])
        #expect(records[0].configChange?.previousSha256 == nil)
    }

    // MARK: the agent was down

    @Test func aCrashLeavesAnAgentDownGapFromTheLastRecord() throws {
        let store = try TemporaryOutbox()
        defer { store.cleanUp() }
        let config = try AgentFixtures.config()
        let previous = try Self.previousRun(in: store.outbox, configSha256: config.sourceHash)
        #expect(previous.lastRecord?.stamp.rseq == 2)
        #expect(previous.cleanStopWallMs == nil)
        let now = Self.now(downSeconds: 3_600)
        let records = StartupRecords.make(Self.context(now: now, previous: previous, config: config, readingsPerSecond: 2))
        #expect(records.map(\.kind) == ["gap", "evt", "evt", "att", "hb"], "unchanged config: no cfg record")

        let gap = try #require(records[0].gap)
        #expect(gap.stamp == Self.stamp(now))
        #expect(gap.reason == .agentDown)
        #expect(gap.channel == nil)
        #expect(gap.fromBoot == 1)
        #expect(gap.fromMonoMs == Self.lastStamp.monoMs)
        #expect(gap.fromWallMs == Self.lastStamp.wallMs)
        #expect(gap.toMonoMs == now.monoMs)
        #expect(gap.toWallMs == now.wallMs)
        #expect(gap.missing == 7_200)
        #expect(gap.detail.contains("about 3600 s"), "\(gap.detail)")
        #expect(gap.detail.contains("without a clean shutdown"), "\(gap.detail)")
        #expect(!gap.detail.contains("stopped cleanly"))
        #expect(!gap.detail.contains("rebooted"), "same boot id: no reboot")
        #expect(!gap.detail.contains("uncertain"), "both clocks synchronised")
    }

    // MARK: the unexpected stop as an event

    @Test func anUncleanStopWithoutARebootIsAnAgentCrashEvent() throws {
        let store = try TemporaryOutbox()
        defer { store.cleanUp() }
        let previous = try Self.previousRun(in: store.outbox)
        let now = Self.now(downSeconds: 90)
        let events = StartupRecords.make(Self.context(now: now, previous: previous, config: try AgentFixtures.config())).compactMap(\.event)
        #expect(events.map(\.phase) == [.start, .end])
        let e = try #require(events.last)
        #expect(e.rule == "agent-crash" && e.severity == "warning" && e.channel == "gateway" && e.eventId == "agent-crash@2")
        #expect(e.startWallMs == Self.lastStamp.wallMs && e.startMonoMs == Self.lastStamp.monoMs, "same kernel boot: the monotonic time still means something")
        #expect(e.endWallMs == now.wallMs && e.endMonoMs == now.monoMs && e.durationMs == 90_000)
        #expect(e.params == ["down_ms": .int(90_000), "from_boot": .int(1), "rebooted": .bool(false), "clock_certain": .bool(true)])
        #expect(e.explanation.contains("crash or kill") && e.explanation.hasSuffix("of about 1 min 30 s"), "\(e.explanation)")
    }

    @Test func anUncleanStopWithARebootIsAGatewayPowerLossEvent() throws {
        let store = try TemporaryOutbox()
        defer { store.cleanUp() }
        let previous = try Self.previousRun(in: store.outbox, bootID: Self.bootA)
        let events = StartupRecords.make(Self.context(now: Self.now(downSeconds: 7_200), bootID: Self.bootB, previous: previous, config: try AgentFixtures.config())).compactMap(\.event)
        let e = try #require(events.first)
        #expect(e.rule == "gateway-power-loss" && e.severity == "warning" && e.eventId == "gateway-power-loss@2")
        #expect(e.startMonoMs == 0, "the old kernel boot's monotonic time means nothing now")
        #expect(e.params["rebooted"] == .bool(true) && e.durationMs == 7_200_000)
        #expect(e.explanation.hasPrefix("the gateway lost power or was reset") && e.explanation.hasSuffix("of about 2 h"), "\(e.explanation)")
    }

    @Test func anUnsynchronisedClockMakesTheLengthOfTheStopUnknown() throws {
        let store = try TemporaryOutbox()
        defer { store.cleanUp() }
        let previous = try Self.previousRun(in: store.outbox)
        let events = StartupRecords.make(
            Self.context(now: Self.now(quality: .unsynchronized), bootID: Self.bootB, previous: previous, config: try AgentFixtures.config())
        ).compactMap(\.event)
        #expect(events.first?.params["clock_certain"] == .bool(false))
        #expect(events.first?.explanation.hasSuffix("of unknown length (the wall clock was not synchronised on both sides)") == true)
    }

    @Test func aCleanStopIsNoEventEvenWithAReboot() throws {
        let store = try TemporaryOutbox()
        defer { store.cleanUp() }
        let previous = try Self.previousRun(in: store.outbox, cleanStop: Self.lastStamp.wallMs + 1)
        let records = StartupRecords.make(Self.context(now: Self.now(), bootID: Self.bootB, previous: previous, config: try AgentFixtures.config()))
        #expect(records.compactMap(\.event).isEmpty, "a shutdown someone asked for is in the gap record, not an event")
    }

    @Test(arguments: [(1.0, Int64(3_600), Int64(3_600)), (2, 3_600, 7_200), (0.5, 120, 60), (3, 1, 3), (0, 3_600, 0), (1, 0, 0)])
    func missingIsSecondsDownTimesReadingsPerSecond(_ perSecond: Double, _ downSeconds: Int64, _ missing: Int64) throws {
        let store = try TemporaryOutbox()
        defer { store.cleanUp() }
        let previous = try Self.previousRun(in: store.outbox)
        let records = StartupRecords.make(
            Self.context(now: Self.now(downSeconds: downSeconds), previous: previous, config: try AgentFixtures.config(), readingsPerSecond: perSecond))
        #expect(records.first?.gap?.missing == missing)
    }

    @Test func aWallClockBehindTheLastRecordCountsNothingMissing() throws {
        let store = try TemporaryOutbox()
        defer { store.cleanUp() }
        let previous = try Self.previousRun(in: store.outbox)
        let records = StartupRecords.make(Self.context(now: Self.now(downSeconds: -600), previous: previous, config: try AgentFixtures.config()))
        let gap = try #require(records.first?.gap)
        #expect(gap.missing == 0)
        #expect(gap.detail.contains("about 0 s"), "\(gap.detail)")
        #expect(gap.toWallMs == Self.lastStamp.wallMs - 600_000)
    }

    @Test func aCleanStopIsSaidInTheDetail() throws {
        let store = try TemporaryOutbox()
        defer { store.cleanUp() }
        let stoppedAt = Self.lastStamp.wallMs + 2_000
        let previous = try Self.previousRun(in: store.outbox, cleanStop: stoppedAt)
        #expect(previous.cleanStopWallMs == stoppedAt)
        let records = StartupRecords.make(Self.context(now: Self.now(), previous: previous, config: try AgentFixtures.config()))
        let gap = try #require(records.first?.gap)
        #expect(gap.reason == .agentDown)
        #expect(gap.detail.contains("stopped cleanly at \(stoppedAt)"), "\(gap.detail)")
        #expect(!gap.detail.contains("without a clean shutdown"), "\(gap.detail)")
    }

    @Test func aRebootIsSaidInTheDetail() throws {
        let store = try TemporaryOutbox()
        defer { store.cleanUp() }
        let previous = try Self.previousRun(in: store.outbox, bootID: Self.bootA)
        #expect(previous.bootID == Self.bootA)
        let rebooted = StartupRecords.make(Self.context(now: Self.now(), bootID: Self.bootB, previous: previous, config: try AgentFixtures.config()))
        let gap = try #require(rebooted.first?.gap)
        #expect(gap.detail.contains("the machine rebooted in between"), "\(gap.detail)")
        #expect(gap.detail.contains("without a clean shutdown"), "\(gap.detail)")
        // The attestation names the new boot (base64url of its 16 bytes, computed with Python).
        #expect(rebooted.first { $0.kind == "att" }?.attestation?.claims["bootseed"] == "C49vThorTD2On6CxwtPk9Q")
    }

    @Test func aCleanStopAndARebootAreBothSaid() throws {
        let store = try TemporaryOutbox()
        defer { store.cleanUp() }
        let previous = try Self.previousRun(in: store.outbox, cleanStop: Self.lastStamp.wallMs + 1)
        let records = StartupRecords.make(Self.context(now: Self.now(), bootID: Self.bootB, previous: previous, config: try AgentFixtures.config()))
        let detail = try #require(records.first?.gap?.detail)
        #expect(detail.contains("stopped cleanly at \(Self.lastStamp.wallMs + 1)"), "\(detail)")
        #expect(detail.contains("rebooted"), "\(detail)")
    }

    @Test func anUnsynchronisedClockMakesTheLengthUncertain() throws {
        let store = try TemporaryOutbox()
        defer { store.cleanUp() }
        let previous = try Self.previousRun(in: store.outbox)
        let records = StartupRecords.make(Self.context(now: Self.now(quality: .unsynchronized), previous: previous, config: try AgentFixtures.config()))
        let detail = try #require(records.first?.gap?.detail)
        #expect(detail.contains("wall clock not synchronised"), "\(detail)")
        #expect(records.first?.stamp.timeQuality == .unsynchronized)
    }

    // MARK: configuration

    @Test func anUnchangedConfigurationIsNotRecordedAgain() throws {
        let store = try TemporaryOutbox()
        defer { store.cleanUp() }
        let config = try AgentFixtures.config()
        let previous = try Self.previousRun(in: store.outbox, records: false, configSha256: config.sourceHash)
        let records = StartupRecords.make(Self.context(now: Self.now(), previous: previous, config: config))
        #expect(records.map(\.kind) == ["att", "hb"])
    }

    @Test func aChangedConfigurationNamesTheOldHash() throws {
        let store = try TemporaryOutbox()
        defer { store.cleanUp() }
        let text = AgentFixtures.configText.replacingOccurrences(of: "for = \"15s\"", with: "for = \"20s\"")
        let config = try AgentFixtures.config(text, file: "/srv/vouch.toml")
        let previous = try Self.previousRun(in: store.outbox, records: false, configSha256: Self.oldConfigHash)
        let records = StartupRecords.make(Self.context(now: Self.now(), previous: previous, config: config, who: nil))
        #expect(records.map(\.kind) == ["cfg", "att", "hb"])
        let cfg = try #require(records[0].configChange)
        #expect(cfg.previousSha256 == Self.oldConfigHash)
        #expect(cfg.configSha256 == config.sourceHash)
        #expect(cfg.configSha256 != Self.oldConfigHash)
        #expect(cfg.source == "/srv/vouch.toml")
        #expect(cfg.who == nil)
        #expect(cfg.summary == "configuration changed: 1 channel(s) on 1 Modbus device(s), 1 stoppage rule(s)")
        #expect(records[1].attestation?.claims["vouch.cfg_sha256"] == .string(config.sourceHash))
    }

    /// Pins the bug where the gap started at the last summary's *start*: its readings run to the end of
    /// its interval, so the gap overlapped recorded readings and overstated the downtime.
    @Test func aGapAfterASummaryStartsAtTheEndOfItsInterval() throws {
        let store = try TemporaryOutbox()
        defer { store.cleanUp() }
        #expect(try store.outbox.beginBoot(bootID: Self.bootA) == 1)
        let summary = ReadingSummary(
            stamp: Self.lastStamp, channel: "meter.power", intervalMs: 60_000, unit: "W", scale: 0, count: 60, errors: 0, min: 1, max: 2,
            mean: 1, last: 2, lastError: nil)
        try store.outbox.append([.summary(summary)])
        let crashed = try #require(try store.outbox.previousRun())
        let now = Self.now(downSeconds: 3_600)
        let gap = try #require(StartupRecords.make(Self.context(now: now, previous: crashed, config: try AgentFixtures.config())).first?.gap)
        #expect(gap.fromWallMs == Self.lastStamp.wallMs + 60_000)
        #expect(gap.fromMonoMs == Self.lastStamp.monoMs + 60_000)
        #expect(gap.missing == 3_540, "an hour minus the minute the summary covers, at 1 reading/s")

        // A clean stop after the interval's end moves the start to the stop.
        try store.outbox.noteCleanStop(wallMs: Self.lastStamp.wallMs + 90_000)
        let stopped = try #require(try store.outbox.previousRun())
        let cleanGap = try #require(StartupRecords.make(Self.context(now: now, previous: stopped, config: try AgentFixtures.config())).first?.gap)
        #expect(cleanGap.fromWallMs == Self.lastStamp.wallMs + 90_000)
        #expect(cleanGap.missing == 3_510)
    }

    @Test func aStoreSetAsideIsASignedGapThatSaysWhereTheChainGoesOn() throws {
        let now = Self.now()
        let head = OutboxHead(bseq: 41, hash: String(repeating: "ab", count: 32), receiptHash: nil, lastRseq: 880, bootCount: 9)
        let recovered = StartupRecords.storeCorruptGap(OutboxRecovery(movedTo: "/var/lib/vouch/outbox.sqlite.corrupt-1", reason: "file is not a database", head: head), now: now)
        let gap = try #require(recovered.gap)
        #expect(gap.reason == .storeCorrupt)
        #expect(gap.channel == nil && gap.missing == 0 && gap.fromBoot == 9)
        #expect(gap.toWallMs == now.wallMs)
        #expect(gap.detail.contains("file is not a database") && gap.detail.contains("outbox.sqlite.corrupt-1"))
        #expect(gap.detail.contains("after batch 41") && gap.detail.contains("after rseq 880"), "\(gap.detail)")

        let fresh = StartupRecords.storeCorruptGap(OutboxRecovery(movedTo: "/x.corrupt-2", reason: "quick_check: bad", head: nil), now: now)
        #expect(fresh.gap?.detail.contains("starts again at batch 1") == true)
    }
}
