import Foundation
import Hummingbird
import HummingbirdTesting
import Testing
import VouchBank
import VouchEvidence

/// POST /v1/batches through the real router, on a real SQLite file, with real keys.
@Suite("Bank ingest over HTTP")
struct BankIngestHTTPTests {
    static func nowMs() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

    // MARK: accepting

    @Test("accepts batch 1 then 2 and answers with receipts signed by the bank key")
    func acceptsChain() async throws {
        try await TestBank.with { bank in
            let device = TestDevice()
            try bank.enroll(device)
            let chain = ChainBuilder.chain(device, batches: 2, perBatch: 3)
            let before = Self.nowMs()
            let replies = try await bank.http { client in
                [try await client.post(chain[0]), try await client.post(chain[1])]
            }
            let after = Self.nowMs()

            for (i, (reply, batch)) in zip(replies, chain).enumerated() {
                #expect(reply.status == 200, "\(reply.text)")
                #expect(reply.errorCode == nil)
                #expect(reply.verdict == "accepted")
                #expect(reply.bseq == batch.bseq)
                #expect(reply.body.objectValue?["device"]?.stringValue == device.id)
                let token = try #require(reply.receipt)
                let (receipt, _) = try Receipt.verify(token, bankKey: bank.bankKey.publicJWK)
                #expect(receipt.device == device.id)
                #expect(receipt.bseq == batch.bseq)
                #expect(receipt.batch == batch.signingInputHash)
                #expect(receipt.deviceLogSize == Int64(i + 1))
                #expect(receipt.acceptedWallMs >= before && receipt.acceptedWallMs <= after)
                // Signed by the bank, not by anyone else.
                #expect(throws: EvidenceError.self) { try Receipt.verify(token, bankKey: device.key.publicJWK) }
            }

            let stored = try bank.store.batches(device: device.id)
            #expect(stored.map(\.bseq) == [1, 2])
            #expect(stored.map(\.hash) == chain.map(\.signingInputHash))
            #expect(stored.map(\.token) == chain.map(\.token))
            #expect(stored.map(\.records) == chain.map(\.records))
            #expect(stored.map(\.file) == chain.map(\.file), "the bank can hand back the very file the device sent")
            #expect(try bank.store.recordCount(device: device.id) == 6)
            #expect(try bank.store.events(device: device.id).isEmpty)
        }
    }

    @Test("an identical resend is a duplicate: same receipt, nothing stored twice")
    func identicalResendIsDuplicate() async throws {
        try await TestBank.with { bank in
            let device = TestDevice()
            try bank.enroll(device)
            let chain = ChainBuilder.chain(device, batches: 2, perBatch: 4)
            let (first, second, again, oldAgain) = try await bank.http { client in
                let first = try await client.post(chain[0])
                let second = try await client.post(chain[1])
                let again = try await client.post(chain[1])
                let oldAgain = try await client.post(chain[0])
                return (first, second, again, oldAgain)
            }
            #expect(first.verdict == "accepted")
            #expect(second.status == 200)
            #expect(second.verdict == "accepted")

            #expect(again.status == 200, "\(again.text)")
            #expect(again.errorCode == nil)
            #expect(again.verdict == "duplicate")
            #expect(again.bseq == 2)
            #expect(again.receipt == second.receipt)

            #expect(oldAgain.status == 200)
            #expect(oldAgain.verdict == "duplicate")
            #expect(oldAgain.bseq == 1)
            #expect(oldAgain.receipt == first.receipt)

            let receipt = try Receipt.verify(try #require(again.receipt), bankKey: bank.bankKey.publicJWK).0
            #expect(receipt.bseq == 2 && receipt.deviceLogSize == 2 && receipt.batch == chain[1].signingInputHash)

            #expect(try bank.store.batches(device: device.id).map(\.bseq) == [1, 2])
            #expect(try bank.store.recordCount(device: device.id) == 8)
        }
    }

    // MARK: keys and signatures

    @Test("a batch signed by a key nobody enrolled is refused: 401 E_DEVICE_UNKNOWN")
    func unenrolledKey() async throws {
        try await TestBank.with { bank in
            let enrolled = TestDevice()
            try bank.enroll(enrolled)
            // Same device id, but a key the bank never saw.
            let impostor = TestDevice(id: enrolled.id)
            let batch = ChainBuilder.chain(impostor, batches: 1)[0]
            let reply = try await bank.http { client in try await client.post(batch) }
            #expect(reply.status == 401, "\(reply.text)")
            #expect(reply.errorCode == "E_DEVICE_UNKNOWN")
            #expect(reply.errorMessage?.isEmpty == false)
            #expect(reply.verdict == nil)
            #expect(try bank.store.batches(device: enrolled.id).isEmpty)
            #expect(try bank.store.recordCount(device: enrolled.id) == 0)
        }
    }

    @Test("the enrolled kid with another key's signature is refused: 401 E_JWS_SIGNATURE")
    func enrolledKidForeignSignature() async throws {
        try await TestBank.with { bank in
            let device = TestDevice()
            try bank.enroll(device)
            let other = SigningKey.generate()
            let payload = Fixture.payload(device: device.id, bseq: 1, prev: Digest256.zeroHex, records: Fixture.summaries(1...3))
            let header: JSONValue = ["alg": "ES256", "kid": .string(device.key.kid), "typ": .string(BatchPayload.jwsType)]
            let records = Fixture.summaries(1...3)
            let lines = records.map(\.canonicalBytes)
            let token = try HandToken.sign(header: header, payload: CanonicalJSON.encode(payload.json), signer: other)
            // Control: the same construction signed by the device key is a valid batch.
            let genuine = try HandToken.sign(header: header, payload: CanonicalJSON.encode(payload.json), signer: device.key)
            #expect(throws: Never.self) { try VerifiedBatch.verify(token: genuine, records: lines, key: device.key.publicJWK) }
            #expect(evidenceCode { _ = try VerifiedBatch.verify(token: token, records: lines, key: device.key.publicJWK) } == .badSignature)
            #expect(Fixture.parts(token).prefix(2) == Fixture.parts(SealedBatch.seal(payload, records: records, key: device.key).token).prefix(2))

            let (forged, real) = try await bank.http { client in
                (try await client.post(bytes: BatchFile.encode(token: token, records: lines)), try await client.post(bytes: BatchFile.encode(token: genuine, records: lines)))
            }
            #expect(forged.status == 401, "\(forged.text)")
            #expect(forged.errorCode == "E_JWS_SIGNATURE")
            #expect(forged.verdict == nil)
            #expect(real.status == 200, "\(real.text)")
            #expect(real.verdict == "accepted")
            // Only the genuine batch is stored.
            let stored = try bank.store.batches(device: device.id)
            #expect(stored.map(\.token) == [genuine])
            #expect(try bank.store.recordCount(device: device.id) == 3)
        }
    }

    @Test("a record line changed after signing is refused: 400 E_MERKLE_ROOT; a changed manifest: 401 E_JWS_SIGNATURE; nothing stored")
    func modifiedBatch() async throws {
        try await TestBank.with { bank in
            let device = TestDevice()
            try bank.enroll(device)
            let batch = ChainBuilder.chain(device, batches: 1, perBatch: 3)[0]

            // 1. A record value: the `count` of the first summary (field 10) 60 → 61, still canonical JSON.
            var lines = batch.records
            let original = try #require(try CanonicalJSON.decode(lines[0]).arrayValue)
            #expect(original[10] == .int(60))
            lines[0] = try Fixture.editRecord(lines[0]) { $0[10] = .int(61) }
            let changedRecord = batch.withRecords(lines)

            // 2. The sealing time, a manifest value.
            let changedTime = batch.withToken(
                try HandToken.editingManifest(of: batch.token) { manifest in
                    guard case .object(var t)? = manifest["t"] else { return }
                    t["wall"] = .int((t["wall"]?.intValue ?? 0) - 3_600_000)
                    manifest["t"] = .object(t)
                })
            #expect(changedRecord.file != batch.file && changedTime.file != batch.file)
            #expect(Fixture.parts(changedTime.token)[2] == Fixture.parts(batch.token)[2])

            let (record, time) = try await bank.http { client in (try await client.post(changedRecord), try await client.post(changedTime)) }
            #expect(record.status == 400, "\(record.text)")
            #expect(record.errorCode == "E_MERKLE_ROOT")
            #expect(record.verdict == nil)
            #expect(time.status == 401, "\(time.text)")
            #expect(time.errorCode == "E_JWS_SIGNATURE")
            #expect(time.verdict == nil)
            #expect(try bank.store.batches(device: device.id).isEmpty)
            #expect(try bank.store.recordCount(device: device.id) == 0)

            // The untouched batch is still accepted as batch 1: the refusals left no trace in the chain.
            let untouched = try await bank.http { client in try await client.post(batch) }
            #expect(untouched.status == 200)
            #expect(untouched.verdict == "accepted")
            #expect(try bank.store.batches(device: device.id).map(\.hash) == [batch.signingInputHash])
        }
    }

    @Test("a dropped, added or reordered record line is refused: E_BATCH_MALFORMED or E_MERKLE_ROOT")
    func recordLinesMustMatchTheManifest() async throws {
        try await TestBank.with { bank in
            let device = TestDevice()
            try bank.enroll(device)
            let batch = ChainBuilder.chain(device, batches: 1, perBatch: 3)[0]
            let dropped = batch.withRecords(Array(batch.records.dropLast()))
            let added = batch.withRecords(batch.records + [Fixture.summary(rseq: 4).canonicalBytes])
            let swapped = batch.withRecords([batch.records[1], batch.records[0], batch.records[2]])
            let replies = try await bank.http { client in
                [try await client.post(dropped), try await client.post(added), try await client.post(swapped)]
            }
            #expect(replies.map(\.status) == [400, 400, 400], "\(replies.map(\.text))")
            #expect(replies.map(\.errorCode) == ["E_BATCH_MALFORMED", "E_BATCH_MALFORMED", "E_MERKLE_ROOT"])
            #expect(replies[0].errorMessage?.contains("promises 3 records, the file holds 2") == true, "\(replies[0].text)")
            #expect(try bank.store.batches(device: device.id).isEmpty)
            #expect(try bank.store.recordCount(device: device.id) == 0)
        }
    }

    @Test("a payload naming another device than the key's is refused: 401 E_DEVICE_MISMATCH")
    func deviceMismatch() async throws {
        try await TestBank.with { bank in
            let device = TestDevice()
            let neighbour = TestDevice()
            try bank.enroll(device)
            try bank.enroll(neighbour)
            var builder = ChainBuilder(device)
            builder.payloadDevice = neighbour.id  // signed with device's key, claims to be the neighbour
            let batch = builder.next(count: 2)
            let reply = try await bank.http { client in try await client.post(batch) }
            #expect(reply.status == 401, "\(reply.text)")
            #expect(reply.errorCode == "E_DEVICE_MISMATCH")
            #expect(reply.verdict == nil)
            #expect(try bank.store.batches(device: device.id).isEmpty)
            #expect(try bank.store.batches(device: neighbour.id).isEmpty)
            #expect(try bank.store.recordCount(device: device.id) == 0)
            #expect(try bank.store.recordCount(device: neighbour.id) == 0)
        }
    }

    // MARK: the chain

    @Test("a bseq that skips ahead is refused: 409 E_CHAIN_GAP")
    func chainGap() async throws {
        try await TestBank.with { bank in
            let device = TestDevice()
            try bank.enroll(device)
            let chain = ChainBuilder.chain(device, batches: 3, perBatch: 2)
            let (one, three) = try await bank.http { client in (try await client.post(chain[0]), try await client.post(chain[2])) }
            #expect(one.status == 200 && one.verdict == "accepted")
            #expect(three.status == 409, "\(three.text)")
            #expect(three.errorCode == "E_CHAIN_GAP")
            #expect(three.verdict == nil)
            #expect(try bank.store.batches(device: device.id).map(\.bseq) == [1])
            #expect(try bank.store.recordCount(device: device.id) == 2)

            // Once 2 arrives, 3 is accepted.
            let rest = try await bank.http { client in [try await client.post(chain[1]), try await client.post(chain[2])] }
            #expect(rest.map(\.status) == [200, 200])
            #expect(rest.map(\.verdict) == ["accepted", "accepted"])
            #expect(try bank.store.batches(device: device.id).map(\.bseq) == [1, 2, 3])
            #expect(try bank.store.recordCount(device: device.id) == 6)
        }
    }

    @Test("a batch whose prev is not the head's hash is refused: 409 E_CHAIN_PREV")
    func chainPrev() async throws {
        try await TestBank.with { bank in
            let device = TestDevice()
            try bank.enroll(device)
            let one = ChainBuilder.chain(device, batches: 1, perBatch: 2)[0]
            let wrongPrev = Digest256.sha256Hex(Array("a batch that never existed".utf8))
            let two = Fixture.seal(device: device.id, bseq: 2, prev: wrongPrev, records: Fixture.summaries(3...4), key: device.key)
            let (r1, r2) = try await bank.http { client in (try await client.post(one), try await client.post(two)) }
            #expect(r1.status == 200 && r1.verdict == "accepted")
            #expect(r2.status == 409, "\(r2.text)")
            #expect(r2.errorCode == "E_CHAIN_PREV")
            #expect(r2.verdict == nil)
            #expect(try bank.store.batches(device: device.id).map(\.bseq) == [1])
            #expect(try bank.store.recordCount(device: device.id) == 2)
        }
    }

    @Test("a batch 1 with prev other than zeros is refused: 409 E_CHAIN_PREV")
    func firstBatchPrevMustBeZero() async throws {
        try await TestBank.with { bank in
            let device = TestDevice()
            try bank.enroll(device)
            let one = Fixture.seal(device: device.id, bseq: 1, prev: String(repeating: "1", count: 64), records: Fixture.summaries(1...2), key: device.key)
            let reply = try await bank.http { client in try await client.post(one) }
            #expect(reply.status == 409, "\(reply.text)")
            #expect(reply.errorCode == "E_CHAIN_PREV")
            #expect(try bank.store.batches(device: device.id).isEmpty)
            #expect(try bank.store.recordCount(device: device.id) == 0)
        }
    }

    @Test("a different batch 1 after batch 1 was accepted is refused: 409 E_CHAIN_FORK")
    func chainFork() async throws {
        try await TestBank.with { bank in
            let device = TestDevice()
            try bank.enroll(device)
            let original = ChainBuilder.chain(device, batches: 1, perBatch: 2)[0]
            let rewritten = Fixture.seal(device: device.id, bseq: 1, prev: Digest256.zeroHex, records: [Fixture.summary(rseq: 1, last: 0)], key: device.key)
            #expect(rewritten.signingInputHash != original.signingInputHash)
            let (r1, fork) = try await bank.http { client in (try await client.post(original), try await client.post(rewritten)) }
            #expect(r1.status == 200 && r1.verdict == "accepted")
            #expect(fork.status == 409, "\(fork.text)")
            #expect(fork.errorCode == "E_CHAIN_FORK")
            #expect(fork.verdict == nil)
            let stored = try bank.store.batches(device: device.id)
            #expect(stored.map(\.hash) == [original.signingInputHash])
            #expect(stored.map(\.token) == [original.token])
            #expect(try bank.store.recordCount(device: device.id) == 2)
        }
    }

    /// SQLiteBankStore.accept writes an incident row for a fork ("the device signed two histories")
    /// before refusing the batch; the refusal must not take the incident with it.
    @Test("a fork is refused and the incident it writes is kept")
    func forkIncidentIsKept() async throws {
        try await TestBank.with { bank in
            let device = TestDevice()
            try bank.enroll(device)
            let original = ChainBuilder.chain(device, batches: 1, perBatch: 2)[0]
            let rewritten = Fixture.seal(device: device.id, bseq: 1, prev: Digest256.zeroHex, records: [Fixture.summary(rseq: 1, last: 0)], key: device.key)
            let (r1, fork) = try await bank.http { client in (try await client.post(original), try await client.post(rewritten)) }
            #expect(r1.verdict == "accepted")
            #expect(fork.status == 409)
            #expect(fork.errorCode == "E_CHAIN_FORK")
            #expect(try bank.store.batches(device: device.id).map(\.hash) == [original.signingInputHash])
            let incidents = try BankDatabase.incidents(bank.path)
            #expect(incidents.map(\.kind) == ["fork"])
            #expect(incidents.first?.device == device.id)
            #expect(incidents.first?.bseq == 1)
            #expect(incidents.first?.detail == rewritten.signingInputHash)
            // Both signed histories are kept: the accepted batch and, in the incident, the fork, which
            // verifies with the device's key on its own.
            let kept = try bank.store.incidents(device: device.id, nowMs: Fixture.t0)
            #expect(kept.map(\.code) == ["E_CHAIN_FORK"])
            let forked = try #require(kept.first?.evidence)
            #expect(forked == rewritten.fileText)
            let verified = try VerifiedBatch.verify(file: Array(forked.utf8), key: device.key.publicJWK)
            #expect(verified.payload.bseq == 1)
            #expect(verified.signingInputHash == rewritten.signingInputHash)
            #expect(try bank.store.batches(device: device.id).first?.hash != verified.signingInputHash)
        }
    }

    // MARK: records and events

    @Test("records whose rseq does not increase are refused: 409 E_RSEQ_ORDER")
    func rseqOrder() async throws {
        try await TestBank.with { bank in
            let device = TestDevice()
            try bank.enroll(device)
            let one = ChainBuilder.chain(device, batches: 1, perBatch: 2)[0]  // rseq 1, 2
            func two(_ rseqs: [Int64]) -> SealedBatch {
                Fixture.seal(device: device.id, bseq: 2, prev: one.signingInputHash, records: rseqs.map { Fixture.summary(rseq: $0) }, key: device.key)
            }
            let replayed = two([2, 3])  // rseq 2 is already stored
            let backwards = two([3, 5, 4])  // decreases inside the batch
            let repeated = two([3, 3])
            let good = two([3, 4])
            let replies = try await bank.http { client in
                [try await client.post(one), try await client.post(replayed), try await client.post(backwards), try await client.post(repeated)]
            }
            #expect(replies[0].verdict == "accepted")
            for reply in replies.dropFirst() {
                #expect(reply.status == 409, "\(reply.text)")
                #expect(reply.errorCode == "E_RSEQ_ORDER")
                #expect(reply.verdict == nil)
            }
            #expect(try bank.store.batches(device: device.id).map(\.bseq) == [1])
            #expect(try bank.store.recordCount(device: device.id) == 2)

            let fine = try await bank.http { client in try await client.post(good) }
            #expect(fine.status == 200 && fine.verdict == "accepted")
            #expect(try bank.store.batches(device: device.id).map(\.bseq) == [1, 2])
            #expect(try bank.store.recordCount(device: device.id) == 4)
        }
    }

    @Test("a gap in rseq is accepted and reported as missing records")
    func rseqGapIsRecorded() async throws {
        try await TestBank.with { bank in
            let device = TestDevice()
            try bank.enroll(device)
            var builder = ChainBuilder(device)
            let one = builder.next(records: Fixture.summaries(1...2))
            let two = builder.next(records: Fixture.summaries(5...6))
            let three = builder.next(records: Fixture.summaries(7...7))

            let r1 = try bank.ingest.ingest(one, nowMs: Fixture.t0)
            #expect(r1.verdict == .accepted)
            #expect(r1.missingRecords == nil)
            let r2 = try bank.ingest.ingest(two, nowMs: Fixture.t0 + 1)
            #expect(r2.verdict == .accepted)
            #expect(r2.bseq == 2)
            #expect(r2.missingRecords == 3...4)
            let r3 = try bank.ingest.ingest(three, nowMs: Fixture.t0 + 2)
            #expect(r3.verdict == .accepted)
            #expect(r3.missingRecords == nil)
            // A resend of batch 2 does not report the gap a second time.
            let again = try bank.ingest.ingest(two, nowMs: Fixture.t0 + 3)
            #expect(again.verdict == .duplicate)
            #expect(again.receipt == r2.receipt)
            #expect(again.missingRecords == nil)

            #expect(try bank.store.batches(device: device.id).map(\.bseq) == [1, 2, 3])
            #expect(try bank.store.recordCount(device: device.id) == 5)
            #expect(try BankDatabase.incidents(bank.path).map(\.kind) == ["record-gap"])
            let incidents = try bank.store.incidents(device: device.id, nowMs: Fixture.t0 + 3)
            #expect(incidents.map(\.code) == ["E_RSEQ_GAP"])
            #expect(incidents.map(\.bseq) == [2])
        }
    }

    @Test("an event started in one batch and ended in a later one is one ended event")
    func eventStartThenEnd() async throws {
        try await TestBank.with { bank in
            let device = TestDevice()
            try bank.enroll(device)
            var builder = ChainBuilder(device)
            let one = builder.next(records: [Fixture.summary(rseq: 1), Fixture.eventStart(rseq: 2)])
            let two = builder.next(records: [Fixture.summary(rseq: 3), Fixture.eventEnd(rseq: 4, durationMs: 95_000), Fixture.summary(rseq: 5)])

            let r1 = try await bank.http { client in try await client.post(one) }
            #expect(r1.status == 200 && r1.verdict == "accepted")
            let ongoing = try bank.store.events(device: device.id)
            #expect(ongoing.count == 1)
            #expect(ongoing.first?.status == "ongoing")
            #expect(ongoing.first?.endWallMs == nil)
            #expect(ongoing.first?.startWallMs == Fixture.eventStartWall)

            let r2 = try await bank.http { client in try await client.post(two) }
            #expect(r2.status == 200 && r2.verdict == "accepted", "\(r2.text)")
            let events = try bank.store.events(device: device.id)
            #expect(events.count == 1)
            let event = try #require(events.first)
            #expect(event.device == device.id)
            #expect(event.eventId == "1-120000-stoppage-press.current")
            #expect(event.rule == "stoppage")
            #expect(event.channel == "press.current")
            #expect(event.status == "ended")
            #expect(event.startWallMs == Fixture.eventStartWall)
            #expect(event.durationMs == 95_000)
            #expect(event.endWallMs == Fixture.eventStartWall + 95_000)
            #expect(event.explanation == "press stopped for 95 s")
            #expect(try bank.store.events(device: nil) == events)
            #expect(try bank.store.recordCount(device: device.id) == 5)
            #expect(try bank.store.batches(device: device.id).map(\.bseq) == [1, 2])
        }
    }

    // MARK: the request itself

    @Test("Content-Type other than application/vouch-batch is refused: 415 E_CONTENT_TYPE")
    func contentType() async throws {
        try await TestBank.with { bank in
            let device = TestDevice()
            try bank.enroll(device)
            let chain = ChainBuilder.chain(device, batches: 1)
            let (json, jose, none, withParameter) = try await bank.http { client in
                (
                    try await client.post(chain[0], contentType: "application/json"),
                    // The old upload type (a bare JWS) is not a batch file.
                    try await client.post(chain[0], contentType: "application/jose"),
                    try await client.post(chain[0], contentType: nil),
                    try await client.post(chain[0], contentType: "Application/Vouch-Batch; charset=utf-8")
                )
            }
            for reply in [json, jose, none] {
                #expect(reply.status == 415, "\(reply.text)")
                #expect(reply.errorCode == "E_CONTENT_TYPE")
                #expect(reply.verdict == nil)
            }
            // Media type parameters and case do not matter (RFC 9110 §8.3.1).
            #expect(withParameter.status == 200, "\(withParameter.text)")
            #expect(withParameter.verdict == "accepted")
            #expect(try bank.store.batches(device: device.id).map(\.bseq) == [1])
        }
    }

    @Test("a body larger than maxBodyBytes is refused: 413 E_TOO_LARGE")
    func tooLarge() async throws {
        try await TestBank.with(settings: BankServerSettings(maxBodyBytes: 1000)) { bank in
            let device = TestDevice()
            try bank.enroll(device)
            var builder = ChainBuilder(device)
            let big = builder.next(count: 10)
            try #require(big.file.count > 1000)
            var small = ChainBuilder(device)
            let fits = small.next(count: 1)
            try #require(fits.file.count <= 1000)

            let (tooBig, ok) = try await bank.http { client in (try await client.post(big), try await client.post(fits)) }
            #expect(tooBig.status == 413, "\(tooBig.text)")
            #expect(tooBig.errorCode == "E_TOO_LARGE")
            #expect(tooBig.verdict == nil)
            #expect(ok.status == 200, "\(ok.text)")
            #expect(try bank.store.batches(device: device.id).map(\.token) == [fits.token])
            #expect(try bank.store.recordCount(device: device.id) == 1)
        }
    }

    @Test("a token line that is not a JWS is refused: 400 E_JWS_MALFORMED")
    func garbage() async throws {
        try await TestBank.with { bank in
            let device = TestDevice()
            try bank.enroll(device)
            let replies = try await bank.http { client in
                [try await client.post(text: "hello"), try await client.post(text: "a.b.c.d"), try await client.post(text: "a.b\n")]
            }
            for reply in replies {
                #expect(reply.status == 400, "\(reply.text)")
                #expect(reply.errorCode == "E_JWS_MALFORMED")
                #expect(reply.errorMessage?.isEmpty == false)
            }
            #expect(try bank.store.batches(device: device.id).isEmpty)
            #expect(try bank.store.devices().map(\.id) == [device.id])
        }
    }

    @Test("a body that is not a batch file is refused: 400 E_BATCH_MALFORMED")
    func notABatchFile() async throws {
        try await TestBank.with { bank in
            let device = TestDevice()
            try bank.enroll(device)
            let chain = ChainBuilder.chain(device, batches: 2, perBatch: 2)
            let one = chain[0].fileText
            let bodies: [(String, String)] = [
                ("empty", ""),
                ("not base64url", "!!.??.**"),
                ("CRLF line ends", one.replacingOccurrences(of: "\n", with: "\r\n")),
                ("an empty line", one.replacingOccurrences(of: "\n", with: "\n\n")),
                ("records before the token", String(decoding: chain[0].records[0], as: UTF8.self) + "\n" + one),
                ("two batches in one upload", one + chain[1].fileText),
            ]
            let replies = try await bank.http { client in
                var out: [BankReply] = []
                for (_, body) in bodies { out.append(try await client.post(text: body)) }
                return out
            }
            for ((what, _), reply) in zip(bodies, replies) {
                #expect(reply.status == 400, "\(what): \(reply.text)")
                #expect(reply.errorCode == "E_BATCH_MALFORMED", "\(what): \(reply.text)")
                #expect(reply.verdict == nil)
            }
            #expect(try bank.store.batches(device: device.id).isEmpty)
            // The well-formed file is accepted; its last LF is optional.
            let fine = try await bank.http { client in try await client.post(text: String(one.dropLast())) }
            #expect(fine.status == 200, "\(fine.text)")
            #expect(try bank.store.batches(device: device.id).map(\.hash) == [chain[0].signingInputHash])
        }
    }

    @Test("alg none is refused: 400 E_JWS_ALG")
    func algNone() async throws {
        try await TestBank.with { bank in
            let device = TestDevice()
            try bank.enroll(device)
            let records = Fixture.summaries(1...2)
            let lines = records.map(\.canonicalBytes)
            let payload = Fixture.payload(device: device.id, bseq: 1, prev: Digest256.zeroHex, records: records)
            let header: JSONValue = ["alg": "none", "kid": .string(device.key.kid), "typ": .string(BatchPayload.jwsType)]
            let unsigned = Base64URL.encode(CanonicalJSON.encode(header)) + "." + Base64URL.encode(CanonicalJSON.encode(payload.json)) + "."
            // alg none with the real signature attached: still not ES256.
            let sealed = SealedBatch.seal(payload, records: records, key: device.key)
            let withSignature = unsigned + Fixture.parts(sealed.token)[2]
            let hs256Header: JSONValue = ["alg": "HS256", "kid": .string(device.key.kid), "typ": .string(BatchPayload.jwsType)]
            let hs256 = Base64URL.encode(CanonicalJSON.encode(hs256Header)) + "." + Fixture.parts(sealed.token)[1] + "." + Fixture.parts(sealed.token)[2]
            let replies = try await bank.http { client in
                [
                    try await client.post(bytes: BatchFile.encode(token: unsigned, records: lines)),
                    try await client.post(bytes: BatchFile.encode(token: withSignature, records: lines)),
                    try await client.post(bytes: BatchFile.encode(token: hs256, records: lines)),
                ]
            }
            for reply in replies {
                #expect(reply.status == 400, "\(reply.text)")
                #expect(reply.errorCode == "E_JWS_ALG")
                #expect(reply.verdict == nil)
            }
            #expect(try bank.store.batches(device: device.id).isEmpty)
            #expect(try bank.store.recordCount(device: device.id) == 0)
        }
    }

    @Test("GET /healthz answers 200 with the number of enrolled devices (the database answers)")
    func healthz() async throws {
        try await TestBank.with { bank in
            try bank.enroll(TestDevice())
            let reply = try await bank.http { client in try await client.get("/healthz") }
            #expect(reply.status == 200)
            #expect(reply.body == ["status": "ok", "devices": 1])
        }
    }
}
