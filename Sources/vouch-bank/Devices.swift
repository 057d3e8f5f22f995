import ArgumentParser
import Foundation
import VouchBank
import VouchEvidence

struct Devices: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Enroll, list and revoke gateways.", subcommands: [Add.self, List.self, Revoke.self])

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Enroll a gateway from the document `vouch enroll` printed.",
            discussion: """
                Example:
                  vouch-bank devices add enrollment.json --db bank.sqlite
                """)

        @Argument(help: "Enrollment document (JSON).")
        var file: String

        @OptionGroup var store: StoreOptions

        func run() throws {
            guard let data = FileManager.default.contents(atPath: file) else {
                throw ValidationError("cannot read \(file)")
            }
            do {
                let device = try EnrollmentDocument.parse(Array(data), nowMs: Int64(Date().timeIntervalSince1970 * 1000))
                try SQLiteBankStore(path: store.db).enroll(device)
                print("enrolled \(device.id) with key \(device.kid)")
            } catch {
                printError("vouch-bank devices add: \(error)")
                throw ExitCode(1)
            }
        }
    }

    struct Revoke: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Revoke a gateway: its uploads are refused from now on (403 E_DEVICE_REVOKED); what it sent is kept.",
            discussion: """
                Example:
                  vouch-bank devices revoke acme-press-1 --db bank.sqlite
                """)

        @Argument(help: "The device id.")
        var device: String

        @OptionGroup var store: StoreOptions

        func run() throws {
            do {
                let d = try SQLiteBankStore(path: store.db).revoke(device: device, atMs: Int64(Date().timeIntervalSince1970 * 1000))
                let at = ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: Double(d.revokedAtMs ?? 0) / 1000))
                print("revoked \(d.id) (key \(d.kid)) at \(at)")
            } catch {
                printError("vouch-bank devices revoke: \(error)")
                throw ExitCode(1)
            }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List enrolled gateways.")
        @OptionGroup var store: StoreOptions

        func run() throws {
            for d in try SQLiteBankStore(path: store.db).devices() {
                print("\(d.id)\t\(d.kid)\t\(d.revokedAtMs == nil ? "active" : "revoked")")
            }
        }
    }
}

func printError(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}
