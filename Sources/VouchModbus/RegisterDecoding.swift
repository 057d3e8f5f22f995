import VouchCore

/// Turns the registers of one channel into its engineering value.
public enum RegisterDecoding {
    /// The value's bytes, most significant first (A B C D), from the words in wire order.
    static func bytes(_ words: [UInt16], order: ModbusByteOrder) -> [UInt8] {
        let wire = words.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }
        guard wire.count == 4 else {
            // 16-bit values: byte-swapped orders swap the two bytes, word orders do not apply.
            return order == .badc || order == .dcba ? wire.reversed() : wire
        }
        switch order {
        case .abcd: return wire
        case .cdab: return [wire[2], wire[3], wire[0], wire[1]]
        case .badc: return [wire[1], wire[0], wire[3], wire[2]]
        case .dcba: return wire.reversed()
        }
    }

    /// Decodes raw registers; nil for the wrong number of words.
    public static func decode(_ words: [UInt16], type: ModbusDataType, order: ModbusByteOrder) -> Double? {
        guard words.count == type.registerCount else { return nil }
        let b = bytes(words, order: order)
        let u = b.reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        switch type {
        case .uint16: return Double(UInt16(truncatingIfNeeded: u))
        case .int16: return Double(Int16(bitPattern: UInt16(truncatingIfNeeded: u)))
        case .uint32: return Double(u)
        case .int32: return Double(Int32(bitPattern: u))
        case .float32: return Double(Float(bitPattern: u))
        }
    }

    /// Raw registers to the integer stored in evidence: round((raw × scale + offset) × 10^decimals).
    public static func scaledValue(_ words: [UInt16], channel: ModbusChannelSettings) -> Result<Int64, DecodeFailure> {
        guard let raw = decode(words, type: channel.dataType, order: channel.byteOrder) else {
            return .failure(DecodeFailure(code: "E_DECODE_LENGTH", message: "expected \(channel.dataType.registerCount) registers, got \(words.count)"))
        }
        guard raw.isFinite else {
            return .failure(DecodeFailure(code: "E_DECODE_NOT_FINITE", message: "\(channel.dataType.rawValue) decodes to \(raw) (check byte_order)"))
        }
        guard let v = IntegerScaling.scaled(raw * channel.scale + channel.offset, decimals: channel.decimals) else {
            return .failure(DecodeFailure(code: "E_DECODE_RANGE", message: "value \(raw) out of range after scaling"))
        }
        return .success(v)
    }

    public struct DecodeFailure: Error, Sendable, Equatable {
        public let code: String
        public let message: String
    }
}
