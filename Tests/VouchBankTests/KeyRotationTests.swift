import Foundation
import Testing
import VouchEvidence
@testable import VouchBank

/// A device moves to a new key: the rotation record travels in batch k signed by the old key, with a
/// proof signed by the new key; batches after k are signed by the new key.
@Suite("Key rotation")
struct KeyRotationTests {
    /// Batch 1 (old key), batch 2 (old key, rotation to `newKey`), batches 3 and 4 (new key).
    static func rotatingChain(_ device: TestDevice, to newKey: SigningKey) -> ChainBuilder {
        var b = ChainBuilder(device)
        b.next(count: 2)
        b.rotate(to: newKey, count: 1)
        b.next(count: 2)
        b.next(count: 1)
        return b
    }

    @Test("rotation in batch k signed by the old key, then batch k+1 signed by the new key is accepted")
    func rotationThenNewKey() async throws {
        try await TestBank.with { bank in
            let device = TestDevice()
            let newKey = SigningKey.generate()
            try bank.enroll(device)
            let chain = Self.rotatingChain(device, to: newKey).batches
            #expect(try chain.map { try Fixture.kid($0.token) } == [device.key.kid, device.key.kid, newKey.kid, newKey.kid])

            let results = try chain.map { try bank.ingest.ingest($0, nowMs: Fixture.t0) }
            #expect(results.map(\.verdict) == [.accepted, .accepted, .accepted, .accepted])
            #expect(results.map(\.rotatedTo) == [nil, newKey.kid, nil, nil])
            #expect(results.map(\.device) == Array(repeating: device.id, count: 4))
            #expect(try bank.store.batches(device: device.id).map(\.hash) == chain.map(\.signingInputHash))
            #expect(try bank.store.recordCount(device: device.id) == 2 + 2 + 2 + 1)

            let keys = try bank.store.keys(device: device.id)
            #expect(keys.map(\.kid) == [device.key.kid, newKey.kid])
            #expect(keys.map(\.keyFromBseq) == [1, 3])
            #expect(keys.map(\.keyUntilBseq) == [2, nil])
            #expect(keys.allSatisfy { $0.id == device.id && $0.enrolledAtMs == Fixture.t0 })
            // The device is listed once, through its current key; both keys still lead to it.
            #expect(try bank.store.devices().map(\.kid) == [newKey.kid])
            #expect(try bank.store.device(kid: device.key.kid)?.keyUntilBseq == 2)
            #expect(try bank.store.device(kid: newKey.kid)?.id == device.id)
            // Receipts keep counting the device's batches across the rotation.
            let counts = try results.map { try Receipt.verify($0.receipt, bankKey: bank.bankKey.publicJWK).0.deviceLogSize }
            #expect(counts == [1, 2, 3, 4])
        }
    }

    @Test("the old key signing batch k+1 after the rotation: E_KEY_RETIRED")
    func oldKeyAfterRotation() async throws {
        try await TestBank.with { bank in
            let device = TestDevice()
            let newKey = SigningKey.generate()
            try bank.enroll(device)
            var b = ChainBuilder(device)
            b.next()
            b.rotate(to: newKey)
            var stale = b
            stale.key = device.key  // a copy of the old key file keeps signing
            let byOldKey = stale.next()
            let byNewKey = b.next()
            try TamperMatrixTests.accept(bank, Array(b.batches[..<2]))

            let refusal = bank.refusal(byOldKey)
            #expect(refusal?.code == BankError.keyRetired)
            #expect(refusal?.code == "E_KEY_RETIRED")
            #expect(refusal?.status == 401)
            #expect(refusal?.message.contains("retired in batch 2") == true, "\(String(describing: refusal))")
            #expect(try bank.store.batches(device: device.id).map(\.bseq) == [1, 2])
            #expect(try bank.store.incidents(device: device.id, nowMs: Fixture.t0).isEmpty, "a retired key is refused before the chain is looked at")
            #expect(bank.refusal(byNewKey) == nil)
            #expect(try bank.store.batches(device: device.id).map(\.hash) == b.batches.map(\.signingInputHash))
            // Still retired later, at any bseq beyond the rotation.
            let later = Fixture.seal(device: device.id, bseq: 4, prev: byNewKey.signingInputHash, records: Fixture.summaries(20...20), key: device.key)
            #expect(bank.refusal(later)?.code == "E_KEY_RETIRED")
        }
    }

    @Test("a rotation whose proof is signed by another key: E_KEY_ROTATION, nothing stored")
    func proofByAnotherKey() async throws {
        try await TestBank.with { bank in
            let device = TestDevice()
            let newKey = SigningKey.generate()
            let intruder = SigningKey.generate()
            try bank.enroll(device)
            var b = ChainBuilder(device)
            b.next()
            let bad = b.rotate(to: newKey, proofSigner: intruder)
            let afterBad = b.next()
            try TamperMatrixTests.accept(bank, [b.batches[0]])

            let refusal = bank.refusal(bad)
            #expect(refusal?.code == BankError.keyRotation)
            #expect(refusal?.code == "E_KEY_ROTATION")
            #expect(refusal?.status == 400)
            #expect(try bank.store.batches(device: device.id).map(\.bseq) == [1])
            #expect(try bank.store.recordCount(device: device.id) == 3)
            #expect(try bank.store.keys(device: device.id).map(\.kid) == [device.key.kid])
            #expect(try bank.store.device(kid: newKey.kid) == nil)
            #expect(try bank.store.device(kid: intruder.kid) == nil)
            // The key it tried to bring in is unknown to the bank.
            #expect(bank.refusal(afterBad)?.code == "E_DEVICE_UNKNOWN")

            let offline = try ExportStream.verify([b.batches[0], bad], device: device.enrollment())
            #expect(offline.map(\.problem?.code) == [nil, "E_KEY_ROTATION"])
        }
    }

    @Test("a rotation proof naming another device or another old key: E_KEY_ROTATION", arguments: ["device", "old key"])
    func proofNamingOthers(_ variant: String) async throws {
        try await TestBank.with { bank in
            let device = TestDevice()
            let newKey = SigningKey.generate()
            try bank.enroll(device)
            var b = ChainBuilder(device)
            b.next(count: 1)
            let proof =
                variant == "device"
                ? KeyRotation.proof(device: "acme-other", oldKid: device.key.kid, newKey: newKey)
                : KeyRotation.proof(device: device.id, oldKid: SigningKey.generate().kid, newKey: newKey)
            let bad = b.next(records: [.keyRotation(KeyRotation(stamp: Fixture.stamp(2), newKey: newKey.publicJWK, proof: proof))])
            try TamperMatrixTests.accept(bank, [b.batches[0]])
            let refusal = bank.refusal(bad)
            #expect(refusal?.code == "E_KEY_ROTATION")
            #expect(refusal?.message.contains("must name device") == true, "\(String(describing: refusal))")
            #expect(try bank.store.keys(device: device.id).count == 1)
            #expect(try bank.store.batches(device: device.id).map(\.bseq) == [1])
        }
    }

    @Test("a rotation to a key another device holds, or one this device had: E_KEY_ROTATION")
    func rotationToATakenKey() async throws {
        try await TestBank.with { bank in
            let device = TestDevice()
            let neighbour = TestDevice()
            try bank.enroll(device)
            try bank.enroll(neighbour)
            var toNeighbour = ChainBuilder(device)
            toNeighbour.next(count: 1)
            let stealing = toNeighbour.rotate(to: neighbour.key, count: 0)
            try TamperMatrixTests.accept(bank, [toNeighbour.batches[0]])
            let refusal = bank.refusal(stealing)
            #expect(refusal?.code == "E_KEY_ROTATION")
            #expect(refusal?.status == 409)
            #expect(refusal?.message.contains("belongs to device \(neighbour.id)") == true)
            #expect(try bank.store.batches(device: device.id).map(\.bseq) == [1])

            // A → B is fine; B → A again is not: a retired key never comes back.
            var b = ChainBuilder(device)
            b.next(count: 1)
            let second = SigningKey.generate()
            b.rotate(to: second, count: 0)
            let back = b.rotate(to: device.key, count: 0)
            try TamperMatrixTests.accept(bank, [b.batches[1]])
            let again = bank.refusal(back)
            #expect(again?.code == "E_KEY_ROTATION")
            #expect(again?.message.contains("this device already had") == true)
            #expect(try bank.store.keys(device: device.id).map(\.kid) == [device.key.kid, second.kid])
        }
    }

    @Test("a batch signed by the new key before the rotation was accepted: E_DEVICE_UNKNOWN, then accepted in order")
    func newKeyBeforeRotation() async throws {
        try await TestBank.with { bank in
            let device = TestDevice()
            let newKey = SigningKey.generate()
            try bank.enroll(device)
            let chain = Self.rotatingChain(device, to: newKey).batches
            try TamperMatrixTests.accept(bank, [chain[0]])
            let early = bank.refusal(chain[2])
            #expect(early?.code == "E_DEVICE_UNKNOWN")
            #expect(early?.status == 401)
            #expect(try bank.store.batches(device: device.id).map(\.bseq) == [1])
            try TamperMatrixTests.accept(bank, Array(chain[1...]))
            #expect(try bank.store.batches(device: device.id).map(\.bseq) == [1, 2, 3, 4])
        }
    }

    @Test("the rotated-in key cannot be enrolled for another device, nor the retired one")
    func rotatedKeyCannotBeEnrolledElsewhere() async throws {
        try await TestBank.with { bank in
            let device = TestDevice()
            let newKey = SigningKey.generate()
            try bank.enroll(device)
            try TamperMatrixTests.accept(bank, Self.rotatingChain(device, to: newKey).batches)

            let stolen = bankError { try bank.store.enroll(EnrolledDevice(id: "acme-clone", key: newKey.publicJWK, enrolledAtMs: Fixture.t0)) }
            #expect(stolen?.code == "E_ENROLLMENT")
            #expect(stolen?.status == 409)
            #expect(stolen?.message.contains("rotated in for device \(device.id)") == true, "\(String(describing: stolen))")
            let retired = bankError { try bank.store.enroll(EnrolledDevice(id: "acme-clone", key: device.key.publicJWK, enrolledAtMs: Fixture.t0)) }
            #expect(retired?.code == "E_ENROLLMENT")
            // Nor can the device be re-enrolled under its new key: rotation is the way.
            let reenrolled = bankError { try bank.store.enroll(EnrolledDevice(id: device.id, key: newKey.publicJWK, enrolledAtMs: Fixture.t0)) }
            #expect(reenrolled?.code == "E_ENROLLMENT")
            #expect(try bank.store.devices().map(\.id) == [device.id])
            #expect(try bank.store.device(kid: newKey.kid)?.id == device.id)
        }
    }

    @Test("duplicates of old-key batches after the rotation are still idempotent")
    func oldKeyDuplicatesAfterRotation() async throws {
        try await TestBank.with { bank in
            let device = TestDevice()
            let newKey = SigningKey.generate()
            try bank.enroll(device)
            let chain = Self.rotatingChain(device, to: newKey).batches
            let first = try chain.map { try bank.ingest.ingest($0, nowMs: Fixture.t0) }
            let again = try chain.map { try bank.ingest.ingest($0, nowMs: Fixture.t0 + 1) }
            #expect(again.map(\.verdict) == [.duplicate, .duplicate, .duplicate, .duplicate])
            #expect(again.map(\.receipt) == first.map(\.receipt))
            #expect(again.map(\.rotatedTo) == [nil, nil, nil, nil], "a resent rotation rotates nothing")
            let keys = try bank.store.keys(device: device.id)
            #expect(keys.map(\.kid) == [device.key.kid, newKey.kid])
            #expect(keys.map(\.keyUntilBseq) == [2, nil])
            #expect(try bank.store.batches(device: device.id).count == 4)
            #expect(try bank.store.recordCount(device: device.id) == 7)
            // A re-encoded copy of an old-key batch is a duplicate too.
            let twin = try SignatureMalleabilityTests.twin(of: chain[0])
            #expect(try bank.ingest.ingest(twin, nowMs: Fixture.t0 + 2).verdict == .duplicate)
        }
    }

    @Test("two rotations in a row: each key signs its own range")
    func twoRotations() async throws {
        try await TestBank.with { bank in
            let device = TestDevice()
            let second = SigningKey.generate()
            let third = SigningKey.generate()
            try bank.enroll(device)
            var b = ChainBuilder(device)
            b.next()
            b.rotate(to: second)
            b.next()
            b.rotate(to: third)
            var byRetired = b
            byRetired.key = second
            let retired = byRetired.next()
            b.next()
            try TamperMatrixTests.accept(bank, b.batches)
            let keys = try bank.store.keys(device: device.id)
            #expect(keys.map(\.kid) == [device.key.kid, second.kid, third.kid])
            #expect(keys.map(\.keyFromBseq) == [1, 3, 5])
            #expect(keys.map(\.keyUntilBseq) == [2, 4, nil])
            #expect(bank.refusal(retired)?.code == "E_KEY_RETIRED")

            let offline = try ExportStream.verify(b.batches, device: device.enrollment())
            #expect(offline.allSatisfy { $0.ok }, "\(offline)")
            #expect(offline[3].note?.contains("rotates to key \(third.kid) from batch 5") == true)
        }
    }

    @Test("the offline verifier follows the rotation over a stream")
    func offlineFollowsRotation() throws {
        let device = TestDevice()
        let newKey = SigningKey.generate()
        var b = Self.rotatingChain(device, to: newKey)
        let chain = b.batches
        let result = try ExportStream.verify(chain, device: device.enrollment(), expectedLast: 4)
        #expect(result.allSatisfy { $0.ok }, "\(result)")
        #expect(result.map(\.bseq) == [1, 2, 3, 4])
        #expect(result[1].note == "rotates to key \(newKey.kid) from batch 3")
        #expect(result.map(\.records) == [2, 2, 2, 1])

        // Without the rotation batch the new key means nothing to the verifier.
        let skipped = try ExportStream.verify([chain[0], chain[2]], device: device.enrollment())
        #expect(skipped.map(\.problem?.code) == [nil, "E_JWS_KID"])

        // The old key signing after the rotation fails; the new key signing again goes on.
        var stale = b
        stale.key = device.key
        let byOldKey = stale.next()
        let byNewKey = b.next()
        let mixed = try ExportStream.verify(chain + [byOldKey, byNewKey], device: device.enrollment())
        #expect(mixed.map(\.ok) == [true, true, true, true, false, true])
        #expect(mixed[4].bseq == 5)
        // The receiver says E_KEY_RETIRED for this batch; `vouch-bank verify` should use the same words.
        #expect(mixed[4].problem?.code == "E_KEY_RETIRED")
    }

    /// An export that repeats an old-key batch after the rotation (two overlapping exports, say) is
    /// the same history: the bank calls it a duplicate, the offline verifier should too.
    @Test("the offline verifier takes a copy of an old-key batch after the rotation as an identical copy")
    func offlineOldKeyCopyAfterRotation() throws {
        let device = TestDevice()
        let newKey = SigningKey.generate()
        let chain = Self.rotatingChain(device, to: newKey).batches
        let result = try ExportStream.verify(chain + [chain[1]], device: device.enrollment())
        #expect(Array(result.prefix(4)).allSatisfy { $0.ok })
        #expect(result[4].ok, "\(String(describing: result[4].problem))")
        #expect(result[4].note?.contains("identical copy") == true)
    }
}
