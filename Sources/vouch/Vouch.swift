import ArgumentParser
import Logging

@main
struct Vouch: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vouch",
        abstract: "The Vouch gateway agent and the technician's tool.",
        discussion: """
            Reads sensors, detects production stoppages, and delivers signed, hash-chained evidence to the bank.

            Examples:
              vouch config check /etc/vouch/vouch.toml
              vouch enroll --config /etc/vouch/vouch.toml > enrollment.json
              vouch run --config /etc/vouch/vouch.toml
              vouch modbus scan --url tcp://192.168.1.20 --units 1-10
              vouch release open --for 2h --reason "sale to Koné Ltd, invoice 2291"
            """,
        subcommands: [Run.self, Status.self, DoctorCommand.self, ConfigCommand.self, Enroll.self, EvidenceCommand.self, DetectCommand.self, GPIOCommand.self, ModbusCommand.self, ReleaseCommand.self])
}

enum Logs {
    /// swift-log to stderr (journald adds its own timestamps); called once, by the executable only.
    static func bootstrap(level: Logger.Level) {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
    }
}
