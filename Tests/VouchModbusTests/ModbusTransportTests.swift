import Dispatch
import Foundation
import Logging
import Testing
import VouchCore
@testable import VouchModbus

/// Every register kind, data type and byte order through libmodbus against a real pymodbus server,
/// over TCP and over RTU on a socat pty pair. Register contents are written by the test's own encoder
/// (`wireWords`), so the decoder is checked against the definition of each order, not against itself.
@Suite(.serialized) struct ModbusTransportTests {
    struct Expectation {
        let channel: ModbusChannelSettings
        let words: [UInt16]
        /// The stored integer, the text, or the error code.
        let value: Int64?
        let text: String?
        let error: String?
    }

    /// A site's worth of values: 8 numeric types × 4 orders packed into one holding block, input floats
    /// including NaN and ±inf, coils, discrete inputs, bits of a status word and a string.
    static func fixture() -> (layout: [String: [Int: [Int]]], expectations: [Expectation]) {
        var holding: [Int] = []
        var expectations: [Expectation] = []
        func add(_ type: ModbusDataType, _ order: ModbusByteOrder, _ bigEndianBytes: [UInt8], decimals: Int = 0, expect: Int64) {
            let words = wireWords(bigEndian: bigEndianBytes, order: order)
            let c = ModbusChannelSettings(id: "m.\(type.rawValue)_\(order.rawValue.lowercased())", register: .holding, address: holding.count, dataType: type, byteOrder: order, decimals: decimals)
            expectations.append(Expectation(channel: c, words: words, value: expect, text: nil, error: nil))
            holding += words.map(Int.init)
        }
        for order in ModbusByteOrder.allCases {
            add(.uint16, order, bigEndian(UInt16(0xBEEF)), expect: 0xBEEF)
            add(.int16, order, bigEndian(Int16(-1234)), expect: -1234)
            add(.uint32, order, bigEndian(UInt32(3_000_000_001)), expect: 3_000_000_001)
            add(.int32, order, bigEndian(Int32(-70_000)), expect: -70_000)
            add(.uint64, order, bigEndian(UInt64(1) << 53 + 1), expect: 9_007_199_254_740_993)
            add(.int64, order, bigEndian(Int64(-9_007_199_254_740_993)), expect: -9_007_199_254_740_993)
            add(.float32, order, bigEndian(Float(-123.5).bitPattern), decimals: 1, expect: -1235)
            add(.float64, order, bigEndian(Double.pi.bitPattern), decimals: 6, expect: 3_141_593)
        }
        var input: [Int] = []
        for (name, bits, error) in [("ok", Float(230.25).bitPattern, nil), ("nan", Float.nan.bitPattern, "E_DECODE_NOT_FINITE"), ("inf", Float.infinity.bitPattern, "E_DECODE_NOT_FINITE"), ("ninf", (-Float.infinity).bitPattern, "E_DECODE_NOT_FINITE")] {
            let words = wireWords(bigEndian: bigEndian(bits), order: .abcd)
            let c = ModbusChannelSettings(id: "m.in_\(name)", register: .input, address: 40 + input.count, dataType: .float32, decimals: 2)
            expectations.append(Expectation(channel: c, words: words, value: error == nil ? 23025 : nil, text: nil, error: error))
            input += words.map(Int.init)
        }
        // A status word with bits 1 and 3 set, and the 10-character text "SDM630-M 2" low byte first.
        let status = 0b1010
        let text = Array("SDM630-M 2".utf8)
        let textWords = stride(from: 0, to: text.count, by: 2).map { Int(text[$0 + 1]) << 8 | Int(text[$0]) }
        expectations += [
            Expectation(channel: ModbusChannelSettings(id: "m.bit1", register: .holding, address: 200, dataType: .bool, bit: 1), words: [UInt16(status)], value: 1, text: nil, error: nil),
            Expectation(channel: ModbusChannelSettings(id: "m.bit2", register: .holding, address: 200, dataType: .bool, bit: 2), words: [UInt16(status)], value: 0, text: nil, error: nil),
            Expectation(channel: ModbusChannelSettings(id: "m.model", register: .holding, address: 201, dataType: .string, byteOrder: .badc, length: 6), words: textWords.map(UInt16.init) + [0], value: nil, text: "SDM630-M 2", error: nil),
            Expectation(channel: ModbusChannelSettings(id: "m.coil0", register: .coil, address: 0, dataType: .bool), words: [1], value: 1, text: nil, error: nil),
            Expectation(channel: ModbusChannelSettings(id: "m.coil2", register: .coil, address: 2, dataType: .bool), words: [0], value: 0, text: nil, error: nil),
            Expectation(channel: ModbusChannelSettings(id: "m.di11", register: .discrete, address: 11, dataType: .bool), words: [1], value: 1, text: nil, error: nil),
        ]
        let layout: [String: [Int: [Int]]] = [
            "holding": [0: holding, 200: [status] + textWords + [0]],
            "input": [40: input],
            "coils": [0: [1, 1, 0, 1]],
            "discrete": [10: [0, 1]],
        ]
        return (layout, expectations)
    }

    func device(_ endpoint: ModbusEndpoint, _ channels: [ModbusChannelSettings], unit: Int = 1, maxGap: Int = 16) -> ModbusDeviceSettings {
        ModbusDeviceSettings(
            name: "m", endpoint: endpoint, serial: endpoint.isSerial ? SerialSettings(baudRate: 115_200) : nil, unitId: unit, responseTimeout: .milliseconds(500),
            pollInterval: .milliseconds(200), maxGap: maxGap, channels: channels)
    }

    /// One blocking device poll, on a dispatch thread (never block the cooperative pool in a test).
    func poll(_ poller: ModbusBusPoller, _ state: ModbusBusPoller.DeviceState) async -> ([Reading], ModbusBusPoller.DeviceState) {
        await withCheckedContinuation { c in
            DispatchQueue.global().async {
                var s = state
                let readings = poller.readings(poller.poll(&s, sleeper: nil))
                c.resume(returning: (readings, s))
            }
        }
    }

    @Test(arguments: PeerTransport.allCases)
    func everyTypeKindAndByteOrder(transport: PeerTransport) async throws {
        let (layout, expectations) = Self.fixture()
        let file = try ModbusPeer.write([1: layout])
        let served = try await ServedLayout.start(file, over: transport)
        defer { served.stop() }
        let endpoint = served.endpoint.modbus
        let d = device(endpoint, expectations.map(\.channel))
        // The 32 numeric channels fill holding 0–79 and share one request with nothing else.
        #expect(RequestPlanner.plan(d.channels, maxGap: d.maxGap).count == 5)
        let poller = ModbusBusPoller(bus: ModbusBus.group([d])[0], clock: FixedClock(), logger: Logger(label: "test"))
        let readings = await poller.pollOnce()
        try #require(readings.count == expectations.count)
        for (reading, expected) in zip(readings, expectations) {
            #expect(reading.channel == expected.channel.id)
            #expect(reading.rawWords == expected.words, "\(reading.channel): the raw words travel with the reading")
            if let error = expected.error {
                #expect(reading.quality.code == error, "\(reading.channel) must be flagged, not passed on")
                #expect(reading.value == nil)
            } else {
                #expect(reading.quality == .ok, "\(reading.channel): \(reading.quality)")
                #expect(reading.value == expected.value, "\(reading.channel)")
                #expect(reading.text == expected.text, "\(reading.channel)")
            }
        }
    }

    /// A device that refuses to read across registers it does not have: the joined request fails with
    /// exception 2, the poller splits it and reads both channels in the same poll, and keeps the split.
    @Test(arguments: PeerTransport.allCases)
    func aJoinedReadThatIsRefusedIsSplitAtOnce(transport: PeerTransport) async throws {
        let file = try ModbusPeer.write([1: ["holding": [0: [11, 12], 10: [13]]]])
        let served = try await ServedLayout.start(file, over: transport)
        defer { served.stop() }
        let endpoint = served.endpoint.modbus
        let channels = [0, 1, 10].map { ModbusChannelSettings(id: "m.r\($0)", register: .holding, address: $0, dataType: .uint16) }
        let d = device(endpoint, channels)
        #expect(RequestPlanner.plan(channels, maxGap: d.maxGap).count == 1, "the planner joins 0–10 across the hole")
        let poller = ModbusBusPoller(bus: ModbusBus.group([d])[0], clock: FixedClock(), logger: Logger(label: "test"))
        let (readings, state) = await poll(poller, ModbusBusPoller.DeviceState(device: d, plan: RequestPlanner.plan(channels, maxGap: d.maxGap), nextPoll: .now))
        #expect(readings.map(\.value) == [11, 12, 13])
        #expect(readings.allSatisfy { $0.quality == .ok })
        #expect(state.plan.map { [$0.address, $0.count] } == [[0, 2], [10, 1]], "gapless from now on")
        #expect(state.failures == 0, "an exception is the device talking: no backoff")
        // A register that really does not exist stays an error on its own channel only.
        let missing = ModbusChannelSettings(id: "m.r5", register: .holding, address: 5, dataType: .uint16)
        let (again, _) = await poll(poller, ModbusBusPoller.DeviceState(device: device(endpoint, channels + [missing]), plan: RequestPlanner.plan(channels + [missing], maxGap: 16), nextPoll: .now))
        #expect(again.map(\.value) == [11, 12, 13, nil])
        #expect(again[3].quality.code == "E_MODBUS_EMBXILADD")
    }
}

extension ModbusEndpointDescription {
    var modbus: ModbusEndpoint {
        switch self {
        case .tcp(let port): .tcp(host: "127.0.0.1", port: port)
        case .rtu(let path): .rtu(path: path)
        }
    }
}
