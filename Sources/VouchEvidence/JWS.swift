import Foundation
import Crypto

/// JWS compact serialisation (RFC 7515) with ES256 (RFC 7518 §3.4: raw r ‖ s, 64 bytes).
public enum JWS {
    public struct Signed: Sendable, Equatable {
        /// `BASE64URL(header) "." BASE64URL(payload) "." BASE64URL(signature)`
        public let token: String
        /// SHA-256 (hex) of the ASCII signing input `header.payload`. The chain links batches by this,
        /// never by the whole token, because an ECDSA signature can be re-encoded and still verify.
        public let signingInputHash: String
    }

    public struct Verified: Sendable {
        public let header: [String: JSONValue]
        public let payload: [UInt8]
        public let signingInputHash: String
    }

    public static func sign(payload: [UInt8], key: SigningKey, typ: String) -> Signed {
        let header: JSONValue = ["alg": "ES256", "kid": .string(key.kid), "typ": .string(typ)]
        let signingInput = Base64URL.encode(CanonicalJSON.encode(header)) + "." + Base64URL.encode(payload)
        let input = Array(signingInput.utf8)
        // swift-crypto only fails to sign on a broken key object, which a loaded key cannot be.
        let signature = (try? key.privateKey.signature(for: input))?.rawRepresentation ?? Data()
        return Signed(token: signingInput + "." + Base64URL.encode(signature), signingInputHash: Digest256.sha256Hex(input))
    }

    /// Splits and decodes a token without checking the signature (to find the key by `kid`).
    public static func parse(_ token: String) throws(EvidenceError) -> (header: [String: JSONValue], payload: [UInt8], signingInput: Substring, signature: [UInt8]) {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3 else { throw EvidenceError(.malformedJWS, "a JWS compact token has 3 parts separated by '.', this has \(parts.count)") }
        guard let headerBytes = Base64URL.decode(parts[0]) else { throw EvidenceError(.malformedJWS, "header is not base64url") }
        guard let payload = Base64URL.decode(parts[1]) else { throw EvidenceError(.malformedJWS, "payload is not base64url") }
        guard let signature = Base64URL.decode(parts[2]) else { throw EvidenceError(.malformedJWS, "signature is not base64url") }
        guard let header = try CanonicalJSON.decode(headerBytes).objectValue else {
            throw EvidenceError(.malformedJWS, "header is not a JSON object")
        }
        guard header["alg"]?.stringValue == "ES256" else {
            throw EvidenceError(.unsupportedAlgorithm, "alg must be ES256, got \(header["alg"].map { CanonicalJSON.string($0) } ?? "none")")
        }
        if let crit = header["crit"] { throw EvidenceError(.malformedJWS, "unsupported crit header \(CanonicalJSON.string(crit))") }
        let signingInput = token[token.startIndex..<parts[1].endIndex]
        return (header, payload, signingInput, signature)
    }

    public static func verify(_ token: String, key: PublicJWK, typ: String) throws(EvidenceError) -> Verified {
        let (header, payload, signingInput, signature) = try parse(token)
        guard header["typ"]?.stringValue == typ else {
            throw EvidenceError(.malformedJWS, "typ must be \(typ)")
        }
        guard header["kid"]?.stringValue == key.thumbprint else {
            throw EvidenceError(.wrongKey, "kid \(header["kid"]?.stringValue ?? "(none)") is not the enrolled key \(key.thumbprint)")
        }
        guard signature.count == 64, let sig = try? P256.Signing.ECDSASignature(rawRepresentation: signature) else {
            throw EvidenceError(.badSignature, "an ES256 signature is 64 bytes (r ‖ s), got \(signature.count)")
        }
        let input = Array(signingInput.utf8)
        guard try key.publicKey.isValidSignature(sig, for: input) else {
            throw EvidenceError(.badSignature, "signature does not verify with the enrolled key")
        }
        return Verified(header: header, payload: payload, signingInputHash: Digest256.sha256Hex(input))
    }
}
