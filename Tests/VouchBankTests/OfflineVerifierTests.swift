import Foundation
import Testing
import VouchEvidence
@testable import VouchBank

/// `vouch-bank verify`: the tamper cases an exported file can show without a server.
@Suite struct OfflineVerifierTests {
    let device = TestDevice()

    func verdicts(_ batches: [SealedBatch], as owner: TestDevice? = nil, expectedLast: Int64? = nil) throws -> [OfflineVerifier.Verdict] {
        try ExportStream.verify(batches, device: (owner ?? device).enrollment(), expectedLast: expectedLast)
    }

    @Test func honestExportVerifies() throws {
        let chain = ChainBuilder.chain(device, batches: 4)
        let result = try verdicts(chain)
        #expect(result.allSatisfy { $0.ok }, "\(result)")
        #expect(result.map(\.bseq) == [1, 2, 3, 4])
        #expect(result.map(\.records) == [3, 3, 3, 3])
        #expect(result.allSatisfy { $0.note == nil })
        // Each batch is a token line and 3 record lines: tokens on lines 1, 5, 9, 13.
        #expect(result.map(\.location) == ["export:1", "export:5", "export:9", "export:13"])
    }

    @Test func deletedBatchIsAGap() throws {
        let chain = ChainBuilder.chain(device, batches: 4)
        let result = try verdicts([chain[0], chain[1], chain[3]])
        #expect(result.map(\.ok) == [true, true, false])
        #expect(result[2].problem?.code == "E_CHAIN_GAP")
        #expect(result[2].problem?.message.contains("batches 3…3 are missing") == true)
    }

    @Test func reorderedBatchesAreReported() throws {
        let chain = ChainBuilder.chain(device, batches: 3)
        let result = try verdicts([chain[0], chain[2], chain[1]])
        #expect(result.map(\.ok) == [true, false, true, true])
        #expect(result[1].problem?.code == "E_CHAIN_REORDER")
        #expect(result.map(\.bseq) == [1, 3, 2, 3], "batch 3 is verified again once batch 2 is in")
        #expect(result[1].problem?.message.contains("comes before batch 2") == true, "\(String(describing: result[1].problem))")
    }

    @Test func editedRecordBreaksTheMerkleRoot() throws {
        let chain = ChainBuilder.chain(device, batches: 2)
        var lines = chain[1].records
        lines[0] = try Fixture.editRecord(lines[0]) { $0[15] = .int(999_999) }  // the summary's "last" value
        let result = try verdicts([chain[0], chain[1].withRecords(lines)])
        #expect(result[0].ok)
        #expect(result[1].problem?.code == "E_MERKLE_ROOT")
    }

    @Test func editedManifestBreaksTheSignature() throws {
        let chain = ChainBuilder.chain(device, batches: 2)
        let edited = try HandToken.editingManifest(of: chain[1].token) { $0["t"] = ["mono": 1, "tq": "sync", "wall": 1] }
        let result = try verdicts([chain[0], chain[1].withToken(edited)])
        #expect(result[0].ok)
        #expect(result[1].problem?.code == "E_JWS_SIGNATURE")
    }

    @Test func forkIsTwoContentsForOneBseq() throws {
        var honest = ChainBuilder(device)
        honest.next()
        honest.next()
        var other = ChainBuilder(device)
        other.next()
        other.next(count: 5)  // a different batch 2 on the same batch 1
        let result = try verdicts([honest.batches[0], honest.batches[1], other.batches[1]])
        #expect(result.map(\.ok) == [true, true, false])
        #expect(result[2].problem?.code == "E_CHAIN_FORK")
    }

    @Test func identicalCopyIsNotAnError() throws {
        let chain = ChainBuilder.chain(device, batches: 2)
        let result = try verdicts([chain[0], chain[1], chain[1]])
        #expect(result.allSatisfy { $0.ok })
        #expect(result[2].note?.contains("identical copy") == true)
    }

    @Test func anotherDevicesKeyFailsEveryBatch() throws {
        let chain = ChainBuilder.chain(device, batches: 2)
        let result = try verdicts(chain, as: TestDevice())
        #expect(result.count == 2)
        #expect(result.allSatisfy { $0.problem?.code == "E_JWS_KID" })
    }

    @Test func exportStartingMidChainSaysSo() throws {
        let chain = ChainBuilder.chain(device, batches: 4)
        let result = try verdicts(Array(chain[2...]))
        #expect(result.allSatisfy { $0.ok })
        #expect(result[0].note?.contains("starts at bseq 3") == true)
    }

    @Test func missingRecordsAreNotedNotHidden() throws {
        var b = ChainBuilder(device)
        b.next(records: Fixture.summaries(1...3))
        b.next(records: Fixture.summaries(6...7))
        let result = try verdicts(b.batches)
        #expect(result.allSatisfy { $0.ok })
        #expect(result[1].note == "records 4…5 missing before rseq 6")
    }

    @Test func truncatedTailIsReportedOnlyWithExpectedLast() throws {
        let chain = ChainBuilder.chain(device, batches: 4)
        let cut = try verdicts(Array(chain[..<2]), expectedLast: 4)
        #expect(cut.map(\.ok) == [true, true, false])
        #expect(cut[2].bseq == nil)
        #expect(cut[2].location == "export:end")
        #expect(cut[2].problem?.code == "E_CHAIN_TRUNCATED")
        #expect(cut[2].problem?.message.contains("batches 3…4 were cut off") == true)
        // The whole chain reaches expectedLast: nothing to report; without expectedLast nobody can tell.
        #expect(try verdicts(chain, expectedLast: 4).allSatisfy { $0.ok })
        #expect(try verdicts(Array(chain[..<2])).map(\.ok) == [true, true])
    }

    @Test func batchesAcrossSeveralFilesAreOneStream() throws {
        let chain = ChainBuilder.chain(device, batches: 3, perBatch: 2)
        var verifier = OfflineVerifier(device: device.enrollment())
        let result = verifier.verify(
            [(name: "a.batches", entries: try ExportStream.entries(Array(chain[..<2]))), (name: "b.batches", entries: try ExportStream.entries([chain[2]]))],
            expectedLast: 3)
        #expect(result.allSatisfy { $0.ok }, "\(result)")
        #expect(result.map(\.location) == ["a.batches:1", "a.batches:4", "b.batches:1"])
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
        let offline = try verdicts(sequence).last?.problem
        let online = try await TestBank.with { bank -> BankError? in
            try bank.enroll(device)
            var last: BankError?
            for b in sequence {
                if let refusal = bank.refusal(b) { last = refusal }
            }
            return last
        }
        #expect(offline?.code == (anomaly == "gap" ? "E_CHAIN_GAP" : "E_CHAIN_FORK"))
        #expect(offline == online)
    }

    /// An export stream is batch files concatenated: a token line, then its record lines. A broken
    /// line must fail the whole file, not vanish.
    @Test func exportStreamsAreSplitStrictly() throws {
        let chain = ChainBuilder.chain(device, batches: 2, perBatch: 2)
        let entries = try ExportStream.entries(chain)
        #expect(entries.map(\.line) == [1, 4])
        #expect(entries.map(\.token) == chain.map(\.token))
        #expect(entries.map(\.records) == chain.map(\.records))
        // The last LF may be missing.
        #expect(try BatchFile.decodeStream(chain[0].file.dropLast()).map(\.records) == [chain[0].records])

        let text = chain.map(\.fileText).joined()
        let broken: [String: String] = [
            "not a line of either kind": text.replacingOccurrences(of: chain[1].token, with: "{not json"),
            "an empty line": text.replacingOccurrences(of: "\n" + chain[1].token, with: "\n\n" + chain[1].token),
            "CRLF": text.replacingOccurrences(of: "\n", with: "\r\n"),
            "a record before any token": String(decoding: chain[0].records[0], as: UTF8.self) + "\n" + text,
        ]
        for (what, stream) in broken {
            #expect(evidenceCode { _ = try BatchFile.decodeStream(Array(stream.utf8)) } == .malformedBatch, "\(what)")
        }
    }
}
