import Foundation
import Synchronization
import Testing
import VouchBank
import VouchCore
import VouchEvidence
import VouchStore
import VouchUplink

/// An uplink carrying out a key rotation against the real bank over loopback HTTP: batches up to and
/// including the rotation record are signed by the old key, later ones by the new key, and the bank
/// accepts every one of them.
@Suite("Uplink key rotation against a real bank", .serialized)
struct UplinkKeyRotationTests {
    /// The bseqs `onSealed` was called with.
    final class SealedCalls: Sendable {
        let calls = Mutex<[Int64]>([])
        func record(_ bseq: Int64) { calls.withLock { $0.append(bseq) } }
        var all: [Int64] { calls.withLock { $0 } }
    }

    static func kid(_ batch: SealedBatch) throws -> String {
        try #require(try JWS.parse(batch.token).header["kid"]?.stringValue)
    }

    /// 3 summaries, the rotation record (rseq 4), 4 summaries; `maxRecords` per batch.
    @Test("the rotation batch is signed by the old key, later ones by the new key; the bank accepts all", arguments: [(3, 2), (10, 1)])
    func rotationDelivers(maxRecords: Int, rotationBseq: Int64) async throws {
        let dir = try TempDir()
        defer { dir.remove() }
        let bank = try Bank(dir: dir)
        try await bank.serving { url in
            let gateway = try Gateway(dir: dir, bankURL: url, maxBatchRecords: maxRecords, bankKey: bank.key.publicJWK)
            try bank.store.enroll(gateway.enrollment)
            let newKey = SigningKey.generate()
            var records = Fixture.summaries(3, from: 1)
            records.append(gateway.rotationRecord(to: newKey, n: 4))
            records += Fixture.summaries(4, from: 5)
            let stored = try gateway.outbox.append(records)
            guard case .keyRotation = stored[3] else { throw TestFailure("record 4 is the rotation") }
            #expect(try gateway.outbox.keyRotationState(newKid: newKey.kid) == .recorded(rseq: 4))

            let sealedCalls = SealedCalls()
            let uplink = gateway.uplink(rotation: Uplink.PendingRotation(newKey: newKey, rseq: 4) { sealedCalls.record($0) })
            #expect(uplink.currentKey.kid == gateway.key.kid)
            let sealed = try uplink.sealPending()
            let count = maxRecords == 3 ? 4 : 2
            #expect(sealed.map(\.bseq) == Array(1...Int64(count)))
            // The rotation record ends its batch, whatever room is left in it.
            let lastRseqs = try sealed.map { batch in try batch.records.last.map { try CanonicalJSON.decode($0).arrayValue?[1].intValue } }
            #expect(lastRseqs == (maxRecords == 3 ? [3, 4, 7, 8] : [4, 8]) as [Int64??])
            let kids = try sealed.map(Self.kid)
            let expectedKids = sealed.map { $0.bseq <= rotationBseq ? gateway.key.kid : newKey.kid }
            #expect(kids == expectedKids)
            #expect(sealedCalls.all == [rotationBseq], "onSealed once, with the batch holding the rotation")
            #expect(uplink.currentKey.kid == newKey.kid)
            #expect(try gateway.outbox.keyRotationState(newKid: newKey.kid) == .sealed(rseq: 4, bseq: rotationBseq))
            // Every batch links to the one before, across the change of key.
            #expect(try sealed.dropFirst().map { try Fixture.payload($0.token).prev } == sealed.dropLast().map(\.signingInputHash))

            let outcome = await uplink.sendPending()
            #expect(outcome == .delivered(count: count), "\(outcome)")
            let keysByBatch = sealed.map { $0.bseq <= rotationBseq ? gateway.key.publicJWK : newKey.publicJWK }
            try UplinkDeliveryTests.expectBankHolds(bank, gateway, sealed, records: 8, keys: keysByBatch)
            let keys = try bank.store.keys(device: gateway.deviceID)
            #expect(keys.map(\.kid) == [gateway.key.kid, newKey.kid])
            #expect(keys.map(\.keyFromBseq) == [1, rotationBseq + 1])
            #expect(keys.map(\.keyUntilBseq) == [rotationBseq, nil])
            #expect(try bank.store.devices().map(\.kid) == [newKey.kid])

            // Later records go out under the new key too.
            try gateway.outbox.append(Fixture.summaries(2, from: 9))
            let next = try uplink.sealPending()
            #expect(try next.map(Self.kid) == [newKey.kid])
            #expect(await uplink.sendPending() == .delivered(count: 1))
            #expect(try bank.store.batches(device: gateway.deviceID).map(\.bseq) == Array(1...Int64(count + 1)))
            #expect(sealedCalls.all == [rotationBseq])

            // `vouch-bank verify` over the bank's export follows the rotation from the enrolled key.
            let files = try bank.store.batches(device: gateway.deviceID).flatMap(\.file)
            var verifier = OfflineVerifier(device: gateway.enrollment)
            let verdicts = verifier.verify([(name: "export", entries: try BatchFile.decodeStream(files))], expectedLast: Int64(count + 1))
            #expect(verdicts.count == count + 1)
            #expect(verdicts.allSatisfy { $0.ok }, "\(verdicts)")
        }
    }

    /// The agent stopped after the rotation batch was sealed and before it switched keys: the next
    /// start passes the same pending rotation, and the uplink switches before signing anything else.
    @Test("a rotation sealed in an earlier round: the next uplink switches before sealing")
    func rotationSealedEarlier() async throws {
        let dir = try TempDir()
        defer { dir.remove() }
        let bank = try Bank(dir: dir)
        try await bank.serving { url in
            let gateway = try Gateway(dir: dir, bankURL: url, maxBatchRecords: 10)
            try bank.store.enroll(gateway.enrollment)
            let newKey = SigningKey.generate()
            try gateway.outbox.append(Fixture.summaries(2, from: 1) + [gateway.rotationRecord(to: newKey, n: 3)])
            // The old agent sealed through the rotation with the old key, then stopped.
            let first = try gateway.uplink.sealPending()
            #expect(first.map(\.bseq) == [1])
            #expect(try first.map(Self.kid) == [gateway.key.kid])
            #expect(try gateway.outbox.keyRotationState(newKid: newKey.kid) == .sealed(rseq: 3, bseq: 1))

            try gateway.outbox.append(Fixture.summaries(2, from: 4))
            let sealedCalls = SealedCalls()
            let restarted = gateway.uplink(rotation: Uplink.PendingRotation(newKey: newKey, rseq: 3) { sealedCalls.record($0) })
            let second = try restarted.sealPending()
            #expect(second.map(\.bseq) == [2])
            #expect(try second.map(Self.kid) == [newKey.kid])
            #expect(sealedCalls.all.count == 1)
            #expect(restarted.currentKey.kid == newKey.kid)

            #expect(await restarted.sendPending() == .delivered(count: 2))
            try UplinkDeliveryTests.expectBankHolds(bank, gateway, first + second, records: 5, keys: [gateway.key.publicJWK, newKey.publicJWK])
            #expect(try bank.store.keys(device: gateway.deviceID).map(\.kid) == [gateway.key.kid, newKey.kid])
        }
    }
}
