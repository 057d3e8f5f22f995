import Foundation
import Testing
import VouchEvidence

/// Keys are generated once per process; signing is randomised anyway (ECDSA).
enum TestKeys {
    static let device = SigningKey.generate()
    static let other = SigningKey.generate()
    static let bank = SigningKey.generate()
}

/// Builds `header.payload.signature` from parts the test chooses.
func compactToken(header: JSONValue, payload: [UInt8], signature: [UInt8]) -> String {
    refBase64URL(CanonicalJSON.encode(header)) + "." + refBase64URL(payload) + "." + refBase64URL(signature)
}

@Suite struct JWSTests {
    let typ = "test+jws"
    let payload = Array(#"{"hello":"world","n":42}"#.utf8)

    @Test func signThenVerifyRoundTrips() throws {
        let key = TestKeys.device
        let signed = JWS.sign(payload: payload, key: key, typ: typ)
        let verified = try JWS.verify(signed.token, key: key.publicJWK, typ: typ)
        #expect(verified.payload == payload)
        #expect(verified.signingInputHash == signed.signingInputHash)
    }

    @Test func headerIsES256WithThumbprintKidAndTyp() throws {
        let key = TestKeys.device
        let signed = JWS.sign(payload: payload, key: key, typ: typ)
        let parts = signed.token.split(separator: ".", omittingEmptySubsequences: false)
        try #require(parts.count == 3)
        let headerText = String(decoding: refBase64URLDecode(parts[0]), as: UTF8.self)
        #expect(headerText == #"{"alg":"ES256","kid":"\#(key.publicJWK.thumbprint)","typ":"test+jws"}"#)
        #expect(refBase64URLDecode(parts[1]) == payload)
        let verified = try JWS.verify(signed.token, key: key.publicJWK, typ: typ)
        #expect(verified.header == ["alg": "ES256", "kid": .string(key.kid), "typ": .string(typ)])
        #expect(key.kid == key.publicJWK.thumbprint)
    }

    @Test func tokenHasNoPaddingAndUsesTheURLAlphabet() {
        let signed = JWS.sign(payload: Array(repeating: 0xFB, count: 31), key: TestKeys.device, typ: typ)
        #expect(!signed.token.contains("="))
        #expect(!signed.token.contains("+"))
        #expect(!signed.token.contains("/"))
    }

    @Test func signatureIsRawRAndS64Bytes() {
        let signed = JWS.sign(payload: payload, key: TestKeys.device, typ: typ)
        let sig = signed.token.split(separator: ".", omittingEmptySubsequences: false)[2]
        #expect(refBase64URLDecode(sig).count == 64)
    }

    @Test func signingInputHashIsSHA256OfHeaderDotPayload() throws {
        let signed = JWS.sign(payload: payload, key: TestKeys.device, typ: typ)
        let lastDot = try #require(signed.token.lastIndex(of: "."))
        let signingInput = String(signed.token[..<lastDot])
        #expect(signingInput.split(separator: ".").count == 2)
        #expect(signed.signingInputHash == RefSHA256.hex(signingInput))
    }

    @Test func signingTwiceGivesDifferentSignaturesButBothVerify() throws {
        let key = TestKeys.device
        let a = JWS.sign(payload: payload, key: key, typ: typ)
        let b = JWS.sign(payload: payload, key: key, typ: typ)
        // Same header and payload, so the same signing input hash: the chain does not depend on the signature.
        #expect(a.signingInputHash == b.signingInputHash)
        #expect(a.token != b.token)
        _ = try JWS.verify(a.token, key: key.publicJWK, typ: typ)
        _ = try JWS.verify(b.token, key: key.publicJWK, typ: typ)
    }

    // MARK: rejections

    func parts(_ token: String) -> [String] { token.split(separator: ".", omittingEmptySubsequences: false).map(String.init) }

    @Test func flippedPayloadByteFailsSignature() {
        let key = TestKeys.device
        let p = parts(JWS.sign(payload: payload, key: key, typ: typ).token)
        var body = refBase64URLDecode(p[1])
        body[3] ^= 0x01
        let token = p[0] + "." + refBase64URL(body) + "." + p[2]
        #expect(evidenceError { try JWS.verify(token, key: key.publicJWK, typ: typ) }?.code == .badSignature)
    }

    @Test func flippedSignatureByteFailsSignature() {
        let key = TestKeys.device
        let p = parts(JWS.sign(payload: payload, key: key, typ: typ).token)
        for index in [0, 31, 32, 63] {
            var sig = refBase64URLDecode(p[2])
            sig[index] ^= 0x80
            let token = p[0] + "." + p[1] + "." + refBase64URL(sig)
            #expect(evidenceError { try JWS.verify(token, key: key.publicJWK, typ: typ) }?.code == .badSignature, "byte \(index)")
        }
    }

    @Test func truncatedSignatureIsRefused() {
        let key = TestKeys.device
        let p = parts(JWS.sign(payload: payload, key: key, typ: typ).token)
        let sig = refBase64URLDecode(p[2])
        for bad in [Array(sig.prefix(63)), sig + [0], []] {
            let token = p[0] + "." + p[1] + "." + refBase64URL(bad)
            #expect(evidenceError { try JWS.verify(token, key: key.publicJWK, typ: typ) }?.code == .badSignature, "\(bad.count) bytes")
        }
    }

    @Test(arguments: [2, 4, 1, 5])
    func wrongNumberOfPartsIsMalformed(_ count: Int) {
        let p = parts(JWS.sign(payload: payload, key: TestKeys.device, typ: typ).token)
        let all = p + [p[2], p[2]]
        let token = all.prefix(count).joined(separator: ".")
        let error = evidenceError { try JWS.verify(token, key: TestKeys.device.publicJWK, typ: typ) }
        #expect(error?.code == .malformedJWS)
        #expect(error?.message.contains("3 parts") == true)
    }

    func tokenWithHeader(_ header: JSONValue, key: SigningKey = TestKeys.device) -> String {
        // A real signature of the genuine token: the header checks must refuse before signatures matter.
        let sig = refBase64URLDecode(parts(JWS.sign(payload: payload, key: key, typ: typ).token)[2])
        return compactToken(header: header, payload: payload, signature: sig)
    }

    @Test(arguments: ["none", "HS256", "RS256", "ES384", "es256"])
    func algorithmOtherThanES256IsRefused(_ alg: String) {
        let key = TestKeys.device
        let token = tokenWithHeader(["alg": .string(alg), "kid": .string(key.kid), "typ": .string(typ)])
        #expect(evidenceError { try JWS.verify(token, key: key.publicJWK, typ: typ) }?.code == .unsupportedAlgorithm)
        #expect(evidenceError { try JWS.parse(token) }?.code == .unsupportedAlgorithm)
    }

    @Test func missingAlgorithmIsRefused() {
        let key = TestKeys.device
        let token = tokenWithHeader(["kid": .string(key.kid), "typ": .string(typ)])
        #expect(evidenceError { try JWS.verify(token, key: key.publicJWK, typ: typ) }?.code == .unsupportedAlgorithm)
    }

    @Test func critHeaderIsRefused() {
        let key = TestKeys.device
        let token = tokenWithHeader(["alg": "ES256", "kid": .string(key.kid), "typ": .string(typ), "crit": ["exp"]])
        let error = evidenceError { try JWS.verify(token, key: key.publicJWK, typ: typ) }
        #expect(error?.code == .malformedJWS)
        #expect(error?.message.contains("crit") == true)
    }

    @Test func wrongTypIsRefused() {
        let key = TestKeys.device
        let token = JWS.sign(payload: payload, key: key, typ: "other+jws").token
        #expect(evidenceError { try JWS.verify(token, key: key.publicJWK, typ: typ) }?.code == .malformedJWS)
        let noTyp = tokenWithHeader(["alg": "ES256", "kid": .string(key.kid)])
        #expect(evidenceError { try JWS.verify(noTyp, key: key.publicJWK, typ: typ) }?.code == .malformedJWS)
    }

    @Test func verifyingWithAnotherKeyIsRefusedByKid() {
        let token = JWS.sign(payload: payload, key: TestKeys.device, typ: typ).token
        let error = evidenceError { try JWS.verify(token, key: TestKeys.other.publicJWK, typ: typ) }
        #expect(error?.code == .wrongKey)
    }

    @Test func kidOfTheEnrolledKeyWithAnotherKeysSignatureFails() {
        // Header names the device key, but the signature was made by another key.
        let device = TestKeys.device
        let genuine = parts(JWS.sign(payload: payload, key: device, typ: typ).token)
        let forged = parts(JWS.sign(payload: payload, key: TestKeys.other, typ: typ).token)
        let token = genuine[0] + "." + genuine[1] + "." + forged[2]
        #expect(evidenceError { try JWS.verify(token, key: device.publicJWK, typ: typ) }?.code == .badSignature)
    }

    @Test func headerThatIsNotBase64URLOrNotAnObjectIsMalformed() {
        let key = TestKeys.device
        let p = parts(JWS.sign(payload: payload, key: key, typ: typ).token)
        let notBase64 = "e+J." + p[1] + "." + p[2]
        #expect(evidenceError { try JWS.verify(notBase64, key: key.publicJWK, typ: typ) }?.code == .malformedJWS)
        let array = refBase64URL(Array("[1]".utf8)) + "." + p[1] + "." + p[2]
        #expect(evidenceError { try JWS.verify(array, key: key.publicJWK, typ: typ) }?.code == .malformedJWS)
        let badPayload = p[0] + ".a/b." + p[2]
        #expect(evidenceError { try JWS.verify(badPayload, key: key.publicJWK, typ: typ) }?.code == .malformedJWS)
    }
}

@Suite struct PublicJWKTests {
    // RFC 7515 Appendix A.3 (ES256 example key).
    static let rfc7515X = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU"
    static let rfc7515Y = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"
    /// A mis-copied y for the same x that circulates for this key; it is not on P-256 (checked by
    /// hand: y² ≠ x³ − 3x + b mod p), so it must be refused.
    static let miscopiedY = "x_FEzRjGzEmV0B1Y8HQaGsk-S6xJJRvHJHxWAOpbL9w"
    // RFC 7517 Appendix A.1 (EC public key).
    static let rfc7517X = "MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4"
    static let rfc7517Y = "4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM"

    /// RFC 7638 §3: the required members in lexicographic order, no whitespace, then SHA-256.
    static func referenceThumbprint(x: String, y: String) -> String {
        refBase64URL(RefSHA256.hash(Array(#"{"crv":"P-256","kty":"EC","x":"\#(x)","y":"\#(y)"}"#.utf8)))
    }

    @Test(arguments: [(rfc7515X, rfc7515Y), (rfc7517X, rfc7517Y)])
    func thumbprintOfRFCExampleKeysMatchesRFC7638Construction(_ x: String, _ y: String) throws {
        let jwk = try PublicJWK(json: ["kty": "EC", "crv": "P-256", "x": .string(x), "y": .string(y), "kid": "ignored", "use": "sig"])
        #expect(jwk.x == x)
        #expect(jwk.y == y)
        #expect(jwk.thumbprint == Self.referenceThumbprint(x: x, y: y))
        #expect(jwk.thumbprint.count == 43)
    }

    @Test func thumbprintOfGeneratedKeyMatchesRFC7638Construction() {
        let jwk = TestKeys.device.publicJWK
        #expect(jwk.thumbprint == Self.referenceThumbprint(x: jwk.x, y: jwk.y))
        #expect(TestKeys.device.kid == jwk.thumbprint)
        #expect(TestKeys.device.kid != TestKeys.other.kid)
    }

    @Test func jsonRoundTrips() throws {
        let jwk = TestKeys.device.publicJWK
        #expect(CanonicalJSON.string(jwk.json) == #"{"crv":"P-256","kty":"EC","x":"\#(jwk.x)","y":"\#(jwk.y)"}"#)
        #expect(try PublicJWK(json: jwk.json) == jwk)
        #expect(refBase64URLDecode(Substring(jwk.x)).count == 32)
        #expect(refBase64URLDecode(Substring(jwk.y)).count == 32)
    }

    static func flipLastByte(_ b64: String) -> String {
        var bytes = refBase64URLDecode(Substring(b64))
        bytes[31] ^= 0x01
        return refBase64URL(bytes)
    }

    static let rejected: [(String, JSONValue)] = [
        ("mis-copied RFC 7515 y, not on the curve", ["kty": "EC", "crv": "P-256", "x": .string(rfc7515X), "y": .string(miscopiedY)]),
        ("point not on the curve", ["kty": "EC", "crv": "P-256", "x": .string(rfc7515X), "y": .string(flipLastByte(rfc7515Y))]),
        ("point not on the curve (both changed)", ["kty": "EC", "crv": "P-256", "x": .string(refBase64URL(Array(repeating: 1, count: 32))), "y": .string(refBase64URL(Array(repeating: 2, count: 32)))]),
        ("x of 31 bytes", ["kty": "EC", "crv": "P-256", "x": .string(refBase64URL(Array(refBase64URLDecode(Substring(rfc7515X)).prefix(31)))), "y": .string(rfc7515Y)]),
        ("y of 33 bytes", ["kty": "EC", "crv": "P-256", "x": .string(rfc7515X), "y": .string(refBase64URL(refBase64URLDecode(Substring(rfc7515Y)) + [0]))]),
        ("x with padding", ["kty": "EC", "crv": "P-256", "x": .string(rfc7515X + "="), "y": .string(rfc7515Y)]),
        ("x in the standard alphabet", ["kty": "EC", "crv": "P-256", "x": .string(rfc7515X), "y": .string(rfc7515Y.replacingOccurrences(of: "_", with: "/"))]),
        ("missing y", ["kty": "EC", "crv": "P-256", "x": .string(rfc7515X)]),
        ("x is a number", ["kty": "EC", "crv": "P-256", "x": 1, "y": .string(rfc7515Y)]),
        ("kty RSA", ["kty": "RSA", "crv": "P-256", "x": .string(rfc7515X), "y": .string(rfc7515Y)]),
        ("crv P-384", ["kty": "EC", "crv": "P-384", "x": .string(rfc7515X), "y": .string(rfc7515Y)]),
        ("not an object", [.string(rfc7515X), .string(rfc7515Y)]),
    ]

    @Test(arguments: rejected)
    func malformedJWKIsRefused(_ name: String, _ json: JSONValue) {
        #expect(evidenceError { try PublicJWK(json: json) }?.code == .malformedKey, "\(name)")
    }
}

@Suite struct SigningKeyTests {
    @Test func pemRoundTripKeepsKidAndSigns() throws {
        let key = TestKeys.device
        #expect(key.pem.contains("-----BEGIN"))
        let reloaded = try SigningKey(pem: key.pem)
        #expect(reloaded.kid == key.kid)
        #expect(reloaded.publicJWK == key.publicJWK)
        let signed = JWS.sign(payload: [1, 2, 3], key: reloaded, typ: "t")
        #expect(try JWS.verify(signed.token, key: key.publicJWK, typ: "t").payload == [1, 2, 3])
    }

    @Test func generatedKeysDiffer() {
        #expect(SigningKey.generate().kid != SigningKey.generate().kid)
    }

    @Test(arguments: ["", "not a key", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"])
    func badPEMIsMalformedKey(_ pem: String) {
        #expect(evidenceError { try SigningKey(pem: pem) }?.code == .malformedKey)
    }
}

@Suite struct EncodingTests {
    @Test func base64URLRoundTripsAllLengths() throws {
        for n in 0...70 {
            let bytes = (0..<n).map { UInt8(($0 * 37 + n) & 0xFF) }
            let text = Base64URL.encode(bytes)
            #expect(text == refBase64URL(bytes))
            #expect(Base64URL.decode(text) == bytes)
        }
    }

    @Test(arguments: ["a", "abcde", "ab=", "a+b/", "ab c", "ab.c"])
    func base64URLRejectsInvalidText(_ text: String) {
        #expect(Base64URL.decode(text) == nil)
    }

    @Test func hexRoundTripsAndRejectsUpperCaseAndOddLength() {
        let bytes: [UInt8] = [0x00, 0x0F, 0xA5, 0xFF]
        #expect(Hex.encode(bytes) == "000fa5ff")
        #expect(Hex.decode("000fa5ff") == bytes)
        #expect(Hex.decode("000FA5FF") == nil)
        #expect(Hex.decode("abc") == nil)
        #expect(Hex.decode("zz") == nil)
        #expect(Digest256.zeroHex == String(repeating: "0", count: 64))
        #expect(Digest256.sha256Hex(Array("abc".utf8)) == RefSHA256.hex("abc"))
    }
}
