import Foundation
import Testing
import VouchCore
import VouchEvidence
@testable import VouchStore

/// Agent state kept beside the chain: written in the transaction of the records that change it.
struct OutboxStateTests {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("vouch-outbox-state-\(UUID().uuidString)")
    var path: String { directory.appendingPathComponent("outbox.sqlite").path }

    func action(_ name: String) -> EvidenceRecord {
        .action(
            TechnicianAction(
                stamp: RecordStamp(rseq: 0, boot: 1, monoMs: 1_000, wallMs: 1_700_000_000_000, timeQuality: .synchronized), action: name, who: "t",
                params: [:], explanation: name))
    }

    @Test func stateIsWrittenWithItsRecordsSeesTheirRseqAndSurvivesAReopen() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        do {
            let outbox = try Outbox(path: path)
            #expect(try outbox.state("windows") == nil)
            try outbox.append([action("first")])
            try outbox.append([action("release_open")]) { stored in ("windows", "[\(stored[0].stamp.rseq)]") }
        }
        let reopened = try Outbox(path: path)
        #expect(try reopened.state("windows") == "[2]")
        try reopened.append([action("release_close")]) { _ in ("windows", nil) }
        #expect(try reopened.state("windows") == nil)
        #expect(try reopened.records().map { $0.record.stamp.rseq } == [1, 2, 3])
    }

    @Test func stateKeysCannotReachTheOutboxsOwnMeta() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let outbox = try Outbox(path: path)
        _ = try outbox.beginBoot(bootID: "b")
        try outbox.append([action("x")]) { _ in ("boot_count", "999") }
        #expect(try outbox.beginBoot(bootID: "b") == 2, "the boot count is the outbox's, not the agent state's")
        #expect(try outbox.state("boot_count") == "999")
    }

    @Test func aFailedAppendWritesNoState() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        _ = try Outbox(path: path)
        let readOnly = try Outbox(path: path, readOnly: true)
        #expect(throws: StoreError.self) { try readOnly.append([action("release_open")]) { _ in ("windows", "[1]") } }
        #expect(try Outbox(path: path).state("windows") == nil)
    }
}
