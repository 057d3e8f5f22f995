import Foundation
import Testing
import VouchEvidence
@testable import VouchBank

/// One test per way of tampering with a device's evidence, each pinned to the stable code the bank
/// (real SQLiteBankStore on a temporary file, through BankIngest, some through the HTTP router) and,
/// where it applies, `vouch-bank verify` answer with.
@Suite("Tamper matrix")
struct TamperMatrixTests {
    /// Ingests `batches` in order at `nowMs`, requiring each to be accepted.
    static func accept(_ bank: TestBank, _ batches: [SealedBatch], nowMs: Int64 = Fixture.t0) throws {
        for batch in batches {
            let result = try bank.ingest.ingest(batch, nowMs: nowMs)
            try #require(result.verdict == .accepted, "batch \(batch.bseq)")
        }
    }

    // MARK: the chain

    @Test("delete a batch: E_CHAIN_GAP at the bank and offline")
    func deleteABatch() async throws {
        try await TestBank.with { bank in
            let device = TestDevice()
            try bank.enroll(device)
            let chain = ChainBuilder.chain(device, batches: 4)
            try Self.accept(bank, Array(chain[..<2]))
            let refusal = bank.refusal(chain[3])  // batch 3 was deleted from the outbox
            #expect(refusal?.code == BankError.chainGap)
            #expect(refusal?.code == "E_CHAIN_GAP")
            #expect(refusal?.status == 409)
            #expect(refusal?.message.contains("batches 3…3 are missing") == true, "\(String(describing: refusal))")
            #expect(try bank.store.batches(device: device.id).map(\.bseq) == [1, 2])
            #expect(try bank.store.recordCount(device: device.id) == 6)

            let offline = try ExportStream.verify([chain[0], chain[1], chain[3]], device: device.enrollment())
            #expect(offline.map(\.problem?.code) == [nil, nil, "E_CHAIN_GAP"])
            #expect(offline[2].problem == refusal, "the receiver and `vouch-bank verify` use the same words")
        }
    }

    @Test("delete a batch, over HTTP: 409 E_CHAIN_GAP")
    func deleteABatchOverHTTP() async throws {
        try await TestBank.with { bank in
            let device = TestDevice()
            try bank.enroll(device)
            let chain = ChainBuilder.chain(device, batches: 3, perBatch: 1)
            let replies = try await bank.http { client in [try await client.post(chain[0]), try await client.post(chain[2])] }
            #expect(replies.map(\.status) == [200, 409])
            #expect(replies.map(\.errorCode) == [nil, "E_CHAIN_GAP"])
            #expect(try bank.store.batches(device: device.id).map(\.bseq) == [1])
        }
    }

    @Test("reorder two: E_CHAIN_GAP at the bank, then the in-order resend is accepted; E_CHAIN_REORDER offline")
    func reorderTwo() async throws {
        try await TestBank.with { bank in
            let device = TestDevice()
            try bank.enroll(device)
            let chain = ChainBuilder.chain(device, batches: 3)
            try Self.accept(bank, [chain[0]])
            let early = bank.refusal(chain[2])
            #expect(early?.code == "E_CHAIN_GAP")
            #expect(early?.status == 409)
            #expect(try bank.store.batches(device: device.id).map(\.bseq) == [1])
            // The device resends in order: both go through, nothing was lost.
            #expect(try bank.ingest.ingest(chain[1], nowMs: Fixture.t0).verdict == .accepted)
            #expect(try bank.ingest.ingest(chain[2], nowMs: Fixture.t0).verdict == .accepted)
            #expect(try bank.store.batches(device: device.id).map(\.hash) == chain.map(\.signingInputHash))
            #expect(try bank.store.incidents(device: device.id, nowMs: Fixture.t0).isEmpty)

            let offline = try ExportStream.verify([chain[0], chain[2], chain[1]], device: device.enrollment())
            // The early batch is reported, then verified once its predecessor is in: no cascade of gaps.
            #expect(offline.map(\.problem?.code) == [nil, "E_CHAIN_REORDER", nil, nil])
            #expect(offline.map(\.bseq) == [1, 3, 2, 3])
            #expect(offline[3].note?.contains("out of order") == true)
            #expect(offline[1].problem?.message.contains("comes before batch 2") == true)
        }
    }

    @Test("reorder the first two batches of an export: E_CHAIN_REORDER offline")
    func reorderTheFirstTwo() throws {
        let device = TestDevice()
        let chain = ChainBuilder.chain(device, batches: 3)
        let offline = try ExportStream.verify([chain[1], chain[0], chain[2]], device: device.enrollment())
        // Batch 2 comes before batch 1, which the same stream holds: that is a reorder, and batch 1
        // is not a second history. Batch 2 is verified after batch 1.
        #expect(offline.map(\.bseq) == [2, 1, 2, 3])
        #expect(offline.map(\.problem?.code) == ["E_CHAIN_REORDER", nil, nil, nil])
        #expect(!offline.contains { $0.problem?.code == "E_CHAIN_FORK" })
    }

    @Test("truncate the tail, offline: E_CHAIN_TRUNCATED against the last bseq the bank receipted")
    func truncateTheTailOffline() throws {
        let device = TestDevice()
        let chain = ChainBuilder.chain(device, batches: 5, perBatch: 2)
        let cut = try ExportStream.verify(Array(chain[..<3]), device: device.enrollment(), name: "acme.batches", expectedLast: 5)
        #expect(cut.map(\.problem?.code) == [nil, nil, nil, "E_CHAIN_TRUNCATED"])
        #expect(cut[3].location == "acme.batches:end")
        #expect(cut[3].problem?.message.contains("end at bseq 3") == true)
        #expect(cut[3].problem?.message.contains("4…5") == true)
        // An empty export is the whole tail cut off.
        var verifier = OfflineVerifier(device: device.enrollment())
        let nothing = verifier.verify([(name: "empty.batches", entries: [])], expectedLast: 1)
        #expect(nothing.map(\.problem?.code) == ["E_CHAIN_TRUNCATED"])
    }

    @Test("truncate the tail, at the bank: a device that declared a heartbeat and went quiet is silent: E_CHAIN_SILENT")
    func truncateTheTailIsSilence() async throws {
        try await TestBank.with { bank in
            let device = TestDevice()
            let mute = TestDevice()  // never declared a heartbeat: no promise to break
            try bank.enroll(device)
            try bank.enroll(mute)
            var b = ChainBuilder(device)
            let one = b.next(records: [Fixture.heartbeat(rseq: 1, intervalMs: 60_000), Fixture.summary(rseq: 2)])
            let two = b.next(records: Fixture.summaries(3...4))
            let three = b.next(records: Fixture.summaries(5...5))
            try Self.accept(bank, [one], nowMs: Fixture.t0)
            try Self.accept(bank, [two], nowMs: Fixture.t0 + 60_000)
            try Self.accept(bank, ChainBuilder.chain(mute, batches: 1), nowMs: Fixture.t0)
            let last = Fixture.t0 + 60_000

            // Up to twice the declared interval after the last batch, nothing to say.
            #expect(try bank.store.silentDevices(nowMs: last + 120_000).isEmpty)
            #expect(try bank.store.incidents(device: device.id, nowMs: last + 120_000).isEmpty)

            // One millisecond later the device is silent (batch 3 onwards never came).
            let silent = try bank.store.silentDevices(nowMs: last + 120_001)
            #expect(silent == [Silence(device: device.id, lastBatchAtMs: last, lastBseq: 2, heartbeatMs: 60_000, silentForMs: 120_001)])
            let incidents = try bank.store.incidents(device: device.id, nowMs: last + 3_600_000)
            #expect(incidents.map(\.kind) == ["silence"])
            #expect(incidents.map(\.code) == [BankError.chainSilent])
            #expect(incidents.map(\.code) == ["E_CHAIN_SILENT"])
            #expect(incidents.first?.bseq == 2)
            #expect(incidents.first?.atMs == last + 3_600_000)
            #expect(try bank.store.incidents(device: nil, nowMs: last + 3_600_000).map(\.device) == [device.id])
            #expect(try bank.store.incidents(device: mute.id, nowMs: last + 3_600_000).isEmpty)
            // Silence is computed, not stored.
            #expect(try BankDatabase.incidents(bank.path).isEmpty)

            // The heartbeat promise outlives batches without a heartbeat record; a new batch ends the silence.
            try Self.accept(bank, [three], nowMs: last + 3_600_000)
            #expect(try bank.store.silentDevices(nowMs: last + 3_600_000 + 120_000).isEmpty)
            #expect(try bank.store.silentDevices(nowMs: last + 3_600_000 + 120_001).map(\.lastBseq) == [3])
        }
    }

    @Test("truncate the tail, at the bank: a device rolled back to an older outbox reseals an accepted bseq: E_CHAIN_FORK, both kept")
    func rolledBackDeviceForks() async throws {
        try await TestBank.with { bank in
            let device = TestDevice()
            try bank.enroll(device)
            var b = ChainBuilder(device)
            b.next()
            b.next()
            var rolledBack = b  // the outbox as it was after batch 2
            let three = b.next()
            try Self.accept(bank, b.batches)
            // The restored outbox never sealed batch 3: it seals other records as batch 3.
            let resealed = rolledBack.next(records: [Fixture.summary(rseq: 7, last: 0)])
            #expect(resealed.bseq == 3)
            #expect(try Fixture.decodedPayload(resealed.token).objectValue?["prev"]?.stringValue == b.batches[1].signingInputHash)
            let refusal = bank.refusal(resealed, nowMs: Fixture.t0 + 1)
            #expect(refusal?.code == "E_CHAIN_FORK")
            #expect(refusal?.status == 409)
            // Both histories are kept: the accepted batch 3 and the resealed one as the incident's evidence.
            #expect(try bank.store.batches(device: device.id).map(\.hash) == b.batches.map(\.signingInputHash))
            let incidents = try bank.store.incidents(device: device.id, nowMs: Fixture.t0 + 1)
            #expect(incidents.map(\.code) == ["E_CHAIN_FORK"])
            #expect(incidents.first?.bseq == 3)
            #expect(incidents.first?.evidence == resealed.fileText)
            #expect(incidents.first?.detail == resealed.signingInputHash)
            // The rolled-back history does not continue either: its batch 4 links to the resealed 3.
            let four = rolledBack.next()
            #expect(bank.refusal(four)?.code == "E_CHAIN_PREV")
            #expect(try bank.store.batches(device: device.id).last?.hash == three.signingInputHash)
        }
    }

    @Test("fork: another batch 2 after batch 2 was accepted: E_CHAIN_FORK, evidence kept")
    func fork() async throws {
        try await TestBank.with { bank in
            let device = TestDevice()
            try bank.enroll(device)
            var honest = ChainBuilder(device)
            honest.next()
            honest.next()
            var other = ChainBuilder(device)
            other.next()
            let forked = other.next(count: 5)
            try Self.accept(bank, honest.batches)
            let refusal = bank.refusal(forked)
            #expect(refusal?.code == "E_CHAIN_FORK")
            #expect(refusal?.status == 409)
            #expect(try bank.store.batches(device: device.id).map(\.hash) == honest.batches.map(\.signingInputHash))
            let kept = try #require(try bank.store.incidents(device: device.id, nowMs: Fixture.t0).first)
            #expect(kept.kind == "fork" && kept.code == "E_CHAIN_FORK" && kept.bseq == 2)
            let evidence = try VerifiedBatch.verify(file: Array(try #require(kept.evidence).utf8), key: device.key.publicJWK)
            #expect(evidence.signingInputHash == forked.signingInputHash)
            #expect(evidence.recordBytes == forked.records)
            // Resending the fork again is refused again; the accepted history does not move.
            #expect(bank.refusal(forked)?.code == "E_CHAIN_FORK")
            #expect(try bank.store.batches(device: device.id).count == 2)
        }
    }

    @Test("stale prev: batch 4 linking to batch 2: E_CHAIN_PREV")
    func stalePrev() async throws {
        try await TestBank.with { bank in
            let device = TestDevice()
            try bank.enroll(device)
            let chain = ChainBuilder.chain(device, batches: 3, perBatch: 2)
            try Self.accept(bank, chain)
            let stale = Fixture.seal(device: device.id, bseq: 4, prev: chain[1].signingInputHash, records: Fixture.summaries(7...8), key: device.key)
            let refusal = bank.refusal(stale)
            #expect(refusal?.code == "E_CHAIN_PREV")
            #expect(refusal?.status == 409)
            #expect(refusal?.message.contains("does not link to batch 3") == true)
            #expect(try bank.store.batches(device: device.id).map(\.bseq) == [1, 2, 3])

            let offline = try ExportStream.verify(chain + [stale], device: device.enrollment())
            #expect(offline.map(\.problem?.code) == [nil, nil, nil, "E_CHAIN_PREV"])
        }
    }

    // MARK: the batch file

    @Test("edit one record: E_MERKLE_ROOT")
    func editOneRecord() async throws {
        try await TestBank.with { bank in
            let device = TestDevice()
            try bank.enroll(device)
            var b = ChainBuilder(device)
            b.next(records: [Fixture.summary(rseq: 1), Fixture.eventStart(rseq: 2), Fixture.summary(rseq: 3)])
            let batch = b.batches[0]
            // Shorten the stoppage's evidence window by one sample; the line stays canonical JSON.
            var lines = batch.records
            lines[1] = try Fixture.editRecord(lines[1]) { items in
                if case .array(let window) = items[21] { items[21] = .array(Array(window.dropLast())) }
            }
            try #require(lines[1] != batch.records[1])
            let refusal = bank.refusal(batch.withRecords(lines))
            #expect(refusal?.code == "E_MERKLE_ROOT")
            #expect(refusal?.status == 400)
            #expect(try bank.store.batches(device: device.id).isEmpty)
            #expect(try bank.store.events(device: device.id).isEmpty)
            #expect(bank.refusal(batch) == nil, "the untouched batch is still batch 1")
        }
    }

    @Test("edit the manifest: E_JWS_SIGNATURE", arguments: ["n", "root", "prev", "dev", "t", "bseq", "rcpt"])
    func editTheManifest(_ member: String) async throws {
        try await TestBank.with { bank in
            let device = TestDevice()
            try bank.enroll(device)
            let chain = ChainBuilder.chain(device, batches: 2)
            try Self.accept(bank, [chain[0]])
            let edited = try HandToken.editingManifest(of: chain[1].token) { m in
                switch member {
                case "n": m["n"] = 2
                case "root": m["root"] = .string(String(repeating: "a", count: 64))
                case "prev": m["prev"] = .string(Digest256.zeroHex)
                case "dev": m["dev"] = "someone-else"
                case "t": m["t"] = ["mono": 1, "tq": "unsync", "wall": 1]
                case "bseq": m["bseq"] = 3
                default: m["rcpt"] = .string(String(repeating: "b", count: 64))
                }
            }
            #expect(Fixture.parts(edited)[1] != Fixture.parts(chain[1].token)[1])
            let refusal = bank.refusal(chain[1].withToken(edited))
            #expect(refusal?.code == "E_JWS_SIGNATURE", "\(member): \(String(describing: refusal))")
            #expect(refusal?.status == 401)
            #expect(try bank.store.batches(device: device.id).map(\.bseq) == [1])
        }
    }

    @Test("wrong record count: a dropped or added line, or a manifest promising another n: E_BATCH_MALFORMED")
    func wrongRecordCount() async throws {
        try await TestBank.with { bank in
            let device = TestDevice()
            try bank.enroll(device)
            let batch = ChainBuilder.chain(device, batches: 1, perBatch: 3)[0]
            let dropped = batch.withRecords(Array(batch.records.dropFirst()))
            let added = batch.withRecords(batch.records + [batch.records[2]])
            // Signed honestly, but the manifest counts 3 records and the file carries 2.
            let promised = SealedBatch.seal(
                Fixture.payload(device: device.id, bseq: 1, prev: Digest256.zeroHex, records: Fixture.summaries(1...3)), records: Fixture.summaries(1...2),
                key: device.key)
            for (what, candidate) in [("dropped", dropped), ("added", added), ("promised", promised)] {
                let refusal = bank.refusal(candidate)
                #expect(refusal?.code == "E_BATCH_MALFORMED", "\(what): \(String(describing: refusal))")
                #expect(refusal?.status == 400)
            }
            #expect(try bank.store.batches(device: device.id).isEmpty)
            #expect(try bank.store.recordCount(device: device.id) == 0)
            #expect(try ExportStream.verify([dropped], device: device.enrollment()).map(\.problem?.code) == ["E_BATCH_MALFORMED"])
        }
    }

    @Test("non-canonical record line: E_RECORD_NOT_CANONICAL", arguments: ["space", "key order", "escape"])
    func nonCanonicalRecord(_ variant: String) async throws {
        try await TestBank.with { bank in
            let device = TestDevice()
            try bank.enroll(device)
            var b = ChainBuilder(device)
            let batch = b.next(records: [Fixture.summary(rseq: 1), Fixture.eventStart(rseq: 2)])
            var lines = batch.records
            let text = String(decoding: lines[1], as: UTF8.self)
            let altered: String
            switch variant {
            case "space": altered = text.replacingOccurrences(of: #"["evt",2,"#, with: #"["evt", 2,"#)
            case "key order": altered = text.replacingOccurrences(of: #"{"below":50,"for_ms":30000}"#, with: #"{"for_ms":30000,"below":50}"#)
            default: altered = text.replacingOccurrences(of: #""stoppage""#, with: #""\u0073toppage""#)
            }
            try #require(altered != text, "the edit applies")
            // Same JSON value: a lenient verifier would hash a re-encoding and accept it.
            try #require(try CanonicalJSON.decode(Array(altered.utf8)) == CanonicalJSON.decode(lines[1]))
            lines[1] = Array(altered.utf8)
            let refusal = bank.refusal(batch.withRecords(lines))
            #expect(refusal?.code == "E_RECORD_NOT_CANONICAL")
            #expect(refusal?.status == 400)
            #expect(try bank.store.batches(device: device.id).isEmpty)
        }
    }

    @Test("non-canonical record line, over HTTP: 400 E_RECORD_NOT_CANONICAL")
    func nonCanonicalRecordOverHTTP() async throws {
        try await TestBank.with { bank in
            let device = TestDevice()
            try bank.enroll(device)
            let batch = ChainBuilder.chain(device, batches: 1, perBatch: 2)[0]
            let text = batch.fileText
            let spaced = text.replacingOccurrences(of: #"["sum",2,"#, with: #"["sum",2, "#)
            try #require(spaced != text)
            let reply = try await bank.http { client in try await client.post(text: spaced) }
            #expect(reply.status == 400, "\(reply.text)")
            #expect(reply.errorCode == "E_RECORD_NOT_CANONICAL")
            #expect(try bank.store.batches(device: device.id).isEmpty)
        }
    }

    // MARK: who signed

    @Test("unknown device: E_DEVICE_UNKNOWN, over HTTP and through BankIngest")
    func unknownDevice() async throws {
        try await TestBank.with { bank in
            let stranger = TestDevice()
            let batch = ChainBuilder.chain(stranger, batches: 1)[0]
            let refusal = bank.refusal(batch)
            #expect(refusal?.code == "E_DEVICE_UNKNOWN")
            #expect(refusal?.status == 401)
            let reply = try await bank.http { client in try await client.post(batch) }
            #expect(reply.status == 401)
            #expect(reply.errorCode == "E_DEVICE_UNKNOWN")
            #expect(try bank.store.batches(device: stranger.id).isEmpty)
            #expect(try bank.store.devices().isEmpty)
        }
    }

    @Test("signature re-encoded as (r, n − s): a duplicate, and the honest next batch still extends")
    func malleableSignature() async throws {
        try await TestBank.with { bank in
            let device = TestDevice()
            try bank.enroll(device)
            let chain = ChainBuilder.chain(device, batches: 3)
            let first = try bank.ingest.ingest(chain[0], nowMs: Fixture.t0)
            let twin = try SignatureMalleabilityTests.twin(of: chain[0])
            #expect(twin.token != chain[0].token)
            let again = try bank.ingest.ingest(twin, nowMs: Fixture.t0)
            #expect(again.verdict == .duplicate)
            #expect(again.receipt == first.receipt)
            #expect(try bank.ingest.ingest(chain[1], nowMs: Fixture.t0).verdict == .accepted)
            // A re-encoded batch 3 arriving first is accepted as batch 3: its hash is the honest one.
            let twin3 = try SignatureMalleabilityTests.twin(of: chain[2])
            #expect(try bank.ingest.ingest(twin3, nowMs: Fixture.t0).verdict == .accepted)
            #expect(try bank.ingest.ingest(chain[2], nowMs: Fixture.t0).verdict == .duplicate)
            #expect(try bank.store.batches(device: device.id).map(\.hash) == chain.map(\.signingInputHash))
            #expect(try bank.store.incidents(device: device.id, nowMs: Fixture.t0).isEmpty)
        }
    }
}
