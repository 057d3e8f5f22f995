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
