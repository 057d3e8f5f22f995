import ArgumentParser
import Foundation
import VouchBank
import VouchEvidence

struct Devices: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Enroll, list and revoke gateways.",
        discussion: """
            Examples:
              vouch-bank devices add enrollment.json --db bank.sqlite
              vouch-bank devices list --db bank.sqlite
              vouch-bank devices revoke acme-press-1 --db postgres://vouch@db.bank.internal/vouch
            """,
        subcommands: [Add.self, List.self, Revoke.self])

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Enroll a gateway from the document `vouch enroll` printed.",
            discussion: """
                Example:
                  vouch-bank devices add enrollment.json --db bank.sqlite
                  vouch-bank devices add enrollment.json --db postgres://vouch@db.bank.internal:5432/vouch
                """)

        @Argument(help: "Enrollment document (JSON).")
        var file: String

        @OptionGroup var store: StoreOptions

        func run() async throws {
            guard let data = FileManager.default.contents(atPath: file) else {
                throw ValidationError("cannot read \(file)")
            }
            do {
                let device = try EnrollmentDocument.parse(Array(data), nowMs: Int64(Date().timeIntervalSince1970 * 1000))
                try await store.withStore { try await $0.enroll(device) }
                print("enrolled \(device.id) with key \(device.kid)")
            } catch {
                printError("vouch-bank devices add: \(error)")
                throw ExitCode(1)
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Revoke a gateway: its uploads are refused from now on (403 E_DEVICE_REVOKED); what it sent is kept.",
            discussion: """
                Example:
                  vouch-bank devices revoke acme-press-1 --db bank.sqlite
                """)

        @Argument(help: "The device id.")
        var device: String

        @OptionGroup var store: StoreOptions

        func run() async throws {
            do {
                let id = device
                let d = try await store.withStore { try await $0.revoke(device: id, atMs: Int64(Date().timeIntervalSince1970 * 1000)) }
                let at = ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: Double(d.revokedAtMs ?? 0) / 1000))
                print("revoked \(d.id) (key \(d.kid)) at \(at)")
            } catch {
                printError("vouch-bank devices revoke: \(error)")
                throw ExitCode(1)
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List enrolled gateways: id, current key, active or revoked.",
            discussion: """
                Example:
                  vouch-bank devices list --db bank.sqlite
                """)
        @OptionGroup var store: StoreOptions

        func run() async throws {
            for d in try await store.withStore({ try await $0.devices() }) {
                print("\(d.id)\t\(d.kid)\t\(d.revokedAtMs == nil ? "active" : "revoked")")
            }
        }
    }
}

func printError(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}
