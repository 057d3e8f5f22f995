import Foundation
import Testing
import VouchEvidence
@testable import VouchBank

/// ECDSA signatures are malleable: if (r, s) verifies, so does (r, n − s). The chain links batches by
/// the hash of the signing input, never of the whole token, so a re-encoded signature is the same batch
/// to the bank and cannot break the chain for the honest batch that follows.
@Suite struct SignatureMalleabilityTests {
    /// The order of the P-256 group.
    static let order: [UInt8] = Hex.decode("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551") ?? []

    /// (r, s) → (r, n − s), big-endian 32-byte arithmetic.
    static func reencode(_ token: String) throws -> String {
        let parts = token.split(separator: ".").map(String.init)
        let signature = try #require(Base64URL.decode(parts[2]))
        try #require(signature.count == 64)
        let s = Array(signature[32...])
        var result = [UInt8](repeating: 0, count: 32)
        var borrow = 0
        for i in stride(from: 31, through: 0, by: -1) {
            var d = Int(order[i]) - Int(s[i]) - borrow
            borrow = d < 0 ? 1 : 0
            if d < 0 { d += 256 }
            result[i] = UInt8(d)
        }
        return parts[0] + "." + parts[1] + "." + Base64URL.encode(Array(signature[..<32]) + result)
    }

    /// The same batch file with its manifest's signature re-encoded.
    static func twin(of batch: SealedBatch) throws -> SealedBatch { batch.withToken(try reencode(batch.token)) }

    @Test func reencodedSignatureStillVerifiesAndHashesTheSame() throws {
        let device = TestDevice()
        let batch = ChainBuilder.chain(device, batches: 1)[0]
        let twin = try Self.twin(of: batch)
        #expect(twin.token != batch.token)
        #expect(twin.file != batch.file)
        let verified = try VerifiedBatch.verify(twin, key: device.key.publicJWK)
        #expect(verified.signingInputHash == batch.signingInputHash)
        #expect(verified.token == twin.token)
        // The twin really is another signature: a flipped byte in it does not verify.
        var flipped = try #require(Base64URL.decode(Fixture.parts(twin.token)[2]))
        flipped[40] ^= 0x01
        let broken = Fixture.parts(twin.token)[0] + "." + Fixture.parts(twin.token)[1] + "." + Base64URL.encode(flipped)
        #expect(evidenceCode { _ = try VerifiedBatch.verify(batch.withToken(broken), key: device.key.publicJWK) } == .badSignature)
    }

    @Test func reencodedResendIsADuplicateNotAFork() async throws {
        try await TestBank.with { bank in
            let device = TestDevice()
            try bank.enroll(device)
            let chain = ChainBuilder.chain(device, batches: 2)
            let twin = try Self.twin(of: chain[0])
            let replies = try await bank.http { client in
                [try await client.post(chain[0]), try await client.post(twin), try await client.post(chain[1])]
            }
            #expect(replies.map(\.status) == [200, 200, 200])
            #expect(replies.map(\.verdict) == ["accepted", "duplicate", "accepted"])
            #expect(replies[1].receipt == replies[0].receipt)
            #expect(try bank.store.batches(device: device.id).map(\.token) == [chain[0].token, chain[1].token])
            #expect(try bank.store.incidents(device: device.id, nowMs: Fixture.t0).isEmpty, "a re-encoding is not a fork")
        }
    }

    @Test func reencodedFirstArrivalDoesNotBreakTheHonestNextBatch() async throws {
        try await TestBank.with { bank in
            let device = TestDevice()
            try bank.enroll(device)
            let chain = ChainBuilder.chain(device, batches: 2)
            // Someone on the path re-encodes batch 1 before the bank sees it.
            let twin = try Self.twin(of: chain[0])
            let replies = try await bank.http { client in
                [try await client.post(twin), try await client.post(chain[0]), try await client.post(chain[1])]
            }
            #expect(replies.map(\.verdict) == ["accepted", "duplicate", "accepted"])
            #expect(try bank.store.batches(device: device.id).map(\.bseq) == [1, 2])
            #expect(try bank.store.batches(device: device.id).map(\.hash) == chain.map(\.signingInputHash))
        }
    }
}
