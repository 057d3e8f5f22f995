import Logging
import VouchCore

/// Polls one Modbus device: every `pollInterval`, each channel once, in config order.
///
/// A failed read never stops the loop: it becomes a reading with quality `.commError` (so detectors
/// and the outbox see the channel was unreadable), and the next cycle tries again, reconnecting if
/// needed. Missed cycles (a poll that took longer than the interval) are skipped, not bunched up.
public struct ModbusPoller: Sendable {
    public let device: ModbusDeviceSettings
    public let client: ModbusTCPClient
    let clock: any AgentClock
    let logger: Logger

    public init(device: ModbusDeviceSettings, clock: any AgentClock, logger: Logger) {
        self.device = device
        self.client = ModbusTCPClient(endpoint: device.endpoint, unitId: device.unitId, responseTimeout: device.responseTimeout)
        self.clock = clock
        self.logger = logger
    }

    /// Reads every channel once.
    public func pollOnce() async -> [Reading] {
        var readings: [Reading] = []
        readings.reserveCapacity(device.channels.count)
        for channel in device.channels {
            readings.append(await read(channel))
        }
        return readings
    }

    func read(_ channel: ModbusChannelSettings) async -> Reading {
        do {
            let words = try await client.readRegisters(channel.register, address: channel.address, count: channel.dataType.registerCount)
            let time = clock.now()
            switch RegisterDecoding.scaledValue(words, channel: channel) {
            case .success(let value):
                return Reading(channel: channel.id, time: time, value: value, scaleExponent: channel.scaleExponent, unit: channel.unit, rawWords: words, quality: .ok)
            case .failure(let failure):
                return Reading(channel: channel.id, time: time, value: nil, scaleExponent: channel.scaleExponent, unit: channel.unit, rawWords: words, quality: .commError(code: failure.code, message: failure.message))
            }
        } catch {
            return Reading(channel: channel.id, time: clock.now(), value: nil, scaleExponent: channel.scaleExponent, unit: channel.unit, rawWords: [], quality: .commError(code: error.code, message: error.description))
        }
    }

    /// Polls until the task is cancelled, handing each cycle's readings to `sink`.
    public func run(sink: @Sendable ([Reading]) async -> Void) async {
        let interval = device.pollInterval
        var next = ContinuousClock.now
        while !Task.isCancelled {
            await sink(await pollOnce())
            next = next.advanced(by: interval)
            let now = ContinuousClock.now
            if next < now {
                let behind = now - next
                let skipped = Int(behind / interval) + 1
                logger.warning("polling \(device.name) is running late; skipping \(skipped) cycle(s)")
                next = next.advanced(by: interval * skipped)
            }
            do { try await Task.sleep(until: next, clock: .continuous) } catch { break }
        }
        client.close()
    }
}
