import VouchEvidence

/// How a poll of a channel went.
public enum ReadingQuality: Sendable, Equatable {
    case ok
    /// The channel could not be read; `code` is the stable error code (e.g. `E_MODBUS_ETIMEDOUT`).
    case commError(code: String, message: String)
}

/// One poll of one channel: what crosses from acquisition to detection and the outbox.
public struct Reading: Sendable, Equatable {
    public var channel: String
    public var time: ClockReading
    /// Integer-scaled value: real value = value × 10^scaleExponent. Nil when the poll failed.
    public var value: Int64?
    public var scaleExponent: Int64
    public var unit: String
    /// Registers exactly as received, for disputes about decoding.
    public var rawWords: [UInt16]
    public var quality: ReadingQuality
    /// The text of a `string` channel (a serial number, a firmware version); `value` is nil for those.
    public var text: String?

    public init(channel: String, time: ClockReading, value: Int64?, scaleExponent: Int64, unit: String, rawWords: [UInt16], quality: ReadingQuality, text: String? = nil) {
        self.text = text
        self.channel = channel
        self.time = time
        self.value = value
        self.scaleExponent = scaleExponent
        self.unit = unit
        self.rawWords = rawWords
        self.quality = quality
    }
}

/// Scales an engineering value into evidence's integer form, refusing what cannot be represented.
public enum IntegerScaling {
    /// round(value × 10^decimals), or nil when not finite or outside Int64.
    public static func scaled(_ value: Double, decimals: Int) -> Int64? {
        var factor = 1.0
        for _ in 0..<max(0, decimals) { factor *= 10 }
        let v = (value * factor).rounded()
        guard v.isFinite, v > -9.2e18, v < 9.2e18 else { return nil }
        return Int64(v)
    }

    /// value × 10^exponent as exact decimal text, without going through a float: (23012, -2) → "230.12".
    public static func text(_ value: Int64, exponent: Int64) -> String {
        if exponent >= 0 { return value == 0 ? "0" : String(value) + String(repeating: "0", count: Int(min(exponent, 18))) }
        let places = Int(min(-exponent, 40))
        var digits = String(value.magnitude)
        if digits.count <= places { digits = String(repeating: "0", count: places - digits.count + 1) + digits }
        let split = digits.index(digits.endIndex, offsetBy: -places)
        return (value < 0 ? "-" : "") + digits[..<split] + "." + digits[split...]
    }

    /// The same with its unit, as the CLI and the logs show a reading: (1234, -1, "kg") → "123.4 kg".
    public static func text(_ value: Int64, exponent: Int64, unit: String) -> String {
        text(value, exponent: exponent) + (unit.isEmpty ? "" : " \(unit)")
    }
}
