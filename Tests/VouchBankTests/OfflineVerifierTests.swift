import Foundation
import Testing
import VouchEvidence
@testable import VouchBank

/// `vouch-bank verify`: the tamper cases an exported file can show without a server.
@Suite struct OfflineVerifierTests {
    let device = TestDevice()

    func verdicts(_ tokens: [String], as owner: TestDevice? = nil) -> [OfflineVerifier.Verdict] {
        var v = OfflineVerifier(device: (owner ?? device).enrollment())
        return tokens.enumerated().map { v.verify(token: $0.element, line: $0.offset + 1) }
    }

    @Test func honestExportVerifies() {
        let chain = ChainBuilder.chain(device, batches: 4)
        let result = verdicts(chain.map(\.token))
        #expect(result.allSatisfy { $0.ok }, "\(result)")
        #expect(result.map(\.bseq) == [1, 2, 3, 4])
        #expect(result.map(\.records) == [3, 3, 3, 3])
        #expect(result.allSatisfy { $0.note == nil })
    }

    @Test func deletedBatchIsAGap() {
        let chain = ChainBuilder.chain(device, batches: 4)
        let result = verdicts([chain[0], chain[1], chain[3]].map(\.token))
        #expect(result.map(\.ok) == [true, true, false])
        #expect(result[2].problem?.code == "E_CHAIN_GAP")
        #expect(result[2].problem?.message.contains("batches 3…3 are missing") == true)
    }

    @Test func reorderedBatchesAreReported() {
        let chain = ChainBuilder.chain(device, batches: 3)
        let result = verdicts([chain[0], chain[2], chain[1]].map(\.token))
        #expect(result.map(\.ok) == [true, false, true])
        #expect(result[1].problem?.code == "E_CHAIN_GAP")
    }

    @Test func editedRecordBreaksTheSignature() throws {
        let chain = ChainBuilder.chain(device, batches: 2)
        var payload = try #require(try Fixture.decodedPayload(chain[1].token).objectValue)
        var recs = try #require(payload["recs"]?.arrayValue)
        var first = try #require(recs[0].arrayValue)
        first[15] = .int(999_999)  // the summary's "last" value
        recs[0] = .array(first)
        payload["recs"] = .array(recs)
        let edited = HandToken.replacingPayload(of: chain[1].token, with: .object(payload))
        let result = verdicts([chain[0].token, edited])
        #expect(result[1].problem?.code == "E_JWS_SIGNATURE")
    }

    @Test func forkIsTwoContentsForOneBseq() {
        var honest = ChainBuilder(device)
        honest.next()
        honest.next()
        var other = ChainBuilder(device)
        other.next()
        other.next(count: 5)  // a different batch 2 on the same batch 1
        let result = verdicts([honest.batches[0], honest.batches[1], other.batches[1]].map(\.token))
        #expect(result.map(\.ok) == [true, true, false])
        #expect(result[2].problem?.code == "E_CHAIN_FORK")
    }

    @Test func identicalCopyIsNotAnError() {
        let chain = ChainBuilder.chain(device, batches: 2)
        let result = verdicts([chain[0], chain[1], chain[1]].map(\.token))
        #expect(result.allSatisfy { $0.ok })
        #expect(result[2].note?.contains("identical copy") == true)
    }

    @Test func anotherDevicesKeyFailsEveryBatch() {
        let chain = ChainBuilder.chain(device, batches: 2)
        let result = verdicts(chain.map(\.token), as: TestDevice())
        #expect(result.allSatisfy { $0.problem?.code == "E_JWS_KID" })
    }

    @Test func exportStartingMidChainSaysSo() {
        let chain = ChainBuilder.chain(device, batches: 4)
        let result = verdicts(Array(chain[2...]).map(\.token))
        #expect(result.allSatisfy { $0.ok })
        #expect(result[0].note?.contains("starts at bseq 3") == true)
    }

    @Test func missingRecordsAreNotedNotHidden() {
        var b = ChainBuilder(device)
        b.next(records: Fixture.summaries(1...3))
        b.next(records: Fixture.summaries(6...7))
        let result = verdicts(b.batches.map(\.token))
        #expect(result.allSatisfy { $0.ok })
        #expect(result[1].note == "records 4…5 missing before rseq 6")
    }

    @Test(arguments: ["gap", "fork"])
    func receiverAndOfflineVerifierRefuseWithTheSameWords(_ anomaly: String) async throws {
        var honest = ChainBuilder(device)
        honest.next()
        honest.next()
        honest.next()
        var other = ChainBuilder(device)
        other.next()
        other.next(count: 5)
        let sequence = anomaly == "gap" ? [honest.batches[0], honest.batches[2]] : [honest.batches[0], honest.batches[1], other.batches[1]]
        let offline = verdicts(sequence.map(\.token)).last?.problem
        let online = try await TestBank.with { bank -> BankError? in
            try bank.enroll(device)
            var last: BankError?
            for b in sequence {
                do { _ = try bank.ingest.ingest(token: b.token) } catch let refusal as BankError { last = refusal }
            }
            return last
        }
        #expect(offline != nil)
        #expect(offline == online)
    }

    @Test func exportLinesAndBareTokensAreBothRead() {
        #expect(OfflineVerifier.token(fromLine: #"{"bseq":1,"hash":"h","token":"a.b.c"}"#) == "a.b.c")
        #expect(OfflineVerifier.token(fromLine: "  a.b.c ") == "a.b.c")
        #expect(OfflineVerifier.token(fromLine: "   ") == nil)
        #expect(OfflineVerifier.token(fromLine: "{not json") == "", "a broken line must fail verification, not vanish")
    }
}
