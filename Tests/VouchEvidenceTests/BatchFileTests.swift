import Testing
import VouchEvidence

@Suite struct BatchFileTests {
    static func sealed(bseq: Int64, prev: String, records: [EvidenceRecord]) -> SealedBatch {
        let payload = BatchPayload(
            device: "acme-press-1", bseq: bseq, prev: prev, bootId: "b", bootCount: 1, sealedWallMs: 1_700_000_000_000 + bseq,
            sealedMonoMs: bseq, timeQuality: .synchronized, records: records, receipt: nil)
        return SealedBatch.seal(payload, records: records, key: TestKeys.device)
    }

    static let first = sealed(bseq: 1, prev: Digest256.zeroHex, records: [Fixtures.summary, Fixtures.heartbeat])
    static let second = sealed(bseq: 2, prev: first.signingInputHash, records: [Fixtures.event])
    static let empty = sealed(bseq: 3, prev: second.signingInputHash, records: [])

    static var token: String { first.token }
    static var r1: String { CanonicalJSON.string(Fixtures.summary.json) }
    static var r2: String { CanonicalJSON.string(Fixtures.heartbeat.json) }

    struct Rejected: Sendable, CustomTestStringConvertible {
        let name: String
        let text: String
        let says: String
        var testDescription: String { name }
    }

    static let rejected: [Rejected] = [
        Rejected(name: "CR LF after the token", text: "\(token)\r\n\(r1)\n\(r2)\n", says: "line 1 ends in CR"),
        Rejected(name: "CR LF after a record", text: "\(token)\n\(r1)\r\n\(r2)\n", says: "line 2 ends in CR"),
        Rejected(name: "CR LF everywhere", text: "\(token)\r\n\(r1)\r\n\(r2)\r\n", says: "line 1 ends in CR"),
        Rejected(name: "CR as the last byte", text: "\(token)\n\(r1)\n\(r2)\r", says: "line 3 ends in CR"),
        Rejected(name: "empty line between records", text: "\(token)\n\(r1)\n\n\(r2)\n", says: "line 3 is empty"),
        Rejected(name: "empty line between token and records", text: "\(token)\n\n\(r1)\n\(r2)\n", says: "line 2 is empty"),
        Rejected(name: "empty first line", text: "\n\(token)\n\(r1)\n\(r2)\n", says: "line 1 is empty"),
        Rejected(name: "two LFs at the end", text: "\(token)\n\(r1)\n\(r2)\n\n", says: "line 4 is empty"),
        Rejected(name: "record before the token", text: "\(r1)\n\(token)\n\(r2)\n", says: "line 1 is a record, but no batch token came before it"),
        Rejected(name: "a line that is neither token nor record", text: "\(token)\n\(r1)\n{\"x\":1}\n", says: "line 3 is neither a JWS token nor a record"),
        Rejected(name: "record line indented", text: "\(token)\n \(r1)\n\(r2)\n", says: "line 2 is neither"),
        Rejected(name: "token with padding", text: "\(token)=\n\(r1)\n\(r2)\n", says: "line 1 is neither"),
        Rejected(name: "empty file", text: "", says: "the batch file is empty"),
        Rejected(name: "only a LF", text: "\n", says: "line 1 is empty"),
        Rejected(name: "two batches in one upload", text: first.fileText + second.fileText, says: "one upload holds one batch, this holds 2"),
    ]

    @Test(arguments: rejected)
    func decodeOneIsStrict(_ r: Rejected) {
        let error = evidenceError { try BatchFile.decodeOne(Array(r.text.utf8)) }
        #expect(error?.code == .malformedBatch)
        #expect(error?.message.contains(r.says) == true, "\(String(describing: error))")
        // And verifying the file refuses it the same way, before any signature or record check.
        #expect(evidenceError { try VerifiedBatch.verify(file: Array(r.text.utf8), key: TestKeys.device.publicJWK) }?.code == .malformedBatch)
    }

    @Test func theWellFormedFileDecodes() throws {
        let entry = try BatchFile.decodeOne(Array("\(Self.token)\n\(Self.r1)\n\(Self.r2)\n".utf8))
        #expect(entry.line == 1)
        #expect(entry.token == Self.token)
        #expect(entry.records == [Array(Self.r1.utf8), Array(Self.r2.utf8)])
        #expect(try VerifiedBatch.verify(file: Self.first.file, key: TestKeys.device.publicJWK).records.count == 2)
    }

    @Test func missingFinalLFIsAccepted() throws {
        let with = try BatchFile.decodeOne(Self.first.file)
        let without = try BatchFile.decodeOne(Array(Self.first.file.dropLast()))
        #expect(Self.first.file.last == 0x0A)
        #expect(without == with)
        let verified = try VerifiedBatch.verify(file: Array(Self.first.file.dropLast()), key: TestKeys.device.publicJWK)
        #expect(try verified.typedRecords() == [Fixtures.summary, Fixtures.heartbeat])
        // A batch without records: the token alone, with or without its LF.
        #expect(try BatchFile.decodeOne(Array(Self.empty.token.utf8)).records.isEmpty)
        #expect(try BatchFile.decodeOne(Self.empty.file).token == Self.empty.token)
    }

    @Test func aStreamSplitsIntoItsBatchesWithTheirTokenLines() throws {
        let stream = Self.first.file + Self.empty.file + Self.second.file
        let entries = try BatchFile.decodeStream(stream)
        #expect(entries.map(\.line) == [1, 4, 5])
        #expect(entries.map(\.token) == [Self.first.token, Self.empty.token, Self.second.token])
        #expect(entries.map(\.records) == [Self.first.records, [], Self.second.records])
        #expect(try BatchFile.decodeStream([UInt8]()).isEmpty)
        // The stream's rules are the file's: an empty line anywhere is refused, with its line number.
        let error = evidenceError { try BatchFile.decodeStream(Self.first.file + [0x0A] + Self.second.file) }
        #expect(error?.code == .malformedBatch)
        #expect(error?.message.contains("line 4 is empty") == true, "\(String(describing: error))")
    }

    @Test func encodeEndsEveryLineWithLF() {
        let bytes = BatchFile.encode(token: "a.b.c", records: [Array("[1]".utf8), Array("[2]".utf8)])
        #expect(String(decoding: bytes, as: UTF8.self) == "a.b.c\n[1]\n[2]\n")
        #expect(String(decoding: BatchFile.encode(token: "a.b.c", records: []), as: UTF8.self) == "a.b.c\n")
    }
}
