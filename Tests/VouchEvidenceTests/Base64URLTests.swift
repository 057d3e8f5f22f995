import Foundation
import Testing
@testable import VouchEvidence

/// Base64url (RFC 4648 §5, unpadded) on bytes, against Foundation's base64 for every length and
/// every byte value, and strict about what it accepts.
struct Base64URLTests {
    static func foundation(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    @Test func encodesAsFoundationDoesAndDecodesBack() {
        var generator = SystemRandomNumberGenerator()
        for length in 0...70 {
            for _ in 0..<20 {
                let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
                let text = Base64URL.encode(bytes)
                #expect(text == Self.foundation(bytes), "length \(length)")
                #expect(Base64URL.decode(text) == bytes, "length \(length)")
            }
        }
        let every = (0...255).map(UInt8.init)
        #expect(Base64URL.decode(Base64URL.encode(every)) == every)
        #expect(Base64URL.encode([0xFB, 0xFF]) == "-_8" && Base64URL.encode([]) == "")
    }

    @Test(arguments: [
        "QQ==",  // padding
        "Q",  // a length no byte string has
        "QR",  // unused trailing bits set: "QQ" is the one text of "A"
        "QUF",  // the same with two bytes: "QUE" is the one text of "AA"
        "QU+B",  // '+' is base64, not base64url
        "QU/B",
        "QU B",
        "QUé",
    ])
    func refusesWhatIsNotCanonicalBase64URL(_ text: String) {
        #expect(Base64URL.decode(text) == nil, "\(text)")
        #expect(Base64URL.decode("QQ") == [0x41] && Base64URL.decode("QUE") == [0x41, 0x41], "their canonical forms decode")
    }
}
