import ArgumentParser
import VouchAgent
import VouchCore

struct ConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config", abstract: "Work with the agent's config file.",
        discussion: """
            Examples:
              vouch config check /etc/vouch/vouch.toml
              vouch config show --effective
              sudo vouch config apply --config /etc/vouch/vouch.toml
            """,
        subcommands: [Check.self, Show.self, Apply.self])

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate a config file and report every error with file:line:column.",
            discussion: """
                Exit status 0 when the file is valid, 78 when it is not.

                Examples:
                  vouch config check /etc/vouch/vouch.toml
                  vouch config check site.toml && sudo vouch config apply --config site.toml
                """)

        @Argument(help: "Config file to check.")
        var file = "/etc/vouch/vouch.toml"

        func run() throws {
            let config: AgentConfig
            do { config = try ConfigLoader.load(path: file) } catch {
                FileHandleOutput.standardError(Self.painted(error))
                FileHandleOutput.standardError("\(file): \(error.diagnostics.count) error(s)")
                throw ExitCode(78)
            }
            // The TLS files parsed in full, as the agent will load them (the loader only checked them lightly).
            do { try Agent.checkBankTLS(config.bank) } catch {
                FileHandleOutput.standardError("\(file): error: \(error)")
                FileHandleOutput.standardError("\(file): 1 error(s)")
                throw ExitCode(78)
            }
            let channels = config.channels.map(\.id).joined(separator: ", ")
            print("\(file): \(Terminal.paint("ok", .ok)) — device \(config.device.id), bank \(config.bank.url), \(config.modbusDevices.count) Modbus device(s) (\(channels)), \(config.stoppageRules.count) stoppage rule(s)")
        }

        /// The diagnostics, with "error:" in red on a terminal.
        static func painted(_ error: ConfigError) -> String {
            error.diagnostics.map { d in
                "\(d.file):\(d.position.line):\(d.position.column): \(Terminal.paint("error:", .fail, stderr: true)) \(d.message)"
            }.joined(separator: "\n")
        }
    }
}
