import Testing
import VouchCore
@testable import VouchModbus

struct RegisterDecodingTests {
    // 123456.0 as IEEE 754 single is 0x47F12000: bytes A=47 B=F1 C=20 D=00.
    @Test(arguments: [
        (ModbusByteOrder.abcd, [UInt16(0x47F1), 0x2000]),
        (.cdab, [0x2000, 0x47F1]),
        (.badc, [0xF147, 0x0020]),
        (.dcba, [0x0020, 0xF147]),
    ])
    func float32InEveryByteOrder(order: ModbusByteOrder, words: [UInt16]) {
        #expect(RegisterDecoding.decode(words, type: .float32, order: order) == 123456.0)
    }

    @Test func integersOfEveryWidthAndSign() {
        #expect(RegisterDecoding.decode([0xFFFF], type: .uint16, order: .abcd) == 65535)
        #expect(RegisterDecoding.decode([0xFFFF], type: .int16, order: .abcd) == -1)
        #expect(RegisterDecoding.decode([0x8000], type: .int16, order: .abcd) == -32768)
        #expect(RegisterDecoding.decode([0x3412], type: .uint16, order: .badc) == 0x1234)
        #expect(RegisterDecoding.decode([0x0001, 0x0000], type: .uint32, order: .abcd) == 65536)
        #expect(RegisterDecoding.decode([0x0000, 0x0001], type: .uint32, order: .cdab) == 65536)
        #expect(RegisterDecoding.decode([0xFFFF, 0xFFFE], type: .int32, order: .abcd) == -2)
        #expect(RegisterDecoding.decode([0xFFFE, 0xFFFF], type: .int32, order: .cdab) == -2)
        #expect(RegisterDecoding.decode([0x1234], type: .uint32, order: .abcd) == nil, "wrong register count")
    }

    @Test func scalingOffsetAndDecimalsGiveTheStoredInteger() throws {
        let channel = ModbusChannelSettings(id: "m.i", register: .holding, address: 0, dataType: .int16, byteOrder: .abcd, scale: 0.1, offset: -5, decimals: 2, unit: "A")
        // raw -123 → -12.3 - 5 = -17.3 A → -1730 hundredths
        #expect(try RegisterDecoding.scaledValue([UInt16(bitPattern: -123)], channel: channel).get() == -1730)
    }

    @Test func nonFiniteFloatIsAnErrorNotAValue() {
        let channel = ModbusChannelSettings(id: "m.f", register: .input, address: 0, dataType: .float32, byteOrder: .abcd, scale: 1, offset: 0, decimals: 0, unit: "")
        let nan = RegisterDecoding.scaledValue([0x7FC0, 0x0000], channel: channel)
        guard case .failure(let f) = nan else {
            Issue.record("NaN must not become a value")
            return
        }
        #expect(f.code == "E_DECODE_NOT_FINITE")
    }
}
