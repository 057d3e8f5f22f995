import VouchCore
import VouchEvidence
import VouchUplink

/// What `vouch status` shows of a running agent (control op `status`). Its JSON shape is what
/// `vouch status --json` prints, held to a snapshot by the tests: add fields, never rename them.
public struct AgentStatus: Codable, Sendable, Equatable {
    public struct Clock: Codable, Sendable, Equatable {
        public var wallMs: Int64
        /// `sync` (NTP-disciplined), `unsync`, or `step` (it stepped recently).
        public var quality: String
    }

    public struct Channel: Codable, Sendable, Equatable {
        public var id: String
        public var unit: String
        /// The last good reading: value × 10^scale in `unit` (nil before the first one, or for text).
        public var value: Int64?
        public var scale: Int64
        public var text: String?
        public var readWallMs: Int64?
        /// `ok`, `failing` (its last polls failed) or `waiting` (no reading yet).
        public var quality: String
        public var failingSinceWallMs: Int64?
        public var failures: Int64?
        public var lastError: String?
    }

    public struct Rule: Codable, Sendable, Equatable {
        public var id: String
        public var kind: String
        public var channel: String
        /// `quiet`, or `finding` while an event of the rule is open.
        public var state: String
        public var eventId: String?
        public var severity: String?
        public var sinceWallMs: Int64?
    }

    public struct Outbox: Codable, Sendable, Equatable {
        public var records: Int64
        public var unsealedRecords: Int64
        public var batches: Int64
        public var undeliveredBatches: Int64
        public var lastBseq: Int64
    }

    public var device: String
    public var version: String
    /// The agent's process (what SIGHUP goes to) and the SHA-256 of the config file it runs.
    public var pid: Int32
    public var configSha256: String
    public var startedWallMs: Int64
    public var uptimeMs: Int64
    public var bootCount: Int64
    public var clock: Clock
    public var channels: [Channel]
    public var rules: [Rule]
    public var openReleases: Int
    public var outbox: Outbox?
    /// Why the outbox could not be read, when it could not.
    public var outboxError: String?
    public var uplink: Uplink.DeliveryState
}

/// The pipeline's part of ``AgentStatus``.
public struct PipelineStatus: Sendable, Equatable {
    public var clock: AgentStatus.Clock
    public var channels: [AgentStatus.Channel]
    public var rules: [AgentStatus.Rule]
    public var openReleases: Int
}

// Absent values are written as null, not left out: `vouch status --json` keeps one shape, whatever
// the agent's state, so a script can rely on every key being there.
extension AgentStatus.Channel {
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(unit, forKey: .unit)
        try c.encode(value, forKey: .value)
        try c.encode(scale, forKey: .scale)
        try c.encode(text, forKey: .text)
        try c.encode(readWallMs, forKey: .readWallMs)
        try c.encode(quality, forKey: .quality)
        try c.encode(failingSinceWallMs, forKey: .failingSinceWallMs)
        try c.encode(failures, forKey: .failures)
        try c.encode(lastError, forKey: .lastError)
    }
}

extension AgentStatus.Rule {
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(kind, forKey: .kind)
        try c.encode(channel, forKey: .channel)
        try c.encode(state, forKey: .state)
        try c.encode(eventId, forKey: .eventId)
        try c.encode(severity, forKey: .severity)
        try c.encode(sinceWallMs, forKey: .sinceWallMs)
    }
}

extension AgentStatus {
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(device, forKey: .device)
        try c.encode(version, forKey: .version)
        try c.encode(pid, forKey: .pid)
        try c.encode(configSha256, forKey: .configSha256)
        try c.encode(startedWallMs, forKey: .startedWallMs)
        try c.encode(uptimeMs, forKey: .uptimeMs)
        try c.encode(bootCount, forKey: .bootCount)
        try c.encode(clock, forKey: .clock)
        try c.encode(channels, forKey: .channels)
        try c.encode(rules, forKey: .rules)
        try c.encode(openReleases, forKey: .openReleases)
        try c.encode(outbox, forKey: .outbox)
        try c.encode(outboxError, forKey: .outboxError)
        try c.encode(StatusDelivery(uplink), forKey: .uplink)
    }
}

/// The uplink's ``Uplink/DeliveryState`` with its absent values as null.
struct StatusDelivery: Encodable {
    let state: Uplink.DeliveryState
    init(_ state: Uplink.DeliveryState) { self.state = state }

    enum CodingKeys: String, CodingKey {
        case lastAttemptWallMs, lastReceiptBseq, lastReceiptWallMs, lastError, failures
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(state.lastAttemptWallMs, forKey: .lastAttemptWallMs)
        try c.encode(state.lastReceiptBseq, forKey: .lastReceiptBseq)
        try c.encode(state.lastReceiptWallMs, forKey: .lastReceiptWallMs)
        try c.encode(state.lastError, forKey: .lastError)
        try c.encode(state.failures, forKey: .failures)
    }
}
