import Testing
import VouchCore
@testable import VouchModbus

/// Encodes a value's big-endian bytes into wire words the way a device with `order` does. Written
/// from the definition of each order (which byte goes where), not with the decoder's helpers.
func wireWords(bigEndian b: [UInt8], order: ModbusByteOrder) -> [UInt16] {
    let bytes: [UInt8]
    switch order {
    case .abcd: bytes = b
    case .dcba: bytes = b.reversed()
    case .badc: bytes = stride(from: 0, to: b.count, by: 2).flatMap { [b[$0 + 1], b[$0]] }
    case .cdab:  // words in reverse order, bytes inside each word as they are
        let words = stride(from: 0, to: b.count, by: 2).map { [b[$0], b[$0 + 1]] }
        bytes = words.reversed().flatMap { $0 }
    }
    return stride(from: 0, to: bytes.count, by: 2).map { UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]) }
}

func bigEndian<T: FixedWidthInteger>(_ v: T) -> [UInt8] {
    withUnsafeBytes(of: v.bigEndian) { Array($0) }
}

func channel(_ type: ModbusDataType, _ order: ModbusByteOrder = .abcd, decimals: Int = 0, scale: Double = 1, offset: Double = 0, length: Int? = nil, bit: Int? = nil, register: ModbusRegisterKind = .holding) -> ModbusChannelSettings {
    ModbusChannelSettings(id: "m.c", register: register, address: 0, dataType: type, byteOrder: order, bit: bit, length: length, scale: scale, offset: offset, decimals: decimals)
}

struct RegisterDecodingTests {
    // 123456.0 as IEEE 754 single is 0x47F12000: bytes A=47 B=F1 C=20 D=00. Pinned by hand, so the
    // test encoder above is itself checked against a known answer.
    @Test(arguments: [
        (ModbusByteOrder.abcd, [UInt16(0x47F1), 0x2000]),
        (.cdab, [0x2000, 0x47F1]),
        (.badc, [0xF147, 0x0020]),
        (.dcba, [0x0020, 0xF147]),
    ])
    func float32InEveryByteOrder(order: ModbusByteOrder, words: [UInt16]) {
        #expect(wireWords(bigEndian: [0x47, 0xF1, 0x20, 0x00], order: order) == words)
        #expect(RegisterDecoding.decode(words, channel: channel(.float32, order)) == .success(.float(123456.0)))
    }

    // 0x0102030405060708 as u64: ABCD words 0102 0304 0506 0708; CDAB reverses the words; BADC swaps bytes.
    @Test func sixtyFourBitWordOrdersPinnedByHand() {
        let v = UInt64(0x0102_0304_0506_0708)
        #expect(RegisterDecoding.decode([0x0102, 0x0304, 0x0506, 0x0708], channel: channel(.uint64, .abcd)) == .success(.unsigned(v)))
        #expect(RegisterDecoding.decode([0x0708, 0x0506, 0x0304, 0x0102], channel: channel(.uint64, .cdab)) == .success(.unsigned(v)))
        #expect(RegisterDecoding.decode([0x0201, 0x0403, 0x0605, 0x0807], channel: channel(.uint64, .badc)) == .success(.unsigned(v)))
        #expect(RegisterDecoding.decode([0x0807, 0x0605, 0x0403, 0x0201], channel: channel(.uint64, .dcba)) == .success(.unsigned(v)))
    }

    @Test(arguments: ModbusByteOrder.allCases)
    func everyIntegerTypeRoundTripsInEveryOrder(order: ModbusByteOrder) throws {
        func check<T: FixedWidthInteger>(_ v: T, _ type: ModbusDataType, _ expected: RegisterDecoding.Value, sourceLocation: SourceLocation = #_sourceLocation) {
            let words = wireWords(bigEndian: bigEndian(v), order: order)
            #expect(RegisterDecoding.decode(words, channel: channel(type, order)) == .success(expected), "\(type) \(v) \(order)", sourceLocation: sourceLocation)
        }
        check(UInt16(0), .uint16, .unsigned(0))
        check(UInt16.max, .uint16, .unsigned(65535))
        check(Int16(-1), .int16, .signed(-1))
        check(Int16.min, .int16, .signed(-32768))
        check(Int16.max, .int16, .signed(32767))
        check(UInt32.max, .uint32, .unsigned(4_294_967_295))
        check(UInt32(65536), .uint32, .unsigned(65536))
        check(Int32(-2), .int32, .signed(-2))
        check(Int32.min, .int32, .signed(Int64(Int32.min)))
        check(UInt64.max, .uint64, .unsigned(UInt64.max))
        check(UInt64(1) << 53 + 1, .uint64, .unsigned(UInt64(1) << 53 + 1))
        check(Int64(-9_007_199_254_740_993), .int64, .signed(-9_007_199_254_740_993))
        check(Int64.min, .int64, .signed(Int64.min))
    }

    @Test(arguments: ModbusByteOrder.allCases)
    func floatsRoundTripInEveryOrder(order: ModbusByteOrder) {
        for f in [Float(-0.5), 230.1, -1e-20, 3.4e38] {
            let words = wireWords(bigEndian: bigEndian(f.bitPattern), order: order)
            #expect(RegisterDecoding.decode(words, channel: channel(.float32, order)) == .success(.float(Double(f))))
        }
        for d in [Double.pi, -1e300, 0.1] {
            let words = wireWords(bigEndian: bigEndian(d.bitPattern), order: order)
            #expect(RegisterDecoding.decode(words, channel: channel(.float64, order)) == .success(.float(d)))
        }
    }

    @Test func sixteenBitValuesOnlySwapBytes() {
        #expect(RegisterDecoding.decode([0x3412], channel: channel(.uint16, .badc)) == .success(.unsigned(0x1234)))
        #expect(RegisterDecoding.decode([0x3412], channel: channel(.uint16, .dcba)) == .success(.unsigned(0x1234)))
        #expect(RegisterDecoding.decode([0x1234], channel: channel(.uint16, .cdab)) == .success(.unsigned(0x1234)))
    }

    @Test func wrongRegisterCountIsAnError() {
        #expect(RegisterDecoding.decode([0x1234], channel: channel(.uint32)) == .failure(.init(code: "E_DECODE_LENGTH", message: "expected 2 register(s), got 1")))
    }

    // Big integers must not pass through a Double: 2^53 + 1 would come out as 2^53.
    @Test func sixtyFourBitCountersScaleExactly() throws {
        let words = wireWords(bigEndian: bigEndian(UInt64(1) << 53 + 1), order: .abcd)
        #expect(try RegisterDecoding.scaledValue(words, channel: channel(.uint64)).get() == 9_007_199_254_740_993)
        let negative = wireWords(bigEndian: bigEndian(Int64(-9_007_199_254_740_993)), order: .abcd)
        #expect(try RegisterDecoding.scaledValue(negative, channel: channel(.int64)).get() == -9_007_199_254_740_993)
        // Above Int64.max, or overflowing once decimals are applied: an error naming the value, not a wrapped number.
        let huge = RegisterDecoding.scaledValue(wireWords(bigEndian: bigEndian(UInt64.max), order: .abcd), channel: channel(.uint64))
        guard case .failure(let f) = huge else {
            Issue.record("u64 max must not become a value")
            return
        }
        #expect(f.code == "E_DECODE_RANGE")
        #expect(f.message.contains("18446744073709551615"))
        let tooManyDecimals = RegisterDecoding.scaledValue(wireWords(bigEndian: bigEndian(Int64.max / 10), order: .abcd), channel: channel(.int64, decimals: 2))
        #expect((try? tooManyDecimals.get()) == nil)
    }

    @Test func scalingOffsetAndDecimalsGiveTheStoredInteger() throws {
        let c = channel(.int16, decimals: 2, scale: 0.1, offset: -5)
        // raw -123 → -12.3 - 5 = -17.3 A → -1730 hundredths
        #expect(try RegisterDecoding.scaledValue([UInt16(bitPattern: -123)], channel: c).get() == -1730)
    }

    @Test(arguments: [(UInt32(0x7FC0_0000), "nan"), (0x7F80_0000, "inf"), (0xFF80_0000, "-inf")])
    func nonFiniteFloatIsAnErrorNotAValue(bits: UInt32, name: String) {
        let nan = RegisterDecoding.scaledValue(wireWords(bigEndian: bigEndian(bits), order: .abcd), channel: channel(.float32))
        guard case .failure(let f) = nan else {
            Issue.record("\(name) must not become a value")
            return
        }
        #expect(f.code == "E_DECODE_NOT_FINITE")
        #expect(f.message.contains("byte_order"))
    }

    @Test func stringsStopAtNulTrimPaddingAndShowOddBytes() {
        // "SDM630" then NUL padding, in a 4-register field.
        #expect(RegisterDecoding.decode([0x5344, 0x4D36, 0x3330, 0x0000], channel: channel(.string, length: 4)) == .success(.text("SDM630")))
        // Low byte first (BADC), space-padded.
        #expect(RegisterDecoding.decode([0x4453, 0x364D, 0x3033, 0x2020], channel: channel(.string, .badc, length: 4)) == .success(.text("SDM630")))
        #expect(RegisterDecoding.decode([0x41FF], channel: channel(.string, length: 1)) == .success(.text("A\\xFF")))
    }

    @Test func boolsFromBitsAndFromABitOfARegister() throws {
        #expect(RegisterDecoding.decode([1], channel: channel(.bool, register: .coil)) == .success(.bool(true)))
        #expect(RegisterDecoding.decode([0], channel: channel(.bool, register: .discrete)) == .success(.bool(false)))
        #expect(RegisterDecoding.decode([0b1000], channel: channel(.bool, bit: 3)) == .success(.bool(true)))
        #expect(RegisterDecoding.decode([0b1000], channel: channel(.bool, bit: 2)) == .success(.bool(false)))
        #expect(RegisterDecoding.decode([0x8000], channel: channel(.bool, bit: 15)) == .success(.bool(true)))
        #expect(try RegisterDecoding.scaledValue([0x8000], channel: channel(.bool, bit: 15)).get() == 1)
    }

    @Test func allFourFloatDecodingsForTheTechnician() {
        let all = RegisterDecoding.floatDecodings([0x47F1, 0x2000])
        #expect(all.map(\.order) == [.abcd, .cdab, .badc, .dcba])
        #expect(all[0].value == 123456.0)
        #expect(all.filter { $0.value == 123456.0 }.count == 1)
        #expect(RegisterDecoding.floatDecodings([1]).isEmpty)
    }
}
