import Foundation
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
                Exit status 0 when the file is valid, 78 when it is not. With --json, one document on stdout
                either way: "ok", and the device, bank, config hash and channels, or every error with its file,
                line and column (the TLS files' full check has no line: null).

                Examples:
                  vouch config check /etc/vouch/vouch.toml
                  vouch config check --json site.toml | jq -r '.errors[].message'
                  vouch config check site.toml && sudo vouch config apply --config site.toml
                """)

        @Argument(help: "Config file to check.")
        var file = "/etc/vouch/vouch.toml"

        @Flag(help: "One JSON document on stdout (ok, or every error with file, line and column).")
        var json = false

        func run() throws {
            let config: AgentConfig
            do { config = try ConfigLoader.load(path: file) } catch {
                if json {
                    Self.printJSON(file: file, errors: error.diagnostics.map { ($0.file, $0.position.line, $0.position.column, $0.message) })
                } else {
                    FileHandleOutput.standardError(Self.painted(error))
                    FileHandleOutput.standardError("\(file): \(error.diagnostics.count) error(s)")
                }
                throw ExitCode(78)
            }
            // The TLS files parsed in full, as the agent will load them (the loader only checked them lightly).
            do { try Agent.checkBankTLS(config.bank) } catch {
                if json {
                    Self.printJSON(file: file, errors: [(file, nil, nil, "\(error)")])
                } else {
                    FileHandleOutput.standardError("\(file): error: \(error)")
                    FileHandleOutput.standardError("\(file): 1 error(s)")
                }
                throw ExitCode(78)
            }
            if json {
                Self.printJSON(file: file, errors: [], config: config)
                return
            }
            let channels = config.channels.map(\.id).joined(separator: ", ")
            print("\(file): \(Terminal.paint("ok", .ok)) — device \(config.device.id), bank \(config.bank.url), \(config.modbusDevices.count) Modbus device(s) (\(channels)), \(config.stoppageRules.count) stoppage rule(s)")
        }

        /// The --json document. Its keys are always there (null when they do not apply), so the shape does not
        /// depend on the outcome.
        static func printJSON(file: String, errors: [(file: String, line: Int?, column: Int?, message: String)], config: AgentConfig? = nil) {
            let document: [String: Any] = [
                "file": file,
                "ok": errors.isEmpty,
                "errors": errors.map { e in
                    ["file": e.file, "line": e.line.map { $0 as Any } ?? NSNull(), "column": e.column.map { $0 as Any } ?? NSNull(), "message": e.message]
                },
                "device": config.map { $0.device.id as Any } ?? NSNull(),
                "bank": config.map { $0.bank.url as Any } ?? NSNull(),
                "config_sha256": config.map { $0.sourceHash as Any } ?? NSNull(),
                "channels": config.map { $0.allChannels.map(\.id) as Any } ?? NSNull(),
                "rules": config.map { ($0.stoppageRules.count + $0.detectRules.count) as Any } ?? NSNull(),
            ]
            JSONOutput.print(document)
        }

        /// The diagnostics, with "error:" in red on a terminal.
        static func painted(_ error: ConfigError) -> String {
            error.diagnostics.map { d in
                "\(d.file):\(d.position.line):\(d.position.column): \(Terminal.paint("error:", .fail, stderr: true)) \(d.message)"
            }.joined(separator: "\n")
        }
    }
}
