import Foundation
import Testing
import VouchCore
@testable import VouchModbus

/// libmodbus against a real pymodbus server: the failure modes a site really produces.
@Suite(.serialized) struct ModbusClientTests {
    struct Client {
        let client: ModbusClient
        let timeout: Duration
        func readRegisters(_ kind: ModbusRegisterKind, address: Int, count: Int) async throws(ModbusError) -> [UInt16] {
            try await client.read(kind, unit: 1, address: address, count: count, timeout: timeout)
        }
    }

    func client(_ port: Int, timeout: Duration = .milliseconds(300)) -> Client {
        Client(client: ModbusClient(endpoint: .tcp(host: "127.0.0.1", port: port)), timeout: timeout)
    }

    func decode(_ words: [UInt16], _ type: ModbusDataType, _ order: ModbusByteOrder) -> Double? {
        let channel = ModbusChannelSettings(id: "t", register: .holding, address: 0, dataType: type, byteOrder: order)
        switch RegisterDecoding.decode(words, channel: channel) {
        case .success(.float(let f)): return f
        case .success(.unsigned(let u)): return Double(u)
        case .success(.signed(let i)): return Double(i)
        default: return nil
        }
    }

    @Test func readsInputAndHoldingRegistersFromTheMeter() async throws {
        let meter = try await SimulatedMeter.start()
        defer { meter.stop() }
        let c = client(meter.port)
        let power = try await c.readRegisters(.input, address: 52, count: 2)
        let watts = try #require(decode(power, .float32, .abcd))
        #expect((11_000...13_000).contains(watts), "meter plays ~12 kW, got \(watts)")
        let energy = try await c.readRegisters(.holding, address: 10, count: 2)
        let wh = try #require(decode(energy, .uint32, .cdab))
        #expect(wh >= 1_234_000 && wh < 1_300_000, "energy counter starts at 1,234,000 Wh, got \(wh)")
        // Read in the wrong word order, the same registers give nonsense: the order really matters.
        let swapped = try #require(decode(energy, .uint32, .abcd))
        #expect(swapped != wh)
        let status = try await c.readRegisters(.holding, address: 0, count: 1)
        #expect(status == [1])
    }

    @Test func unreachableServerIsConnectionRefused() async throws {
        let port = SimulatedMeter.freePort()  // nothing listens there
        let error = await #expect(throws: ModbusError.self) {
            _ = try await client(port).readRegisters(.holding, address: 0, count: 1)
        }
        #expect(error?.errnoName == "ECONNREFUSED")
        #expect(error?.code == "E_MODBUS_ECONNREFUSED")
        #expect(error?.operation == "connect to tcp://127.0.0.1:\(port)")
        #expect(error?.description.contains("check host and port") == true)
    }

    @Test func illegalAddressIsExceptionTwoAndKeepsTheConnection() async throws {
        let meter = try await SimulatedMeter.start()
        defer { meter.stop() }
        let c = client(meter.port)
        let error = await #expect(throws: ModbusError.self) {
            _ = try await c.readRegisters(.holding, address: 500, count: 2)
        }
        #expect(error?.errnoName == "EMBXILADD")
        #expect(error?.isDeviceException == true)
        #expect(error?.message == "Illegal data address")
        #expect(error?.operation == "read holding registers 500–501 from unit 1 at tcp://127.0.0.1:\(meter.port)")
        // The device answered, so the same client reads on without trouble.
        #expect(try await c.readRegisters(.holding, address: 0, count: 1) == [1])
    }

    @Test func frozenServerTimesOutThenRecovers() async throws {
        let meter = try await SimulatedMeter.start()
        defer { meter.stop() }
        let c = client(meter.port, timeout: .milliseconds(200))
        _ = try await c.readRegisters(.holding, address: 0, count: 1)
        meter.freeze()
        let started = ContinuousClock.now
        let error = await #expect(throws: ModbusError.self) {
            _ = try await c.readRegisters(.holding, address: 0, count: 1)
        }
        #expect(error?.errnoName == "ETIMEDOUT")
        // What this guards is a hang (no timeout applied: a poller stuck on a frozen device for minutes), not
        // the exact delay, which on a loaded 2-core CI machine includes scheduling.
        #expect(ContinuousClock.now - started < .seconds(15), "a frozen device must time out, not hang the poller")
        meter.thaw()
        // The client dropped the connection after the timeout; the next read reconnects and succeeds.
        #expect(try await c.readRegisters(.holding, address: 0, count: 1) == [1])
    }

    @Test func serverRestartIsSurvived() async throws {
        let meter = try await SimulatedMeter.start()
        let port = meter.port
        let c = client(port)
        _ = try await c.readRegisters(.holding, address: 0, count: 1)
        await meter.stopAndWait()
        let error = await #expect(throws: ModbusError.self) {
            _ = try await c.readRegisters(.holding, address: 0, count: 1)
        }
        #expect(["ECONNRESET", "ECONNREFUSED", "EPIPE", "EBADF"].contains(error?.errnoName ?? ""), "got \(String(describing: error))")
        let again = try await SimulatedMeter.start(port: port)
        defer { again.stop() }
        #expect(try await c.readRegisters(.holding, address: 0, count: 1) == [1])
    }

    @Test func invalidCountIsRefusedBeforeTouchingTheWire() async throws {
        let error = await #expect(throws: ModbusError.self) {
            _ = try await client(1).readRegisters(.holding, address: 0, count: 126)
        }
        #expect(error?.errnoName == "EINVAL")
    }
}
