import Foundation
import VouchCore

/// What SIGHUP (and `vouch config apply`) do with the config file: check it whole first, exactly as a
/// start would (every error, TLS files loaded); apply it only when it checks and differs from the
/// running one. Applying means a restart in place: the agent stops in order (summaries stored, the
/// last batch sealed), then starts again on the new file, which records the change (a `cfg` record
/// naming the old and new hashes) in the chain. It is never half on the old config and half on the new.
public enum ConfigReload {
    public enum Decision: Sendable, Equatable {
        /// The file does not check: the agent keeps running on the configuration it has.
        case refused(String)
        /// Same bytes as the running configuration: nothing to do.
        case unchanged(sha256: String)
        /// Checks, and differs: restart in place to apply it.
        case apply(from: String, to: String, summary: String)
    }

    public static func decide(running: AgentConfig, path: String) -> Decision {
        let next: AgentConfig
        do { next = try ConfigLoader.load(path: path) } catch {
            return .refused("\(error)")
        }
        do { try Agent.checkBankTLS(next.bank) } catch { return .refused("\(path): \(error)") }
        if next.sourceHash == running.sourceHash { return .unchanged(sha256: next.sourceHash) }
        return .apply(
            from: running.sourceHash, to: next.sourceHash,
            summary: "\(next.channels.count) channel(s) on \(next.modbusDevices.count) Modbus device(s), \(next.gpio.inputs.count) GPIO input(s), \(next.detectRules.count + next.stoppageRules.count) rule(s)")
    }
}
