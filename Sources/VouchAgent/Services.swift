import Logging
import ServiceLifecycle
import VouchCore
import VouchModbus

/// Polls one Modbus device until graceful shutdown, feeding the pipeline.
struct ModbusAcquisitionService: Service {
    let poller: ModbusPoller
    let pipeline: EvidencePipeline
    let logger: Logger

    func run() async throws {
        logger.info("polling \(poller.device.name) at \(poller.device.endpoint) unit \(poller.device.unitId) every \(poller.device.pollInterval), \(poller.device.channels.count) channel(s)")
        await cancelWhenGracefulShutdown {
            await poller.run { readings in await pipeline.ingest(readings) }
        }
        logger.info("stopped polling \(poller.device.name)")
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
