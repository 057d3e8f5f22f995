import ArgumentParser
import Foundation
import VouchBank
import VouchEvidence

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Verify exported batches offline: signature, chain, Merkle root, record order. No server needed.",
        discussion: """
            Reads files of batches, one per line, as `vouch-bank export` writes them (or bare JWS tokens), and
            checks them in order against the device's enrollment document. Prints one verdict per batch and
            exits with status 1 if any batch fails.

            Examples:
              vouch-bank export --db bank.sqlite --device acme-press-1 > batches.jsonl
              vouch-bank verify --enrollment enrollment.json batches.jsonl
            """)

    @Option(help: "The device's enrollment document (from `vouch enroll`).")
    var enrollment: String

    @Argument(help: "Files of exported batches, verified in the order given.")
    var files: [String]

    func run() throws {
        guard let doc = FileManager.default.contents(atPath: enrollment) else {
            throw ValidationError("cannot read the enrollment document \(enrollment)")
        }
        let device: EnrolledDevice
        do { device = try EnrollmentDocument.parse(Array(doc), nowMs: 0) } catch {
            printError("vouch-bank verify: \(enrollment): \(error.message)")
            throw ExitCode(2)
        }
        var verifier = OfflineVerifier(device: device)
        var good = 0
        var bad = 0
        for file in files {
            guard let data = FileManager.default.contents(atPath: file) else {
                printError("vouch-bank verify: cannot read \(file)")
                throw ExitCode(2)
            }
            for (index, line) in String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                guard let token = OfflineVerifier.token(fromLine: String(line)) else { continue }
                let v = verifier.verify(token: token, line: index + 1)
                let where_ = "\(file):\(v.line)"
                let seq = v.bseq.map { "bseq \($0)" } ?? "batch"
                if let problem = v.problem {
                    bad += 1
                    print("\(where_): \(seq): FAIL \(problem.code): \(problem.message)")
                } else {
                    good += 1
                    print("\(where_): \(seq): ok, \(v.records) records\(v.note.map { " (\($0))" } ?? "")")
                }
            }
        }
        print("\(device.id): \(good) batch(es) ok, \(bad) failed")
        if bad > 0 || good == 0 { throw ExitCode(1) }
    }
}
