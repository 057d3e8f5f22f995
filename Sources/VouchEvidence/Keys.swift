import Crypto
import Foundation

/// A P-256 public key as a JWK (RFC 7517) with its RFC 7638 thumbprint, which is the `kid`.
public struct PublicJWK: Sendable, Equatable, Hashable {
    public let x: String
    public let y: String

    public init(_ key: P256.Signing.PublicKey) {
        let raw = Array(key.x963Representation)  // 0x04 ‖ X(32) ‖ Y(32)
        x = Base64URL.encode(raw[1..<33])
        y = Base64URL.encode(raw[33..<65])
    }

    /// Reads `{"kty":"EC","crv":"P-256","x":…,"y":…}`; other members (kid, use, alg) are ignored.
    public init(json: JSONValue) throws(EvidenceError) {
        guard let o = json.objectValue else { throw EvidenceError(.malformedKey, "a JWK must be a JSON object") }
        guard o["kty"]?.stringValue == "EC" else { throw EvidenceError(.malformedKey, "JWK kty must be \"EC\"") }
        guard o["crv"]?.stringValue == "P-256" else { throw EvidenceError(.malformedKey, "JWK crv must be \"P-256\"") }
        guard let x = o["x"]?.stringValue, let y = o["y"]?.stringValue,
            let xb = Base64URL.decode(x), let yb = Base64URL.decode(y), xb.count == 32, yb.count == 32
        else { throw EvidenceError(.malformedKey, "JWK x and y must be base64url of 32 bytes each") }
        guard (try? P256.Signing.PublicKey(x963Representation: [0x04] + xb + yb)) != nil else {
            throw EvidenceError(.malformedKey, "JWK x, y are not a point on P-256")
        }
        self.x = x
        self.y = y
    }

    public var publicKey: P256.Signing.PublicKey {
        get throws(EvidenceError) {
            guard let xb = Base64URL.decode(x), let yb = Base64URL.decode(y),
                let key = try? P256.Signing.PublicKey(x963Representation: [0x04] + xb + yb)
            else { throw EvidenceError(.malformedKey, "JWK is not a valid P-256 point") }
            return key
        }
    }

    public var json: JSONValue { ["kty": "EC", "crv": "P-256", "x": .string(x), "y": .string(y)] }

    /// RFC 7638: SHA-256 over the required members in lexicographic order, no whitespace.
    public var thumbprint: String {
        Base64URL.encode(Digest256.sha256(CanonicalJSON.encode(json)))
    }
}

/// The signing half of a device or bank key. Only the key file code of the agent and the bank touch it.
///
/// Holds the 32-byte scalar rather than swift-crypto's key object, which is not `Sendable`; the key
/// object is rebuilt for each signature (one per batch, microseconds).
public struct SigningKey: Sendable {
    private let scalar: [UInt8]
    public let publicJWK: PublicJWK

    public init(_ privateKey: P256.Signing.PrivateKey) {
        scalar = Array(privateKey.rawRepresentation)
        publicJWK = PublicJWK(privateKey.publicKey)
    }

    public static func generate() -> SigningKey { SigningKey(P256.Signing.PrivateKey()) }

    /// A key from its 32-byte scalar (big-endian): for test vectors and key import.
    public init(scalar: [UInt8]) throws(EvidenceError) {
        do { self.init(try P256.Signing.PrivateKey(rawRepresentation: scalar)) } catch {
            throw EvidenceError(.malformedKey, "not a P-256 private scalar (32 bytes, 1 ≤ d < n)")
        }
    }

    /// The scalar, base64url: the JWK `d` member. Only test vectors print it.
    public var jwkD: String { Base64URL.encode(scalar) }

    public init(pem: String) throws(EvidenceError) {
        do { self.init(try P256.Signing.PrivateKey(pemRepresentation: pem)) } catch {
            throw EvidenceError(.malformedKey, "not a PEM-encoded P-256 private key (\(error))")
        }
    }

    /// The key object; cannot fail because `scalar` came from a valid key.
    var privateKey: P256.Signing.PrivateKey {
        get throws { try P256.Signing.PrivateKey(rawRepresentation: scalar) }
    }

    public var pem: String { (try? privateKey.pemRepresentation) ?? "" }
    public var kid: String { publicJWK.thumbprint }
}
