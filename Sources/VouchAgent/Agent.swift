import Foundation
import Logging
import ServiceLifecycle
import VouchCore
import VouchEvidence
import VouchModbus
import VouchStore
import VouchUplink

/// The running agent, assembled from a validated config. Tests build it the same way `vouch run` does.
///
/// Services start in this order and stop in reverse: uplink, pipeline, pollers. So on SIGTERM the
/// pollers stop first, the pipeline flushes open summaries, and the uplink seals what is left and
/// makes one last delivery attempt; the outbox closes last.
public struct Agent: Sendable {
    public let config: AgentConfig
    public let outbox: Outbox
    public let bootCount: Int64
    public let services: [any Service]
    let logger: Logger

    public static func build(config: AgentConfig, logger: Logger) throws(AgentError) -> Agent {
        let key = try DeviceKeyFile.load(path: config.device.keyFile)
        let outbox: Outbox
        do { outbox = try Outbox(path: config.device.dataDir + "/outbox.sqlite") } catch { throw AgentError(.store, error.description) }
        let bootID = SystemClock.bootID()
        let bootCount: Int64
        do { bootCount = try outbox.beginBoot(bootID: bootID) } catch { throw AgentError(.store, error.description) }
        let clock = SystemClock(bootCount: bootCount)
        let uplink = Uplink(
            outbox: outbox, key: key,
            settings: .init(
                bankURL: config.bank.url, deviceID: config.device.id, bootID: bootID, bootCount: bootCount,
                batchInterval: config.evidence.batchInterval, maxBatchRecords: config.evidence.maxBatchRecords,
                requestTimeout: config.bank.requestTimeout, bankKey: config.bank.receiptKey),
            clock: clock, logger: logger)
        let pipeline = EvidencePipeline(config: config, outbox: outbox, clock: clock, logger: logger, onEvent: { uplink.sendSoon() })
        var services: [any Service] = [uplink, PipelineService(pipeline: pipeline)]
        for device in config.modbusDevices {
            services.append(ModbusAcquisitionService(poller: ModbusPoller(device: device, clock: clock, logger: logger), pipeline: pipeline, logger: logger))
        }
        if config.bank.receiptKey == nil {
            logger.warning("no [bank] receipt_key: the bank's receipts are stored without checking their signature")
        }
        logger.info("agent \(config.device.id) starting: boot \(bootCount), key \(key.kid), outbox \(outbox.path), bank \(config.bank.url)")
        return Agent(config: config, outbox: outbox, bootCount: bootCount, services: services, logger: logger)
    }

    /// Runs until SIGTERM/SIGINT, then shuts down in order.
    public func run() async throws {
        let group = ServiceGroup(
            configuration: .init(
                services: services.map { .init(service: $0) }, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
        logger.info("agent stopped; outbox holds \((try? outbox.status().undeliveredBatches) ?? -1) undelivered batch(es)")
    }
}

/// Errors that stop the agent from starting; each says what to fix.
public struct AgentError: Error, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable {
        case key = "E_AGENT_KEY"
        case store = "E_AGENT_STORE"
    }
    public let code: Code
    public let message: String
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }
    public var description: String { "\(code.rawValue): \(message)" }
}
