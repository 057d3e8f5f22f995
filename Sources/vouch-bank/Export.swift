import ArgumentParser
import VouchBank
import VouchEvidence

struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a device's accepted batches, exactly as received, one JSON object per line.",
        discussion: """
            Each line is {"bseq":…,"hash":…,"token":…}; the token is the JWS the device signed, so anyone with the
            device's public key can re-verify it without Vouch software.

            Example:
              vouch-bank export --db bank.sqlite --device acme-press-1 > batches.jsonl
            """)

    @OptionGroup var store: StoreOptions
    @Option(help: "Device id.") var device: String

    func run() throws {
        for b in try SQLiteBankStore(path: store.db).batches(device: device) {
            print(CanonicalJSON.string(["bseq": .int(b.bseq), "hash": .string(b.hash), "token": .string(b.token), "received_ms": .int(b.receivedAtMs)]))
        }
    }
}
