import ArgumentParser
import Foundation
import Logging
import VouchAgent
import VouchCore

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the agent: poll, detect, store, seal and upload until stopped.",
        discussion: """
            Stops cleanly on SIGTERM or Ctrl-C: polling stops, open summaries are stored, and outstanding
            records are sealed and sent once more; anything undelivered is sent at the next start.

            Example:
              vouch run --config /etc/vouch/vouch.toml
            """)

    @Option(name: .shortAndLong, help: "Config file.")
    var config = "/etc/vouch/vouch.toml"

    @Option(help: "Log level: trace, debug, info, notice, warning, error.")
    var logLevel: String = "info"

    func run() async throws {
        Logs.bootstrap(level: Logger.Level(rawValue: logLevel) ?? .info)
        let logger = Logger(label: "vouch")
        let settings: AgentConfig
        do { settings = try ConfigLoader.load(path: config) } catch {
            FileHandleOutput.standardError("\(error)\nvouch: config has \(error.diagnostics.count) error(s); nothing started")
            throw ExitCode(78)  // EX_CONFIG
        }
        let agent: Agent
        do { agent = try Agent.build(config: settings, logger: logger) } catch {
            FileHandleOutput.standardError("vouch: \(error)")
            throw ExitCode(1)
        }
        try await agent.run()
    }
}

enum FileHandleOutput {
    static func standardError(_ text: String) {
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }
}
