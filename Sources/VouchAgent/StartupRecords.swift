import VouchCore
import VouchEvidence
import VouchStore

/// The records an agent start writes before any reading: what happened while it was away, what
/// changed, and what is running. Pure, so tests pin every case.
public enum StartupRecords {
    public struct Context: Sendable {
        public var deviceID: String
        public var now: ClockReading
        public var bootID: String
        public var previous: Outbox.PreviousRun?
        public var config: AgentConfig
        public var binarySha256: String
        public var keyID: String
        /// Readings the configured channels would have made per second (for the missing count of an
        /// agent-down gap).
        public var readingsPerSecond: Double
        public var heartbeatIntervalMs: Int64
        public var who: String?

        public init(
            deviceID: String, now: ClockReading, bootID: String, previous: Outbox.PreviousRun?, config: AgentConfig, binarySha256: String,
            keyID: String, readingsPerSecond: Double, heartbeatIntervalMs: Int64, who: String?
        ) {
            self.deviceID = deviceID
            self.now = now
            self.bootID = bootID
            self.previous = previous
            self.config = config
            self.binarySha256 = binarySha256
            self.keyID = keyID
            self.readingsPerSecond = readingsPerSecond
            self.heartbeatIntervalMs = heartbeatIntervalMs
            self.who = who
        }
    }

    /// The signed account of a store that had to be set aside at start.
    public static func storeCorruptGap(_ recovery: OutboxRecovery, now: ClockReading) -> EvidenceRecord {
        let stamp = RecordStamp(rseq: 0, boot: now.bootCount, monoMs: now.monoMs, wallMs: now.wallMs, timeQuality: now.quality)
        var detail = "the outbox database was unusable at start (\(recovery.reason)) and was moved aside to \(recovery.movedTo)"
        if let head = recovery.head {
            detail += "; the chain goes on after batch \(head.bseq), the last the bank acknowledged; records after rseq \(head.lastRseq) and batches after \(head.bseq) that the bank had not acknowledged are lost, how many is unknown"
        } else {
            detail += "; the bank had acknowledged nothing yet, so the chain starts again at batch 1; what the outbox held is lost, how much is unknown"
        }
        return .gap(
            GapRecord(
                stamp: stamp, reason: .storeCorrupt, channel: nil, fromBoot: recovery.head?.bootCount ?? now.bootCount, fromMonoMs: 0,
                fromWallMs: 0, toMonoMs: now.monoMs, toWallMs: now.wallMs, missing: 0, detail: detail))
    }

    /// An agent run that ended without a clean shutdown, as an event the bank's officers see (the gap
    /// record beside it says what is missing): `gateway-power-loss` when the machine rebooted in
    /// between (power cut, reset, watchdog), `agent-crash` when only the agent stopped (crash, kill).
    /// Both warnings: a power cut at a site is common, and no theft; but stock moved while the gateway
    /// was off is seen by the weight and count rules once it is back (their reference survives only in
    /// the chain), so the officer needs to know when the gateway was blind. Start and end are recorded
    /// together: the end is now. After a reboot the start's monotonic time belongs to the old kernel
    /// boot and means nothing in this one: it is 0, and the wall times and `down_ms` say when.
    static func unexpectedStop(from: RecordStamp, now: ClockReading, stamp: RecordStamp, rebooted: Bool, downMs: Int64, uncertain: Bool) -> [EvidenceRecord] {
        let rule = rebooted ? "gateway-power-loss" : "agent-crash"
        let length = uncertain ? "of unknown length (the wall clock was not synchronised on both sides)" : "of about \(HumanTime.duration(downMs))"
        let text =
            rebooted
            ? "the gateway lost power or was reset: the agent stopped without a clean shutdown after \(HumanTime.clock(from.wallMs)) and the machine rebooted (agent boot \(from.boot) → \(now.bootCount)); sensors were not read for a time \(length)"
            : "the agent stopped without a clean shutdown (crash or kill) after \(HumanTime.clock(from.wallMs)) while the gateway kept running; sensors were not read for a time \(length)"
        let params: [String: JSONValue] = ["down_ms": .int(downMs), "from_boot": .int(from.boot), "rebooted": .bool(rebooted), "clock_certain": .bool(!uncertain)]
        func event(_ phase: EventRecord.Phase) -> EvidenceRecord {
            .event(
                EventRecord(
                    stamp: stamp, eventId: "\(rule)@\(now.bootCount)", phase: phase, rule: rule, ruleVersion: 1, channel: "gateway", severity: "warning",
                    startMonoMs: rebooted ? 0 : from.monoMs, startWallMs: from.wallMs, endMonoMs: phase == .end ? now.monoMs : nil,
                    endWallMs: phase == .end ? now.wallMs : nil, durationMs: downMs, unit: "", scale: 0, params: params, window: [], explanation: text))
        }
        return [event(.start), event(.end)]
    }

    public static func make(_ c: Context) -> [EvidenceRecord] {
        let stamp = RecordStamp(rseq: 0, boot: c.now.bootCount, monoMs: c.now.monoMs, wallMs: c.now.wallMs, timeQuality: c.now.quality)
        var records: [EvidenceRecord] = []
        if let previous = c.previous, let last = previous.lastRecord {
            var from = last.stamp
            // A summary is stamped with its interval's start; its readings run to the interval's end.
            if case .summary(let s) = last {
                from.monoMs += s.intervalMs
                from.wallMs += s.intervalMs
            }
            if let clean = previous.cleanStopWallMs, clean > from.wallMs {
                from.monoMs += clean - from.wallMs
                from.wallMs = clean
            }
            let downMs = max(0, c.now.wallMs - from.wallMs)
            let rebooted = previous.bootID != nil && previous.bootID != c.bootID
            var detail = "agent not running from \(from.wallMs) to \(c.now.wallMs) (wall ms, about \(downMs / 1000) s)"
            if let clean = previous.cleanStopWallMs {
                detail += "; it was stopped cleanly at \(clean)"
            } else {
                detail += "; it stopped without a clean shutdown (crash, kill or power loss)"
            }
            if rebooted { detail += "; the machine rebooted in between" }
            if c.now.quality != .synchronized || from.timeQuality != .synchronized {
                detail += "; wall clock not synchronised on both sides, so the length is uncertain"
            }
            records.append(
                .gap(
                    GapRecord(
                        stamp: stamp, reason: .agentDown, channel: nil, fromBoot: from.boot, fromMonoMs: from.monoMs, fromWallMs: from.wallMs,
                        toMonoMs: c.now.monoMs, toWallMs: c.now.wallMs, missing: Int64((Double(downMs) / 1000 * c.readingsPerSecond).rounded()),
                        detail: detail)))
            if previous.cleanStopWallMs == nil {
                let uncertain = c.now.quality != .synchronized || from.timeQuality != .synchronized
                records += unexpectedStop(from: from, now: c.now, stamp: stamp, rebooted: rebooted, downMs: downMs, uncertain: uncertain)
            }
        }
        if c.previous?.configSha256 != c.config.sourceHash {
            let previous = c.previous?.configSha256
            records.append(
                .configChange(
                    ConfigChange(
                        stamp: stamp, configSha256: c.config.sourceHash, previousSha256: previous, source: c.config.sourceFile, who: c.who,
                        summary: "\(previous == nil ? "first configuration" : "configuration changed"): \(c.config.channels.count) channel(s) on \(c.config.modbusDevices.count) Modbus device(s), \(c.config.stoppageRules.count) stoppage rule(s)")))
        }
        records.append(
            .attestation(
                Attestation(
                    stamp: stamp, bootCount: c.now.bootCount, bootID: c.bootID, uptimeSeconds: c.now.monoMs / 1000,
                    softwareVersion: VouchCoreInfo.agentVersion, binarySha256: c.binarySha256, configSha256: c.config.sourceHash,
                    keyProtection: .softwareFile, keyID: c.keyID)))
        records.append(.heartbeat(Heartbeat(stamp: stamp, intervalMs: c.heartbeatIntervalMs, uptimeMs: 0, backlog: 0)))
        return records
    }
}
