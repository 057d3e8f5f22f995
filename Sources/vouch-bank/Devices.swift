import ArgumentParser
import Foundation
import VouchBank
import VouchEvidence

struct Devices: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Enroll and list gateways.", subcommands: [Add.self, List.self])

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
