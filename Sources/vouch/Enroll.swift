import ArgumentParser
import Foundation
import VouchAgent
import VouchCore
import VouchEvidence

struct Enroll: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create the device key and print the enrollment document the bank needs.",
        discussion: """
            Writes a new P-256 key to the config's key_file (mode 0600) and prints, on standard output, a
            JSON document with the device id and public key. Send that document to the bank; it enrolls the
            device with `vouch-bank devices add FILE`. Refuses to replace an existing key unless --force.
            With --print-only, prints the document for the existing key.

            Examples:
              vouch enroll --config /etc/vouch/vouch.toml > enrollment.json
              vouch enroll --config /etc/vouch/vouch.toml --print-only
            """)

    @Option(name: .shortAndLong, help: "Config file (device.id and device.key_file are used).")
    var config = "/etc/vouch/vouch.toml"

    @Flag(help: "Replace an existing key. The bank will no longer accept batches signed with the old one.")
    var force = false

    @Flag(help: "Do not create a key; print the document for the existing one.")
    var printOnly = false

    func run() throws {
        let settings: AgentConfig
        do { settings = try ConfigLoader.load(path: config) } catch {
            FileHandleOutput.standardError(error.description)
            throw ExitCode(78)
        }
        let key: SigningKey
        do {
            key = printOnly
                ? try DeviceKeyFile.load(path: settings.device.keyFile)
                : try DeviceKeyFile.create(path: settings.device.keyFile, force: force)
        } catch {
            FileHandleOutput.standardError("vouch enroll: \(error.message)")
            throw ExitCode(1)
        }
        let document = DeviceKeyFile.enrollmentDocument(deviceID: settings.device.id, key: key, nowMs: Int64(Date().timeIntervalSince1970 * 1000))
        print(CanonicalJSON.string(document))
        if !printOnly {
            FileHandleOutput.standardError("vouch enroll: key written to \(settings.device.keyFile) (mode 0600), kid \(key.kid)")
        }
    }
}
