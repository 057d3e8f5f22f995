import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import VouchCore
import VouchDetect
import VouchEvidence
import VouchGPIO
import VouchModbus
import VouchStore
import VouchUplink

/// The running agent, assembled from a validated config. Tests build it the same way `vouch run` does.
///
/// Services start in this order and stop in reverse: uplink, pipeline, heartbeat, pollers (one per
/// bus), control socket. So on SIGTERM the control socket closes and the pollers stop first, the pipeline flushes open summaries, and the uplink seals what is left and
/// makes one last delivery attempt; the outbox closes last.
public struct Agent: Sendable {
    public let config: AgentConfig
    public let outbox: Outbox
    public let bootCount: Int64
    public let services: [any Service]
    /// The uplink service; its own HTTP client is shut down after the group stops.
    let uplink: Uplink
    let logger: Logger
    /// The running service group, and why a restart was asked for (see ``requestRestart(reason:)``).
    let control = RunControl()

    final class RunControl: Sendable {
        let group = Mutex<ServiceGroup?>(nil)
        let restart = Mutex<String?>(nil)
    }

    /// Stops the agent in order, as SIGTERM would, and makes ``run()`` return a restart: the caller
    /// starts again on the new configuration (`vouch run` replaces itself, keeping its pid).
    public func requestRestart(reason: String) async {
        control.restart.withLock { $0 = reason }
        await control.group.withLock { $0 }?.triggerGracefulShutdown()
    }

    /// Why ``run()`` returned for a restart; nil when it stopped for good.
    public var restartReason: String? { control.restart.withLock { $0 } }

    public static func build(config: AgentConfig, logger: Logger) throws(AgentError) -> Agent {
        var key = try DeviceKeyFile.load(path: config.device.keyFile)
        // Before anything is written: an agent that cannot reach its bank over TLS must not record a
        // start (and, restarted in a loop by systemd, grow the chain) before it says so.
        try checkBankTLS(config.bank)
        let outbox: Outbox
        let recovery: OutboxRecovery?
        do { (outbox, recovery) = try Outbox.openOrRecover(path: config.device.dataDir + "/outbox.sqlite") } catch {
            throw AgentError(.store, error.description)
        }
        if let recovery {
            logger.critical(
                "the outbox was unusable (\(recovery.reason)); moved aside to \(recovery.movedTo) and started a fresh one\(recovery.head.map { " after batch \($0.bseq), the last the bank acknowledged" } ?? "")")
        }
        let budgetLogger = logger
        outbox.setBudget(DiskBudget(bytes: config.evidence.diskBudgetBytes)) { pass in
            budgetLogger.warning(
                "outbox over its disk budget (\(pass.usedBefore / 1_000) kB of \(config.evidence.diskBudgetBytes / 1_000) kB): dropped \(pass.rawDropped) raw-sample record(s), merged \(pass.summariesMerged) summaries into \(pass.summariesAdded); now \(pass.usedAfter / 1_000) kB")
            for case .gap(let gap) in pass.gaps { budgetLogger.warning("gap recorded: \(gap.detail)") }
            if pass.stillOver {
                budgetLogger.critical("the outbox is still over its disk budget: what is left is events, gaps and sealed batches waiting for the bank, which are never dropped; raise [evidence] disk_budget or restore the bank link")
            }
        }
        let bootID = SystemClock.bootID()
        let bootCount: Int64
        let previous: Outbox.PreviousRun?
        do {
            previous = try outbox.previousRun()
            bootCount = try outbox.beginBoot(bootID: bootID)
        } catch { throw AgentError(.store, error.description) }
        let clock = SystemClock(bootCount: bootCount)
        let now = clock.now()

        // A key rotation prepared with `vouch enroll --rotate` (the new key waits beside the old one).
        let nextKeyPath = DeviceKeyFile.pendingRotationPath(config.device.keyFile)
        var rotation: (newKey: SigningKey, state: Outbox.KeyRotationState)?
        if FileManager.default.fileExists(atPath: nextKeyPath) {
            let newKey = try DeviceKeyFile.load(path: nextKeyPath)
            do { rotation = (newKey, try outbox.keyRotationState(newKid: newKey.kid)) } catch { throw AgentError(.store, error.description) }
        }
        if let r = rotation, case .sealed(_, let bseq) = r.state {
            // Sealed by a run that stopped before it could switch: finish the switch now.
            try DeviceKeyFile.completeRotation(keyPath: config.device.keyFile)
            logger.notice("key rotation was sealed in batch \(bseq); now signing with \(r.newKey.kid)")
            key = r.newKey
            rotation = nil
        }

        let binaryHash = Digest256.sha256Hex(fileAt: "/proc/self/exe") ?? Digest256.zeroHex
        let readingsPerSecond = config.modbusDevices.reduce(0.0) { sum, d in
            sum + Double(d.channels.count) / max(Double(d.pollInterval.components.seconds) + Double(d.pollInterval.components.attoseconds) / 1e18, 0.001)
        }
        let heartbeatMs = Int64(config.evidence.heartbeatInterval.components.seconds * 1000)
        var startup = StartupRecords.make(
            .init(
                deviceID: config.device.id, now: now, bootID: bootID, previous: previous, config: config, binarySha256: binaryHash, keyID: key.kid,
                readingsPerSecond: readingsPerSecond, heartbeatIntervalMs: heartbeatMs, who: ProcessInfo.processInfo.environment["VOUCH_TECHNICIAN"]))
        if let recovery {
            // First: what the chain lost, before anything the fresh outbox holds.
            startup.insert(StartupRecords.storeCorruptGap(recovery, now: now), at: 0)
        }
        if let r = rotation, r.state == .notRecorded {
            let stamp = RecordStamp(rseq: 0, boot: bootCount, monoMs: now.monoMs, wallMs: now.wallMs, timeQuality: now.quality)
            startup.append(
                .keyRotation(KeyRotation(stamp: stamp, newKey: r.newKey.publicJWK, proof: KeyRotation.proof(device: config.device.id, oldKid: key.kid, newKey: r.newKey))))
        }
        do {
            let stored = try outbox.append(startup)
            try outbox.noteConfig(sha256: config.sourceHash)
            for record in stored {
                switch record {
                case .gap(let g): logger.warning("gap recorded: \(g.detail)")
                case .configChange(let c): logger.notice("config change recorded: \(c.summary) (sha256 \(c.configSha256.prefix(16))…)")
                case .keyRotation(let k): logger.notice("key rotation to \(k.newKey.thumbprint) recorded as record \(k.stamp.rseq); it is sealed with the current key \(key.kid)")
                default: break
                }
            }
            if let r = rotation, r.state == .notRecorded, case .keyRotation(let k)? = stored.last {
                rotation = (r.newKey, .recorded(rseq: k.stamp.rseq))
            }
        } catch { throw AgentError(.store, "could not record the agent start: \(error)") }

        var pending: Uplink.PendingRotation?
        if let r = rotation, case .recorded(let rseq) = r.state {
            let keyPath = config.device.keyFile
            let log = logger
            pending = Uplink.PendingRotation(newKey: r.newKey, rseq: rseq) { bseq in
                do { try DeviceKeyFile.completeRotation(keyPath: keyPath) } catch {
                    log.error("rotation sealed in batch \(bseq), but the key file could not be replaced: \(error); the next start finishes it")
                }
            }
        }
        var uplinkSettings = Uplink.Settings(
            bankURL: config.bank.url, deviceID: config.device.id, bootID: bootID, bootCount: bootCount,
            batchInterval: config.evidence.batchInterval, maxBatchRecords: config.evidence.maxBatchRecords,
            requestTimeout: config.bank.requestTimeout, bankKey: config.bank.receiptKey)
        uplinkSettings.retention = config.evidence.retention
        uplinkSettings.tls = config.bank.tls
        // Last of the steps that can fail: the uplink may own an HTTP client, which must be shut down once made.
        let uplink: Uplink
        do { uplink = try Uplink.withOwnHTTPClient(outbox: outbox, key: key, rotation: pending, settings: uplinkSettings, clock: clock, logger: logger) } catch {
            throw AgentError(.tls, error.message)
        }
        var engine: DetectionEngine
        do { engine = try DetectorFactory.engine(for: config) } catch {
            throw AgentError(.detect, error.description)
        }
        resumeDetectors(&engine, outbox: outbox, logger: logger)
        let releases = try resumeReleases(outbox: outbox, bootID: bootID, now: clock.now(), logger: logger)
        let pipeline = EvidencePipeline(
            config: config, outbox: outbox, clock: clock, logger: logger, engine: engine, releases: releases, onEvent: { uplink.sendSoon() })
        var services: [any Service] = [
            uplink, PipelineService(pipeline: pipeline),
            HeartbeatService(pipeline: pipeline, outbox: outbox, intervalMs: heartbeatMs, startedMonoMs: now.monoMs),
        ]
        var clients: [String: ModbusClient] = [:]
        for bus in ModbusBus.group(config.modbusDevices) {
            let poller = ModbusBusPoller(bus: bus, clock: clock, logger: logger)
            clients[bus.endpoint.description] = poller.client
            services.append(ModbusAcquisitionService(poller: poller, pipeline: pipeline, logger: logger))
        }
        if !config.gpio.inputs.isEmpty || !config.gpio.outputs.isEmpty {
            let backend = LibgpiodV1()
            if !config.gpio.inputs.isEmpty {
                services.append(GPIOAcquisitionService(watcher: GPIOWatcher(channels: config.gpio.inputs, backend: backend, clock: clock, logger: logger), pipeline: pipeline))
            }
            if !config.gpio.outputs.isEmpty {
                services.append(GPIOOutputService(outputs: GPIOOutputs(settings: config.gpio.outputs, backend: backend, logger: logger)))
            }
        }
        // Last to start, first to stop: the CLI's way to the buses the pollers own.
        let statusSource = ControlServer.StatusSource(
            outbox: outbox, uplink: uplink, bootCount: bootCount, configSha256: config.sourceHash, startedWallMs: now.wallMs, startedMonoMs: now.monoMs, clock: clock)
        services.append(
            ControlServer(
                path: ControlSocket.path(dataDir: config.device.dataDir), deviceID: config.device.id, clients: clients, pipeline: pipeline,
                statusSource: statusSource, logger: logger))
        if let metrics = config.metrics {
            services.append(MetricsServer(settings: metrics, source: statusSource, pipeline: pipeline, deviceID: config.device.id, logger: logger))
        }
        // Under systemd (Type=notify): started after everything else, stopped before it.
        do {
            if let notifier = try SystemdNotifier.fromEnvironment(ProcessInfo.processInfo.environment) {
                services.append(
                    SystemdNotifyService.agent(
                        notifier: notifier, pipeline: pipeline, outbox: outbox, controlSocket: ControlSocket.path(dataDir: config.device.dataDir),
                        deviceID: config.device.id, logger: logger))
            }
        } catch {
            logger.critical("systemd's notification settings are unusable (\(error)); the agent runs without telling systemd, which may restart it")
        }
        if config.bank.receiptKey == nil {
            logger.warning("no [bank] receipt_key: the bank's receipts are stored without checking their signature")
        }
        logger.info("agent \(config.device.id) starting: boot \(bootCount), key \(key.kid), binary sha256 \(binaryHash.prefix(16))…, outbox \(outbox.path), bank \(config.bank.url)\(Self.tlsSummary(config.bank))")
        return Agent(config: config, outbox: outbox, bootCount: bootCount, services: services, uplink: uplink, logger: logger)
    }

    /// Gives the rules back what they must not forget across a restart (the settled weight a
    /// weight_drop rule measures from). An unreadable saved state is logged, and the rules start afresh.
    static func resumeDetectors(_ engine: inout DetectionEngine, outbox: Outbox, logger: Logger) {
        let saved: String?
        do { saved = try outbox.state(EvidencePipeline.carryOverStateKey) } catch {
            logger.error("could not read what the detectors kept before the restart (\(error)); they start afresh")
            return
        }
        guard let saved else { return }
        guard let kept = try? JSONDecoder().decode([String: [String: Int64]].self, from: Data(saved.utf8)) else {
            logger.error("what the detectors kept before the restart does not decode; they start afresh")
            return
        }
        let resumed = engine.resume(kept)
        if !resumed.isEmpty { logger.notice("rules \(resumed.joined(separator: ", ")) resume from the settled values kept before the restart") }
    }

    /// The release windows a restart keeps (same kernel boot, time not up), after recording the end of
    /// those it cannot keep.
    static func resumeReleases(outbox: Outbox, bootID: String, now: ClockReading, logger: Logger) throws(AgentError) -> ReleaseBook {
        do {
            let saved = try outbox.state(ReleaseBook.stateKey)
            let (book, records) = ReleaseBook.resume(saved: saved, bootID: bootID, now: now)
            if !records.isEmpty {
                try outbox.append(records) { _ in (ReleaseBook.stateKey, book.encoded()) }
                for case .action(let a) in records { logger.notice("RELEASE \(a.explanation)") }
            }
            for w in book.open {
                logger.notice("RELEASE window \(w.id) still open until \(EvidencePipeline.clockTime(w.untilWallMs)) on \(w.scope): \(w.reason)")
            }
            return book
        } catch { throw AgentError(.store, "could not resume the release windows: \(error)") }
    }

    /// Builds the uplink's TLS settings as it will (full PEM parse, key against certificate, the system
    /// trust store for https:// without `ca_file`), without making a client: for `vouch config check`,
    /// and at start before anything is recorded.
    public static func checkBankTLS(_ bank: BankSettings) throws(AgentError) {
        do { _ = try UplinkTLS.clientConfiguration(bank.tls, bankURL: bank.url) } catch { throw AgentError(.tls, error.message) }
    }

    /// How the uplink authenticates the bank and itself, for the start line.
    static func tlsSummary(_ bank: BankSettings) -> String {
        guard bank.url.hasPrefix("https://") else { return "" }
        let trust = bank.tls.caFile.map { "pinned CA \($0)" } ?? "system trust store"
        let client = bank.tls.clientCertificate.map { ", client certificate \($0)" } ?? ""
        return " (TLS: \(trust)\(client))"
    }

    /// Runs until SIGTERM/SIGINT, then shuts down in order.
    public func run() async throws {
        let group = ServiceGroup(
            configuration: .init(
                services: services.map { .init(service: $0) }, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        control.group.withLock { $0 = group }
        // A restart asked for while the agent was still starting: honoured now.
        if restartReason != nil { Task { await group.triggerGracefulShutdown() } }
        do { try await group.run() } catch {
            await uplink.shutdownHTTPClient()
            throw error
        }
        await uplink.shutdownHTTPClient()  // already done when the uplink's run() ended; idempotent
        do { try outbox.noteCleanStop(wallMs: SystemClock(bootCount: bootCount).now().wallMs) } catch {
            logger.error("could not mark the clean stop: \(error)")
        }
        logger.info("agent stopped; outbox holds \((try? outbox.status().undeliveredBatches) ?? -1) undelivered batch(es)")
    }
}

/// Errors that stop the agent from starting; each says what to fix.
public struct AgentError: Error, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable {
        case key = "E_AGENT_KEY"
        case store = "E_AGENT_STORE"
        /// A `[bank]` TLS file does not load (NIOSSL's full parse, after the config loader's light check).
        case tls = "E_AGENT_TLS"
        /// A `[[detect]]` rule this build cannot run.
        case detect = "E_AGENT_DETECT"
    }
    public let code: Code
    public let message: String
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }
    public var description: String { "\(code.rawValue): \(message)" }
}
