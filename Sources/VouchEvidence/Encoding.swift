import Crypto
import Foundation

/// Base64url without padding (RFC 7515 §2).
public enum Base64URL {
    /// RFC 4648 §5, without padding, on bytes: the verifier decodes every JWS part of every upload,
    /// and going through Foundation strings cost a tenth of a receiver's time.
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
    private static let values: [UInt8] = {
        var table = [UInt8](repeating: 0xFF, count: 256)
        for (i, c) in alphabet.enumerated() { table[Int(c)] = UInt8(i) }
        return table
    }()

    public static func encode(_ bytes: some Sequence<UInt8>) -> String {
        let input = Array(bytes)
        var out: [UInt8] = []
        out.reserveCapacity((input.count * 4 + 2) / 3)
        var i = 0
        while i + 3 <= input.count {
            let n = UInt32(input[i]) << 16 | UInt32(input[i + 1]) << 8 | UInt32(input[i + 2])
            out.append(alphabet[Int(n >> 18 & 63)])
            out.append(alphabet[Int(n >> 12 & 63)])
            out.append(alphabet[Int(n >> 6 & 63)])
            out.append(alphabet[Int(n & 63)])
            i += 3
        }
        switch input.count - i {
        case 1:
            let n = UInt32(input[i]) << 16
            out += [alphabet[Int(n >> 18 & 63)], alphabet[Int(n >> 12 & 63)]]
        case 2:
            let n = UInt32(input[i]) << 16 | UInt32(input[i + 1]) << 8
            out += [alphabet[Int(n >> 18 & 63)], alphabet[Int(n >> 12 & 63)], alphabet[Int(n >> 6 & 63)]]
        default: break
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// nil for anything but canonical unpadded base64url: a character outside the alphabet, a length
    /// that no byte string encodes to, or unused trailing bits that are not zero (so one byte string has
    /// one text).
    public static func decode(_ text: some StringProtocol) -> [UInt8]? {
        var chars: [UInt8] = []
        chars.reserveCapacity(text.utf8.count)
        for c in text.utf8 {
            let v = values[Int(c)]
            guard v != 0xFF else { return nil }
            chars.append(v)
        }
        guard chars.count % 4 != 1 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(chars.count * 3 / 4)
        var i = 0
        while i + 4 <= chars.count {
            let n = UInt32(chars[i]) << 18 | UInt32(chars[i + 1]) << 12 | UInt32(chars[i + 2]) << 6 | UInt32(chars[i + 3])
            out.append(UInt8(n >> 16 & 0xFF))
            out.append(UInt8(n >> 8 & 0xFF))
            out.append(UInt8(n & 0xFF))
            i += 4
        }
        switch chars.count - i {
        case 2:
            guard chars[i + 1] & 0x0F == 0 else { return nil }
            out.append(chars[i] << 2 | chars[i + 1] >> 4)
        case 3:
            guard chars[i + 2] & 0x03 == 0 else { return nil }
            let n = UInt32(chars[i]) << 18 | UInt32(chars[i + 1]) << 12 | UInt32(chars[i + 2]) << 6
            out.append(UInt8(n >> 16 & 0xFF))
            out.append(UInt8(n >> 8 & 0xFF))
        default: break
        }
        return out
    }

    static func isAlphabet(_ c: UInt8) -> Bool { values[Int(c)] != 0xFF }
}

public enum Hex {
    public static func encode(_ bytes: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0xF)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    public static func decode(_ text: String) -> [UInt8]? {
        let chars = Array(text.utf8)
        guard chars.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(chars.count / 2)
        var i = 0
        while i < chars.count {
            guard let hi = nibble(chars[i]), let lo = nibble(chars[i + 1]) else { return nil }
            out.append(hi << 4 | lo)
            i += 2
        }
        return out
    }

    static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        default: nil
        }
    }
}

public enum Digest256 {
    public static func sha256(_ bytes: some Sequence<UInt8>) -> [UInt8] { Array(SHA256.hash(data: Array(bytes))) }
    public static func sha256Hex(_ bytes: some Sequence<UInt8>) -> String { Hex.encode(sha256(bytes)) }
    /// `prev` of batch 1: there is no previous batch.
    public static let zeroHex = String(repeating: "0", count: 64)
}

extension Digest256 {
    /// SHA-256 (hex) of a file, read in 1 MiB chunks so a large binary never sits in memory whole.
    public static func sha256Hex(fileAt path: String) -> String? {
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        var hasher = SHA256()
        while true {
            let chunk: Data?
            do { chunk = try handle.read(upToCount: 1 << 20) } catch { return nil }
            // nil or empty: end of file.
            guard let chunk, !chunk.isEmpty else { break }
            hasher.update(data: chunk)
        }
        return Hex.encode(hasher.finalize())
    }
}
