import ArgumentParser
import Foundation
import VouchAgent

struct ReleaseOpen: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "open",
        abstract: "Open a release window: drops in it are recorded as releases, not alarmed.",
        discussion: """
            The window opens when the agent has stored its record (the command waits for that) and ends \
            by itself after --for, or earlier with `vouch release close`. The longest window is set by \
            [release] max_duration in the config (12 h unless set). Windows are measured on the gateway's \
            monotonic clock: setting the wall clock does not change them. A restart of the agent keeps an \
            open window; a reboot of the gateway ends it (the time spent off cannot be counted), and the \
            chain says so.

            Examples:
              vouch release open --for 2h --reason "sale to Koné Ltd, invoice 2291"
              vouch release open --for 1h30m --reason "weekly delivery" --channel scale.weight --channel store.pallets
              vouch release open --for 45m --reason "sample to the lab" --by "A. Diallo" --json
            """)

    @OptionGroup var options: ReleaseOptions

    @Option(name: .customLong("for"), help: ArgumentHelp("How long it stays open: 2h, 90m, 1h30m, 600s.", valueName: "duration"))
    var duration: String

    @Option(help: ArgumentHelp("Why stock may leave (the bank reads it): a sale, an invoice, a delivery note.", valueName: "text"))
    var reason: String

    @Option(help: ArgumentHelp("A channel it covers (repeatable; default: every channel).", valueName: "channel"))
    var channel: [String] = []

    @Option(help: ArgumentHelp("Your name, recorded beside the Unix user that ran the command.", valueName: "name"))
    var by: String?

    func validate() throws {
        guard ReleaseOutput.parseDuration(duration) != nil else {
            throw ValidationError("--for \"\(duration)\" is not a duration; write it as 2h, 90m, 1h30m or 600s")
        }
    }

    func run() throws {
        guard let ms = ReleaseOutput.parseDuration(duration) else { throw ExitCode(64) }
        let answer = try options.ask(.releaseOpen(durationMs: ms, reason: reason, channels: channel, by: by), command: "open")
        guard let window = answer.releases?.first else {
            FileHandleOutput.standardError("vouch release open: the agent answered without the window; check `vouch release list`")
            throw ExitCode(70)
        }
        if options.json {
            JSONOutput.print(ReleaseOutput.json([window], nowMs: ReleaseOutput.nowMs()))
        } else {
            print("opened " + ReleaseOutput.line(window))
            print("recorded as record \(window.id) in the signed chain; close it early with: vouch release close \(window.id)")
        }
    }
}
