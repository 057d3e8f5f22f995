import ArgumentParser
import Foundation
import VouchAgent
import VouchCore
import VouchStore

/// What the read commands (status, sensors, events, outbox, doctor) share.
enum ReadCommands {
    /// The config, or exit 78 with every error it has.
    static func config(_ path: String) throws -> AgentConfig {
        do { return try ConfigLoader.load(path: path) } catch {
            FileHandleOutput.standardError("\(error)")
            throw ExitCode(78)
        }
    }

    /// The outbox, read-only (safe while the agent writes it); exit 66 when the agent never ran with
    /// this config, 74 when the file cannot be read.
    static func outbox(_ settings: AgentConfig, config: String, command: String) throws -> Outbox {
        let path = settings.device.dataDir + "/outbox.sqlite"
        guard FileManager.default.fileExists(atPath: path) else {
            FileHandleOutput.standardError("vouch \(command): no outbox at \(path) yet: the agent has not run with \(config)")
            throw ExitCode(66)
        }
        do { return try Outbox(path: path, readOnly: true) } catch {
            FileHandleOutput.standardError("vouch \(command): \(error)")
            throw ExitCode(74)
        }
    }
}

/// How every `--json` prints its document: one line, keys sorted (so output diffs and snapshots are stable).
enum JSONOutput {
    static func print(_ object: [String: Any]) {
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else { return }
        Swift.print(String(decoding: data, as: UTF8.self))
    }
}
