import Logging
import ServiceLifecycle
import VouchCore
import VouchEvidence
import VouchGPIO
import VouchModbus
import VouchStore

/// Polls one Modbus device until graceful shutdown, feeding the pipeline.
struct ModbusAcquisitionService: Service {
    let poller: ModbusBusPoller
    let pipeline: EvidencePipeline
    let logger: Logger

    func run() async throws {
        let bus = poller.bus
        for device in bus.devices {
            let requests = RequestPlanner.plan(device: device).count
            logger.info(
                "polling \(device.name) at \(device.endpoint)\(device.serial.map { " \($0.summary)" } ?? "") unit \(device.unitId) every \(device.pollInterval): \(device.channels.count) channel(s) in \(requests) request(s)")
        }
        await cancelWhenGracefulShutdown {
            await poller.run { readings in await pipeline.ingest(readings) }
        }
        logger.info("stopped polling \(bus.name)")
    }
}

/// Watches the GPIO inputs; on shutdown, everything observed reaches the pipeline first.
struct GPIOAcquisitionService: Service {
    let watcher: GPIOWatcher
    let pipeline: EvidencePipeline

    func run() async throws {
        await cancelWhenGracefulShutdown {
            await watcher.run { readings in await pipeline.ingest(readings) }
        }
    }
}

/// Holds the GPIO outputs (a status LED on while the agent runs) and releases them, inactive, on shutdown.
struct GPIOOutputService: Service {
    let outputs: GPIOOutputs

    func run() async throws {
        try? await gracefulShutdown()
        outputs.release()
    }
}

/// Owns the pipeline's lifetime: on shutdown (after the pollers stopped) flushes open summaries.
struct PipelineService: Service {
    let pipeline: EvidencePipeline

    func run() async throws {
        try? await gracefulShutdown()
        await pipeline.flush()
    }
}

/// Records a heartbeat every interval, so the bank can tell a quiet site from a silenced one.
struct HeartbeatService: Service {
    let pipeline: EvidencePipeline
    let outbox: Outbox
    let intervalMs: Int64
    let startedMonoMs: Int64

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do { try await Task.sleep(for: .milliseconds(intervalMs)) } catch { return }
                let stamp = await pipeline.stampNow()
                let backlog = (try? outbox.status().undeliveredBatches) ?? -1
                await pipeline.record([.heartbeat(Heartbeat(stamp: stamp, intervalMs: intervalMs, uptimeMs: stamp.monoMs - startedMonoMs, backlog: backlog))])
            }
        }
    }
}

/// systemd's side of `Type=notify` (see ``SystemdNotifier``): `READY=1` once the CLI can reach the agent,
/// `WATCHDOG=1` at half the watchdog interval for as long as the pipeline answers (a wedged pipeline
/// stops the pings, and systemd restarts the agent), `STATUS=` for `systemctl status`, and
/// `STOPPING=1` first thing at shutdown. Started last, so it stops first. Its parts are closures so a
/// test can wedge the pipeline; ``agent(notifier:pipeline:outbox:controlSocket:deviceID:logger:)`` wires the real ones.
struct SystemdNotifyService: Service {
    /// How often `WATCHDOG=1` is due (half of `WatchdogSec`); nil when systemd watches nothing.
    let watchdogInterval: Duration?
    /// Returns when the next ping (or status refresh) is due; throws once cancelled.
    let nextPing: @Sendable () async throws -> Void
    /// Sends fields to systemd.
    let notify: @Sendable ([(String, String)]) throws -> Void
    /// Returns once the CLI can reach the agent, or once it has waited long enough.
    let whenReady: @Sendable () async -> Void
    /// Returns when the pipeline answers; never, from a wedged one.
    let pipelineAnswers: @Sendable () async -> Void
    /// The line `systemctl status` shows.
    let status: @Sendable () -> String
    let logger: Logger
    /// How often `STATUS=` is refreshed when systemd watches nothing.
    static let statusInterval: Duration = .seconds(30)

    static func agent(
        notifier: SystemdNotifier, pipeline: EvidencePipeline, outbox: Outbox, controlSocket: String, deviceID: String, logger: Logger
    ) -> SystemdNotifyService {
        SystemdNotifyService(
            watchdogInterval: notifier.watchdogInterval,
            nextPing: { try await Task.sleep(for: notifier.watchdogInterval ?? statusInterval) },
            notify: { try notifier.send($0) },
            whenReady: { await waitForControlSocket(controlSocket, logger: logger) },
            pipelineAnswers: { _ = await pipeline.stampNow() },
            status: {
                let backlog = (try? outbox.status().undeliveredBatches).map { "\($0) batch(es) not yet at the bank" } ?? "outbox unreadable"
                return "\(deviceID) recording; \(backlog)"
            },
            logger: logger)
    }

    func run() async throws {
        await whenReady()
        send([("READY", "1"), ("STATUS", status())])
        logger.info("told systemd the agent is ready\(watchdogInterval.map { "; watchdog ping every \($0)" } ?? "")")
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do { try await nextPing() } catch { return }
                // Alive means the pipeline still answers: this await never returns from a wedged one.
                await pipelineAnswers()
                // Shutting down is not proof of life: a wedged pipeline released by the cancellation sends nothing.
                if Task.isCancelled { return }
                send((watchdogInterval == nil ? [] : [("WATCHDOG", "1")]) + [("STATUS", status())])
            }
        }
        send([("STOPPING", "1"), ("STATUS", "stopping: closing summaries, sealing what is recorded")])
    }

    /// Up to 10 s for the control socket to answer; READY is sent either way (the agent records), the
    /// log says why the CLI cannot reach it.
    static func waitForControlSocket(_ controlSocket: String, logger: Logger) async {
        for _ in 0..<200 {
            if (try? ControlSocket.ask(ControlRequest(op: "ping"), socketPath: controlSocket, timeout: .milliseconds(500))) != nil { return }
            do { try await Task.sleep(for: .milliseconds(50)) } catch { return }
        }
        logger.warning("the control socket \(controlSocket) does not answer; telling systemd the agent is ready anyway (it records)")
    }

    func send(_ fields: [(String, String)]) {
        do { try notify(fields) } catch { logger.error("\(error)") }
    }
}
