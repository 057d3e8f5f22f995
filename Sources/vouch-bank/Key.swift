import ArgumentParser
import VouchBank
import VouchEvidence

struct Key: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the bank's receipt-signing public key, for the gateways' [bank] receipt_key.",
        discussion: """
            Creates the key (mode 0600) if it does not exist yet, as `serve` would.

            Example:
              vouch-bank key --key bank.key > bank.jwk     # then on the gateway: receipt_key = "/etc/vouch/bank.jwk"
            """)

    @Option(help: "Receipt-signing key (PEM); created if missing.")
    var key = "vouch-bank.key"

    func run() throws {
        let (signing, _) = try BankKeyFile.loadOrCreate(path: key)
        print(CanonicalJSON.string(["kid": .string(signing.kid), "jwk": signing.publicJWK.json]))
    }
}
