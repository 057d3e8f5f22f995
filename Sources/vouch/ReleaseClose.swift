import ArgumentParser
import Foundation
import VouchAgent

struct ReleaseClose: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "close",
        abstract: "Close a release window before its time: drops are alarms again.",
        discussion: """
            Without an id, closes the only open window (and refuses when several are open). The closing \
            is a record in the signed chain.

            Examples:
              vouch release close
              vouch release close 1234 --note "truck left early" --by "A. Diallo"
            """)

    @OptionGroup var options: ReleaseOptions

    @Argument(help: ArgumentHelp("The window's id, as `vouch release list` shows it.", valueName: "id"))
    var id: Int64?

    @Option(help: ArgumentHelp("Why it closes early (recorded).", valueName: "text"))
    var note: String?

    @Option(help: ArgumentHelp("Your name, recorded beside the Unix user that ran the command.", valueName: "name"))
    var by: String?

    func run() throws {
        let answer = try options.ask(.releaseClose(id: id, by: by, note: note), command: "close")
        guard let window = answer.releases?.first else { throw ExitCode(70) }
        if options.json {
            JSONOutput.print(ReleaseOutput.json([window], nowMs: ReleaseOutput.nowMs()))
        } else {
            print("closed release window \(window.id) (\(window.reason)); drops on \(window.channels.isEmpty ? "every channel" : window.channels.joined(separator: ", ")) are alarms again")
        }
    }
}
