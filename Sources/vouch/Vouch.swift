import Foundation
import ArgumentParser
import Logging
import VouchAgent
import VouchCore

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
        version: VouchCoreInfo.agentVersion,
        subcommands: [Run.self, Status.self, Sensors.self, EventsCommand.self, OutboxCommand.self, DoctorCommand.self, ConfigCommand.self, Enroll.self, EvidenceCommand.self, DetectCommand.self, GPIOCommand.self, ModbusCommand.self, ReleaseCommand.self])
}

enum Logs {
    /// swift-log to stderr: with syslog priorities and no timestamps when stderr is the journal
    /// (``JournalLogHandler``), swift-log's own format elsewhere; called once, by the executable only.
    static func bootstrap(level: Logger.Level) {
        let journal = JournalLogHandler.stderrIsJournal(ProcessInfo.processInfo.environment)
        LoggingSystem.bootstrap { label in
            if journal {
                var handler = JournalLogHandler(label: label)
                handler.logLevel = level
                return handler
            }
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
    }
}
