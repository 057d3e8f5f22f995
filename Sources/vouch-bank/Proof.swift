import ArgumentParser
import Foundation
import VouchBank
import VouchEvidence

struct Proof: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Disclose one record without the rest of its batch: print, or check, an inclusion proof.",
        discussion: """
            The proof holds the batch's signed manifest (hashes and counts, no other record), the record, its
            position and the RFC 6962 audit path to the manifest's Merkle root, plus the bank's receipt.
            Whoever receives it (an insurer, a court) checks it with the device's enrolled public key, with
            `vouch-bank proof --check` or any JOSE library and SHA-256 (see the evidence spec).

            Examples:
              vouch-bank proof --db bank.sqlite --device acme-press-1 --rseq 1042 > record-1042.proof.json
              vouch-bank proof --check record-1042.proof.json --enrollment enrollment.json
            """)

    @OptionGroup var store: StoreOptions
    @Option(help: "Device id (to make a proof).") var device: String?
    @Option(help: "The record's sequence number (to make a proof).") var rseq: Int64?
    @Option(help: "A proof file to check instead.") var check: String?
    @Option(help: "The device's enrollment document (with --check).") var enrollment: String?

    func run() async throws {
        if let check {
            try checkProof(check)
            return
        }
        guard let device, let rseq else {
            throw ValidationError("give --device and --rseq to make a proof, or --check FILE --enrollment FILE to check one")
        }
        let proof: InclusionProof
        do { proof = try await store.withStore { try await $0.inclusionProof(device: device, rseq: rseq) } } catch {
            printError("vouch-bank proof: \(error)")
            throw ExitCode(1)
        }
        print(CanonicalJSON.string(proof.json))
    }

    func checkProof(_ path: String) throws {
        guard let enrollment else { throw ValidationError("--check needs --enrollment: the key must come from the enrollment, not from the proof") }
        guard let doc = FileManager.default.contents(atPath: enrollment) else {
            printError("vouch-bank proof: cannot read the enrollment document \(enrollment)")
            throw ExitCode(2)
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            printError("vouch-bank proof: cannot read \(path)")
            throw ExitCode(2)
        }
        do {
            let device = try EnrollmentDocument.parse(Array(doc), nowMs: 0)
            let proof = try InclusionProof(json: try CanonicalJSON.decode(Array(data)))
            // A proof from after a key rotation names the rotated-in key; it is accepted only if the
            // enrollment's key is that key (the bank's key history is the authority for rotations).
            guard proof.deviceKey == device.key else {
                printError("vouch-bank proof: \(path): FAIL E_JWS_KID: the proof's batch is signed by \(proof.deviceKey.thumbprint), the enrollment's key is \(device.kid)")
                throw ExitCode(1)
            }
            let (payload, record) = try proof.verify(key: device.key)
            guard payload.device == device.id else {
                printError("vouch-bank proof: \(path): FAIL \(BankError.deviceMismatch): the batch names device \(payload.device), not \(device.id)")
                throw ExitCode(1)
            }
            print("\(path): ok: record \(record.stamp.rseq) (\(record.kind)) is record \(proof.index + 1) of \(payload.recordCount) in batch \(payload.bseq) of \(payload.device), signed by \(device.kid)")
        } catch let error as EvidenceError {
            printError("vouch-bank proof: \(path): FAIL \(error.code.rawValue): \(error.message)")
            throw ExitCode(1)
        } catch let error as BankError {
            printError("vouch-bank proof: \(enrollment): \(error.message)")
            throw ExitCode(2)
        }
    }
}
