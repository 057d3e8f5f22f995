import VouchCore

/// Turns the registers (or bits) of one channel into its value, and the value into evidence's integer.
public enum RegisterDecoding {
    /// A channel's value before scaling.
    public enum Value: Sendable, Equatable, CustomStringConvertible {
        case bool(Bool)
        case unsigned(UInt64)
        case signed(Int64)
        case float(Double)
        case text(String)

        public var description: String {
            switch self {
            case .bool(let b): b ? "true" : "false"
            case .unsigned(let u): String(u)
            case .signed(let i): String(i)
            case .float(let f): "\(f)"
            case .text(let t): "\"\(t)\""
            }
        }
    }

    /// The value's bytes, most significant first (A B C … ), from the words in wire order.
    public static func bytes(_ words: [UInt16], order: ModbusByteOrder) -> [UInt8] {
        let ordered = order.swapsWords && words.count > 1 ? words.reversed() : words
        return ordered.flatMap { w in order.swapsBytes ? [UInt8(w & 0xFF), UInt8(w >> 8)] : [UInt8(w >> 8), UInt8(w & 0xFF)] }
    }

    /// The words as one unsigned integer in `order` (what ``bytes(_:order:)`` spells out), without
    /// allocating: this runs for every channel of every poll.
    static func integer(_ words: [UInt16], order: ModbusByteOrder) -> UInt64 {
        var u: UInt64 = 0
        let n = words.count
        for i in 0..<n {
            let w = words[order.swapsWords && n > 1 ? n - 1 - i : i]
            u = u << 16 | UInt64(order.swapsBytes ? w.byteSwapped : w)
        }
        return u
    }

    /// Decodes what one channel read: registers in wire order, or one 0/1 word for a coil or discrete input.
    public static func decode(_ words: [UInt16], channel: ModbusChannelSettings) -> Result<Value, DecodeFailure> {
        guard words.count == channel.registerCount else {
            return .failure(DecodeFailure(code: "E_DECODE_LENGTH", message: "expected \(channel.registerCount) register(s), got \(words.count)"))
        }
        if channel.register.isBit { return .success(.bool(words[0] != 0)) }
        if channel.dataType == .bool { return .success(.bool(words[0] >> UInt16(channel.bit ?? 0) & 1 == 1)) }
        if channel.dataType == .string { return .success(.text(text(words, order: channel.byteOrder))) }
        let u = integer(words, order: channel.byteOrder)
        switch channel.dataType {
        case .uint16, .uint32, .uint64: return .success(.unsigned(u))
        case .int16: return .success(.signed(Int64(Int16(bitPattern: UInt16(truncatingIfNeeded: u)))))
        case .int32: return .success(.signed(Int64(Int32(bitPattern: UInt32(truncatingIfNeeded: u)))))
        case .int64: return .success(.signed(Int64(bitPattern: u)))
        case .float32: return .success(.float(Double(Float(bitPattern: UInt32(truncatingIfNeeded: u)))))
        case .float64: return .success(.float(Double(bitPattern: u)))
        case .bool, .string: preconditionFailure("handled above")
        }
    }

    /// Two characters per register; stops at the first NUL, drops trailing spaces (devices pad with
    /// either), and shows other bytes outside printable ASCII as `\xNN` so nothing is hidden.
    static func text(_ words: [UInt16], order: ModbusByteOrder) -> String {
        var out = ""
        for byte in bytes(words, order: order.swapsBytes ? .badc : .abcd) {
            if byte == 0 { break }
            if (0x20...0x7E).contains(byte) { out.unicodeScalars.append(Unicode.Scalar(byte)) } else { out += "\\x" + String(byte, radix: 16, uppercase: true).leftPadded(2) }
        }
        while out.hasSuffix(" ") { out.removeLast() }
        return out
    }

    /// The integer stored in evidence: round((raw × scale + offset) × 10^decimals). Integers with no
    /// scaling are converted exactly (a 64-bit counter must not lose its low digits in a Double).
    public static func scaled(_ value: Value, channel: ModbusChannelSettings) -> Result<Int64, DecodeFailure> {
        let exact = channel.scale == 1 && channel.offset == 0
        var factor: Int64 = 1
        for _ in 0..<channel.decimals { factor *= 10 }
        func outOfRange(_ v: String) -> Result<Int64, DecodeFailure> {
            .failure(DecodeFailure(code: "E_DECODE_RANGE", message: "value \(v) is out of range after scaling (\(channel.dataType.rawValue), decimals \(channel.decimals))"))
        }
        switch value {
        case .bool(let b): return .success(b ? 1 : 0)
        case .text: return .failure(DecodeFailure(code: "E_DECODE_TYPE", message: "a string has no numeric value"))
        case .unsigned(let u) where exact:
            guard u <= UInt64(Int64.max) else { return outOfRange(String(u)) }
            let (v, overflow) = Int64(u).multipliedReportingOverflow(by: factor)
            return overflow ? outOfRange(String(u)) : .success(v)
        case .signed(let i) where exact:
            let (v, overflow) = i.multipliedReportingOverflow(by: factor)
            return overflow ? outOfRange(String(i)) : .success(v)
        case .unsigned(let u): return scaledDouble(Double(u), channel: channel, text: String(u))
        case .signed(let i): return scaledDouble(Double(i), channel: channel, text: String(i))
        case .float(let f):
            guard f.isFinite else {
                return .failure(DecodeFailure(code: "E_DECODE_NOT_FINITE", message: "\(channel.dataType.rawValue) decodes to \(f) (the device flags a fault, or byte_order \(channel.byteOrder.rawValue) is wrong)"))
            }
            return scaledDouble(f, channel: channel, text: "\(f)")
        }
    }

    private static func scaledDouble(_ raw: Double, channel: ModbusChannelSettings, text: String) -> Result<Int64, DecodeFailure> {
        guard let v = IntegerScaling.scaled(raw * channel.scale + channel.offset, decimals: channel.decimals) else {
            return .failure(DecodeFailure(code: "E_DECODE_RANGE", message: "value \(text) is out of range after scaling (× \(channel.scale) + \(channel.offset), decimals \(channel.decimals))"))
        }
        return .success(v)
    }

    /// Decode and scale in one step (what the poller stores).
    public static func scaledValue(_ words: [UInt16], channel: ModbusChannelSettings) -> Result<Int64, DecodeFailure> {
        decode(words, channel: channel).flatMap { scaled($0, channel: channel) }
    }

    /// Every reading of 2 or 4 words as a float in each byte order: what a technician compares with the
    /// meter's display when the manual does not say the order.
    public static func floatDecodings(_ words: [UInt16]) -> [(order: ModbusByteOrder, value: Double)] {
        guard words.count == 2 || words.count == 4 else { return [] }
        return ModbusByteOrder.allCases.map { order in
            let u = bytes(words, order: order).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            return (order, words.count == 2 ? Double(Float(bitPattern: UInt32(truncatingIfNeeded: u))) : Double(bitPattern: u))
        }
    }

    public struct DecodeFailure: Error, Sendable, Equatable {
        public let code: String
        public let message: String
    }
}

extension String {
    func leftPadded(_ width: Int, with pad: Character = "0") -> String {
        count >= width ? self : String(repeating: pad, count: width - count) + self
    }
}
