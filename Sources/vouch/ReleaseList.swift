import ArgumentParser
import Foundation
import VouchAgent

struct ReleaseList: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List the release windows open now.",
        discussion: """
            Examples:
              vouch release list
              vouch release list --json
            """)

    @OptionGroup var options: ReleaseOptions

    func run() throws {
        let answer = try options.ask(ControlRequest(op: "release.list"), command: "list")
        let windows = answer.releases ?? []
        let now = ReleaseOutput.nowMs()
        if options.json {
            JSONOutput.print(ReleaseOutput.json(windows, nowMs: now))
            return
        }
        guard !windows.isEmpty else {
            print("no release window is open: every drop outside one is an alarm")
            return
        }
        for w in windows {
            print(ReleaseOutput.line(w) + " (\(max(0, (w.untilWallMs - now) / 60_000)) min left)")
        }
    }
}
