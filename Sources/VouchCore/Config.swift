import Foundation
import VouchEvidence

/// The agent's whole configuration, validated. Built only by ``ConfigLoader``; every value here has
/// passed its range check, and every channel a rule names exists.
public struct AgentConfig: Sendable, Equatable {
    public var device: DeviceSettings
    public var bank: BankSettings
    public var shift: ShiftCalendar
    /// Business hours, holidays, maintenance windows.
    public var calendar: CalendarSettings = CalendarSettings()
    public var evidence: EvidenceSettings
    public var modbusDevices: [ModbusDeviceSettings]
    public var gpio: GPIOSettings = GPIOSettings()
    public var stoppageRules: [StoppageRuleSettings]
    /// `[[detect]]` rules.
    public var detectRules: [DetectRuleSettings] = []
    /// `[release]`: how release windows may be opened.
    public var release: ReleaseSettings = ReleaseSettings()
    /// `[metrics] listen`: where the agent serves Prometheus text metrics; nil (the default): nowhere.
    public var metrics: MetricsSettings?
    /// SHA-256 (hex) of the config file's bytes, as recorded in evidence.
    public var sourceHash: String
    /// The file it was read from.
    public var sourceFile: String = ""

    /// All Modbus channels, in config order.
    public var channels: [ModbusChannelSettings] { modbusDevices.flatMap(\.channels) }

    /// Every channel the pipeline summarises: Modbus channels, then GPIO inputs, in config order.
    public var allChannels: [ChannelDescriptor] {
        modbusDevices.flatMap { d in
            d.channels.map { ChannelDescriptor(id: $0.id, unit: $0.unit, scaleExponent: $0.scaleExponent, isNumeric: $0.dataType.isNumeric, period: d.pollInterval) }
        }
            + gpio.inputs.map { ChannelDescriptor(id: $0.id, unit: $0.signal.unit, scaleExponent: $0.signal.scaleExponent, isNumeric: true, period: $0.sampleInterval) }
    }
}

/// `[release]`: the bounds on a release window (`vouch release open`), a period during which pledged
/// stock may leave without an alarm. The bank sets them with the borrower; every window is a record.
public struct ReleaseSettings: Sendable, Equatable {
    /// The longest window one `vouch release open` may ask for.
    public var maxDuration: Duration
    public static let defaultMaxDuration: Duration = .seconds(12 * 3_600)
    /// Bounds of `max_duration` itself.
    public static let maxDurationRange: ClosedRange<Duration> = .seconds(60) ... .seconds(7 * 24 * 3_600)

    public init(maxDuration: Duration = ReleaseSettings.defaultMaxDuration) { self.maxDuration = maxDuration }
}

public struct DeviceSettings: Sendable, Equatable {
    /// Stable identity of this gateway at the bank, e.g. "acme-press-1".
    public var id: String
    public var keyFile: String
    public var dataDir: String

    public init(id: String, keyFile: String, dataDir: String) {
        self.id = id
        self.keyFile = keyFile
        self.dataDir = dataDir
    }
}

public struct BankSettings: Sendable, Equatable {
    /// Base URL of `vouch-bank`, e.g. "https://bank.example:8443".
    public var url: String
    public var requestTimeout: Duration
    /// The bank's receipt-signing key (from `vouch-bank key`). When set, a receipt whose signature does not
    /// verify with it is refused and the batch stays undelivered; when nil, receipts are stored unverified.
    public var receiptKey: PublicJWK?
    /// The pinned CA and the client certificate for HTTPS (`ca_file`, `client_cert`, `client_key`).
    public var tls: BankTLSSettings

    public init(url: String, requestTimeout: Duration, receiptKey: PublicJWK? = nil, tls: BankTLSSettings = BankTLSSettings()) {
        self.url = url
        self.requestTimeout = requestTimeout
        self.receiptKey = receiptKey
        self.tls = tls
    }
}

/// TLS files for the uplink, as `[bank]` names them. The loader has checked that each file exists and holds
/// PEM blocks of the right kind, that the key is not accessible by others, and that they go with an https://
/// url; the uplink parses them fully when it builds its HTTP client.
public struct BankTLSSettings: Sendable, Equatable {
    /// `ca_file`: PEM CA certificate(s). When set, only these may sign the bank's certificate (pinned): the
    /// system trust store is not used. When nil, the system trust store decides.
    public var caFile: String?
    /// `client_cert`: PEM certificate chain presented to the bank (mTLS); set together with `clientKey`.
    public var clientCertificate: String?
    /// `client_key`: the PEM private key of `clientCertificate`.
    public var clientKey: String?

    public init(caFile: String? = nil, clientCertificate: String? = nil, clientKey: String? = nil) {
        self.caFile = caFile
        self.clientCertificate = clientCertificate
        self.clientKey = clientKey
    }

    /// True when nothing is set: the uplink then uses the shared HTTP client and the system trust store.
    public var isEmpty: Bool { caFile == nil && clientCertificate == nil && clientKey == nil }
}

public struct EvidenceSettings: Sendable, Equatable {
    /// Length of one reading-summary interval per channel.
    public var summaryInterval: Duration
    /// How often outstanding records are sealed into a batch and sent.
    public var batchInterval: Duration
    public var maxBatchRecords: Int
    /// How often the agent records a heartbeat; the bank reports the device silent after twice this
    /// without a batch.
    public var heartbeatInterval: Duration
    /// How long a batch is kept in the outbox after the bank's receipt for it (then pruned). Undelivered
    /// batches and unsealed records are never pruned.
    public var retention: Duration
    public static let defaultRetention: Duration = .seconds(30 * 86_400)
    /// The most the outbox may hold (database pages in use). Past it, unsealed readings are degraded
    /// (raw samples dropped, then summaries merged into coarser ones), each step a signed gap; events,
    /// gaps and configuration records never are.
    public var diskBudgetBytes: Int64
    public static let defaultDiskBudget: Int64 = 1_000_000_000
    /// Below this a week of summaries of a small site does not fit: an error, not a silent degradation.
    public static let minimumDiskBudget: Int64 = 1_000_000
    /// Also record every sample (a `raw` record per channel and summary interval), not only summaries.
    /// Raw samples are the first thing the disk budget drops.
    public var rawSamples: Bool

    public init(
        summaryInterval: Duration, batchInterval: Duration, maxBatchRecords: Int, heartbeatInterval: Duration = .seconds(300),
        retention: Duration = EvidenceSettings.defaultRetention, diskBudgetBytes: Int64 = EvidenceSettings.defaultDiskBudget, rawSamples: Bool = false
    ) {
        self.diskBudgetBytes = diskBudgetBytes
        self.rawSamples = rawSamples
        self.summaryInterval = summaryInterval
        self.batchInterval = batchInterval
        self.maxBatchRecords = maxBatchRecords
        self.heartbeatInterval = heartbeatInterval
        self.retention = retention
    }
}

public struct StoppageRuleSettings: Sendable, Equatable {
    public var id: String
    public var channel: String
    /// Engineering units of the channel (e.g. W).
    public var below: Double
    public var minDuration: Duration
    public var severity: String
    /// Samples kept before and after the start of a stoppage as evidence.
    public var windowSamples: Int

    public init(id: String, channel: String, below: Double, minDuration: Duration, severity: String, windowSamples: Int) {
        self.id = id
        self.channel = channel
        self.below = below
        self.minDuration = minDuration
        self.severity = severity
        self.windowSamples = windowSamples
    }
}

public enum Weekday: String, Sendable, Equatable, CaseIterable, Comparable {
    case mon, tue, wed, thu, fri, sat, sun
    /// "mon" or "monday", any case.
    public init?(configName: String) {
        let full = ["mon": "monday", "tue": "tuesday", "wed": "wednesday", "thu": "thursday", "fri": "friday", "sat": "saturday", "sun": "sunday"]
        let lower = configName.lowercased()
        guard let match = full.first(where: { $0.key == lower || $0.value == lower }) else { return nil }
        self.init(rawValue: match.key)
    }

    /// Foundation's weekday numbering: 1 = Sunday … 7 = Saturday.
    init?(gregorian: Int) {
        let order: [Weekday] = [.sun, .mon, .tue, .wed, .thu, .fri, .sat]
        guard (1...7).contains(gregorian) else { return nil }
        self = order[gregorian - 1]
    }
    public static func < (a: Self, b: Self) -> Bool {
        (allCases.firstIndex(of: a) ?? 0) < (allCases.firstIndex(of: b) ?? 0)
    }
}

/// Working hours: on `days`, from `startMinute` to `endMinute` (minutes after local midnight). An end
/// at or before the start is a shift that runs past midnight into the next day.
public struct ShiftCalendar: Sendable, Equatable {
    public var timeZoneID: String
    public var days: Set<Weekday>
    public var startMinute: Int
    public var endMinute: Int

    public init(timeZoneID: String, days: Set<Weekday>, startMinute: Int, endMinute: Int) {
        self.timeZoneID = timeZoneID
        self.days = days
        self.startMinute = startMinute
        self.endMinute = endMinute
    }

    public func contains(wallMs: Int64) -> Bool {
        guard let zone = TimeZone(identifier: timeZoneID) else { return false }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        let date = Date(timeIntervalSince1970: Double(wallMs) / 1000)
        let parts = calendar.dateComponents([.weekday, .hour, .minute], from: date)
        guard let weekdayNumber = parts.weekday, let today = Weekday(gregorian: weekdayNumber) else { return false }
        let minute = (parts.hour ?? 0) * 60 + (parts.minute ?? 0)
        if startMinute < endMinute {
            return days.contains(today) && minute >= startMinute && minute < endMinute
        }
        // Overnight shift: the evening part belongs to today, the early part to yesterday's shift.
        let yesterday = Weekday(gregorian: weekdayNumber == 1 ? 7 : weekdayNumber - 1)
        return (days.contains(today) && minute >= startMinute) || (yesterday.map(days.contains) == true && minute < endMinute)
    }
}

/// `[metrics]`: Prometheus text metrics on a TCP port, for a site's own monitoring. Off unless set;
/// `listen` is `HOST:PORT` (127.0.0.1 keeps it on the gateway).
public struct MetricsSettings: Sendable, Equatable {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }
}
