import Foundation
import ArgumentParser
import VouchCore

extension ConfigCommand {
    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print a config file, checked; with --effective, with every default filled in.",
            discussion: """
                --effective prints the configuration the agent would run with: every table and key of the
                file, plus each key the file leaves out with the value the agent uses for it, marked
                "# default", and for each device template the channels it adds. The output is TOML that loads
                to the same configuration; the file's own comments are not kept. A file with errors prints
                them as `vouch config check` does and exits 78.

                Examples:
                  vouch config show --effective
                  vouch config show --effective site.toml | grep default
                  vouch config show /etc/vouch/vouch.toml
                """)

        @Argument(help: "Config file to show.")
        var file = "/etc/vouch/vouch.toml"

        @Flag(help: "Fill in every default the file leaves out.")
        var effective = false

        func run() throws {
            do {
                if effective {
                    print(try ConfigLoader.effective(path: file), terminator: "")
                } else {
                    _ = try ConfigLoader.load(path: file)
                    print(try String(contentsOfFile: file, encoding: .utf8), terminator: "")
                }
            } catch let error as ConfigError {
                FileHandleOutput.standardError(Check.painted(error))
                FileHandleOutput.standardError("\(file): \(error.diagnostics.count) error(s)")
                throw ExitCode(78)
            }
        }
    }
}
