import Foundation
import Logging
import Testing
import VouchCore
@testable import VouchModbus

struct FixedClock: AgentClock {
    func now() -> ClockReading { ClockReading(bootCount: 1, monoNs: 5_000_000_000, wallNs: 1_700_000_000_000_000_000, quality: .synchronized) }
}

/// The poller turns every failure into a comm-error reading and keeps polling.
@Suite(.serialized) struct ModbusBusPollerTests {
    func device(port: Int, channels: [ModbusChannelSettings]) -> ModbusDeviceSettings {
        ModbusDeviceSettings(name: "meter", endpoint: .tcp(host: "127.0.0.1", port: port), unitId: 1, responseTimeout: .milliseconds(200), pollInterval: .milliseconds(100), channels: channels)
    }

    let power = ModbusChannelSettings(id: "meter.power", register: .input, address: 52, dataType: .float32, byteOrder: .abcd, scale: 1, offset: 0, decimals: 1, unit: "W")
    let missing = ModbusChannelSettings(id: "meter.nothing", register: .holding, address: 600, dataType: .uint16, byteOrder: .abcd, scale: 1, offset: 0, decimals: 0, unit: "")

    @Test func goodAndBadChannelsInOneCycle() async throws {
        let meter = try await SimulatedMeter.start()
        defer { meter.stop() }
        let poller = ModbusBusPoller(bus: ModbusBus.group([device(port: meter.port, channels: [power, missing])])[0], clock: FixedClock(), logger: Logger(label: "test"))
        let readings = await poller.pollOnce()
        try #require(readings.count == 2)
        #expect(readings[0].quality == .ok)
        #expect(readings[0].scaleExponent == -1)
        let tenths = try #require(readings[0].value)
        #expect((110_000...130_000).contains(tenths), "12 kW with one decimal is ~120000, got \(tenths)")
        #expect(readings[0].rawWords.count == 2)
        guard case .commError(let code, let message) = readings[1].quality else {
            Issue.record("an illegal address must be a comm error, got \(readings[1].quality)")
            return
        }
        #expect(code == "E_MODBUS_EMBXILADD")
        #expect(message.contains("holding registers 600"))
        #expect(readings[1].value == nil)
    }

    @Test func keepsPollingThroughFreezeAndOutage() async throws {
        let meter = try await SimulatedMeter.start()
        let port = meter.port
        let poller = ModbusBusPoller(bus: ModbusBus.group([device(port: port, channels: [power])])[0], clock: FixedClock(), logger: Logger(label: "test"))
        #expect(await poller.pollOnce()[0].quality == .ok)
        meter.freeze()
        #expect(await poller.pollOnce()[0].quality.code == "E_MODBUS_ETIMEDOUT")
        await meter.stopAndWait()
        let down = await poller.pollOnce()[0].quality.code
        #expect(down == "E_MODBUS_ECONNREFUSED" || down == "E_MODBUS_ECONNRESET", "got \(String(describing: down))")
        let again = try await SimulatedMeter.start(port: port)
        defer { again.stop() }
        #expect(await poller.pollOnce()[0].quality == .ok)
    }
}

extension ReadingQuality {
    var code: String? { if case .commError(let c, _) = self { c } else { nil } }
}
