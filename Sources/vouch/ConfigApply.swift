import ArgumentParser
import Foundation
import VouchAgent
import VouchCore

extension ConfigCommand {
    struct Apply: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check a changed config and have the running agent apply it; wait until it runs on it.",
            discussion: """
                Checks the file whole (as vouch config check); with an error, prints every one and changes \
                nothing. Otherwise sends the running agent SIGHUP (as systemctl reload vouch does): it checks \
                the file again, stops in order and starts again in place on it, recording the change in the \
                chain. Waits until the agent answers with the new file's hash.

                Exit status: 0 applied (or already running this file); 69 no agent is running (the file is \
                used at its next start); 75 the agent did not come back on the new file in time; 77 not \
                allowed to signal the agent (run as root or as its user); 78 the file has errors.

                Examples:
                  sudo vouch config apply
                  sudo vouch config apply --config /etc/vouch/vouch.toml --timeout 120
                """)

        @Option(name: .shortAndLong, help: "Config file (the agent's own: it re-reads this path).")
        var config = "/etc/vouch/vouch.toml"

        @Option(help: ArgumentHelp("Seconds to wait for the agent to run on the new file.", valueName: "seconds"))
        var timeout: Int = 60

        func run() throws {
            let settings: AgentConfig
            do { settings = try ConfigLoader.load(path: config) } catch {
                FileHandleOutput.standardError(error.description)
                FileHandleOutput.standardError("\(config): \(error.diagnostics.count) error(s); nothing applied, the agent keeps its config")
                throw ExitCode(78)
            }
            do { try Agent.checkBankTLS(settings.bank) } catch {
                FileHandleOutput.standardError("\(config): error: \(error)\n\(config): nothing applied, the agent keeps its config")
                throw ExitCode(78)
            }
            let socket = ControlSocket.path(dataDir: settings.device.dataDir)
            guard let running = ControlSocket.status(socketPath: socket) else {
                FileHandleOutput.standardError(
                    "vouch config apply: \(config) checks, but no agent is running for it (nothing answers at \(socket)); it is used at the next start (systemctl start vouch)")
                throw ExitCode(69)
            }
            if running.configSha256 == settings.sourceHash {
                print("\(config): the agent (pid \(running.pid)) already runs this file (sha256 \(settings.sourceHash.prefix(16))…)")
                return
            }
            guard kill(running.pid, SIGHUP) == 0 else {
                let why = String(cString: strerror(errno))
                FileHandleOutput.standardError("vouch config apply: cannot signal the agent (pid \(running.pid)): \(why); run as root (sudo) or as the agent's user")
                throw ExitCode(77)
            }
            print("\(config) checks; asked the agent (pid \(running.pid)) to apply it")
            let deadline = Date().addingTimeInterval(Double(max(1, timeout)))
            let progress = ProgressLine("waiting for the agent to stop in order and start on the new file")
            defer { progress.finish() }
            while Date() < deadline {
                if let now = ControlSocket.status(socketPath: socket), now.configSha256 == settings.sourceHash {
                    progress.finish()
                    print("applied: the agent (pid \(now.pid)) runs \(config) (sha256 \(settings.sourceHash.prefix(16))…); the change is recorded in the chain")
                    return
                }
                Thread.sleep(forTimeInterval: 0.25)
            }
            progress.finish()
            FileHandleOutput.standardError(
                "vouch config apply: the agent did not come back on the new file within \(timeout) s; see its log (journalctl -u vouch) for why")
            throw ExitCode(75)
        }
    }
}
