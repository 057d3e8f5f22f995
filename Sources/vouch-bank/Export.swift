import ArgumentParser
import VouchBank
import VouchEvidence

struct Export: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a device's accepted batches exactly as received, as one batch stream.",
        discussion: """
            Each batch is its JWS manifest on one line, then its records one per line; anyone with the device's
            public key can re-verify the stream without Vouch software (see the evidence spec), or with
            `vouch-bank verify`.

            Example:
              vouch-bank export --db bank.sqlite --device acme-press-1 > acme-press-1.batches
            """)

    @OptionGroup var store: StoreOptions
    @Option(help: "Device id.") var device: String

    func run() async throws {
        let id = device
        for b in try await store.withStore({ try await $0.batches(device: id) }) {
            print(String(decoding: b.file, as: UTF8.self), terminator: "")
        }
    }
}
