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

            SIGHUP (systemctl reload vouch) applies a changed config file: it is checked whole first; if it \
            has an error the agent logs every error and keeps running on the config it has. If it checks and \
            differs, the agent stops in order and starts again in place (same pid) on the new file, which \
            records the change in the chain. An unchanged file changes nothing.

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
        let (hangups, hangupSource) = Self.watchHangups()
        let reloads = Task {
            for await _ in hangups {
                switch ConfigReload.decide(running: settings, path: config) {
                case .refused(let why):
                    logger.error("SIGHUP: \(config) was not applied; the agent keeps running on the configuration it started with. \(why)")
                case .unchanged(let sha):
                    logger.notice("SIGHUP: \(config) is unchanged (sha256 \(sha.prefix(16))…); nothing to apply")
                case .apply(let from, let to, let summary):
                    logger.notice(
                        "SIGHUP: \(config) changed (sha256 \(from.prefix(16))… → \(to.prefix(16))…: \(summary)); restarting in place to apply it")
                    if let notifier = try? SystemdNotifier.fromEnvironment(ProcessInfo.processInfo.environment) {
                        try? notifier.send([("RELOADING", "1"), ("STATUS", "applying a changed configuration: restarting in place")])
                    }
                    await agent.requestRestart(reason: "config \(to.prefix(16))…")
                    return
                }
            }
        }
        try await agent.run()
        reloads.cancel()
        hangupSource.cancel()
        if let reason = agent.restartReason {
            logger.notice("restarting in place (\(reason))")
            fflush(nil)
            // Same pid: systemd keeps watching it, and the new image says READY=1 again once up.
            execv("/proc/self/exe", CommandLine.unsafeArgv)
            FileHandleOutput.standardError("vouch: could not restart in place: \(String(cString: strerror(errno))); exiting for the service manager to restart it")
            throw ExitCode(1)
        }
    }

    /// SIGHUPs as they arrive (the default action, ending the process, is turned off first), and the
    /// signal source, which the caller keeps alive and cancels when done.
    static func watchHangups() -> (AsyncStream<Void>, any DispatchSourceSignal) {
        signal(SIGHUP, SIG_IGN)
        let (stream, continuation) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let source = DispatchSource.makeSignalSource(signal: SIGHUP, queue: .global())
        source.setEventHandler { continuation.yield() }
        source.setCancelHandler { continuation.finish() }
        source.resume()
        return (stream, source)
    }
}

enum FileHandleOutput {
    static func standardError(_ text: String) {
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }
}
