import ArgumentParser
import Foundation
import VouchBank
import VouchEvidence

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Verify exported batches offline: signature, chain, Merkle root, record order. No server needed.",
        discussion: """
            Reads batch files (a JWS manifest line, then one record per line; several batches may follow each
            other, as `vouch-bank export` and `vouch evidence export` write them) and checks them in order
            against the device's enrollment document, following key rotations recorded in the chain. Prints
            one verdict per batch and exits with status 1 if any batch fails.

            With --last N, the files must run through batch N (from the bank's latest receipt, say):
            ending earlier is reported as a truncated tail.

            Examples:
              vouch-bank export --db bank.sqlite --device acme-press-1 > acme-press-1.batches
              vouch-bank verify --enrollment enrollment.json acme-press-1.batches
              vouch-bank verify --enrollment enrollment.json --last 412 acme-press-1.batches
            """)

    @Option(help: "The device's enrollment document (from `vouch enroll`).")
    var enrollment: String

    @Option(help: "The bseq the files must reach; fewer batches is a truncated tail.")
    var last: Int64?

    @Argument(help: "Batch files, verified in the order given.")
    var files: [String]

    func run() throws {
        guard let doc = FileManager.default.contents(atPath: enrollment) else {
            printError("vouch-bank verify: cannot read the enrollment document \(enrollment)")
            throw ExitCode(2)
        }
        let device: EnrolledDevice
        do { device = try EnrollmentDocument.parse(Array(doc), nowMs: 0) } catch {
            printError("vouch-bank verify: \(enrollment): \(error.message)")
            throw ExitCode(2)
        }
        var streams: [(name: String, entries: [BatchFile.Entry])] = []
        for file in files {
            guard let data = FileManager.default.contents(atPath: file) else {
                printError("vouch-bank verify: cannot read \(file)")
                throw ExitCode(2)
            }
            do { streams.append((file, try BatchFile.decodeStream(data))) } catch {
                printError("vouch-bank verify: \(file): \(error.code.rawValue): \(error.message)")
                throw ExitCode(1)
            }
        }
        var verifier = OfflineVerifier(device: device)
        var good = 0
        var bad = 0
        for v in verifier.verify(streams, expectedLast: last) {
            let seq = v.bseq.map { "bseq \($0)" } ?? "batch"
            if let problem = v.problem {
                bad += 1
                print("\(v.location): \(seq): FAIL \(problem.code): \(problem.message)")
            } else {
                good += 1
                print("\(v.location): \(seq): ok, \(v.records) records\(v.note.map { " (\($0))" } ?? "")")
            }
        }
        print("\(device.id): \(good) batch(es) ok, \(bad) failed")
        if bad > 0 || good == 0 { throw ExitCode(1) }
    }
}
