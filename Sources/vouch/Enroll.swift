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

            With --rotate, keeps the current key and prepares a new one beside it (key_file + ".next"). At its
            next start the agent records a key rotation in the chain, signed by the current key with a proof
            from the new one, and signs every later batch with the new key. The bank learns the new key from
            that record: nothing needs to be sent to it.

            Examples:
              vouch enroll --config /etc/vouch/vouch.toml > enrollment.json
              vouch enroll --config /etc/vouch/vouch.toml --print-only
              vouch enroll --config /etc/vouch/vouch.toml --rotate && systemctl restart vouch
            """)

    @Option(name: .shortAndLong, help: "Config file (device.id and device.key_file are used).")
    var config = "/etc/vouch/vouch.toml"

    @Flag(help: "Replace an existing key. The bank will no longer accept batches signed with the old one.")
    var force = false

    @Flag(help: "Do not create a key; print the document for the existing one.")
    var printOnly = false

    @Flag(help: "Prepare a new key to rotate to at the agent's next start (the current key signs the rotation).")
    var rotate = false

    func run() throws {
        let settings: AgentConfig
        do { settings = try ConfigLoader.load(path: config) } catch {
            FileHandleOutput.standardError(error.description)
            throw ExitCode(78)
        }
        if rotate {
            do {
                let (current, next) = try DeviceKeyFile.prepareRotation(keyPath: settings.device.keyFile, force: force)
                print(CanonicalJSON.string(DeviceKeyFile.enrollmentDocument(deviceID: settings.device.id, key: next, nowMs: Int64(Date().timeIntervalSince1970 * 1000))))
                FileHandleOutput.standardError(
                    "vouch enroll: new key \(next.kid) written to \(DeviceKeyFile.pendingRotationPath(settings.device.keyFile)); restart the agent to rotate from \(current.kid) (the bank learns it from the signed chain)")
            } catch {
                FileHandleOutput.standardError("vouch enroll: \(error.message)")
                throw ExitCode(1)
            }
            return
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
            let owner = (try? FileManager.default.attributesOfItem(atPath: settings.device.keyFile))?[.ownerAccountName] as? String
            FileHandleOutput.standardError(
                """
                vouch enroll: key written to \(settings.device.keyFile) (mode 0600\(owner.map { ", owner \($0)" } ?? "")), kid \(key.kid)
                vouch enroll: next: send the document printed on standard output to the bank, which enrols device \
                "\(settings.device.id)" with `vouch-bank devices add FILE`; then start the agent (`systemctl enable --now vouch`)
                """)
        }
    }
}
