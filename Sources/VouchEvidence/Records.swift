/// Quality of the wall clock when a record was made. Ordering never depends on it: records are
/// ordered by `rseq`, and durations come from the monotonic clock.
public enum TimeQuality: String, Sendable, Equatable, CaseIterable {
    /// The system clock is synchronised (NTP/PTP, as the kernel reports it).
    case synchronized = "sync"
    /// Nobody has set the clock since boot, or synchronisation was lost.
    case unsynchronized = "unsync"
    /// The wall clock was stepped (set) while the record's span ran: its wall times before and after
    /// the step are not comparable. The step itself is a ``ClockStep`` record.
    case stepped = "step"
}

/// When and where in the device's life a record was made.
public struct RecordStamp: Sendable, Equatable {
    /// Record sequence number: gap-free from 1 per device, across restarts. A missing `rseq` at the
    /// bank is a deleted record, whatever the batches say.
    public var rseq: Int64
    /// Boot count of the agent's data directory when the record was made.
    public var boot: Int64
    /// Monotonic clock, milliseconds since the device booted.
    public var monoMs: Int64
    /// Wall clock, milliseconds since the Unix epoch (UTC).
    public var wallMs: Int64
    public var timeQuality: TimeQuality

    public init(rseq: Int64, boot: Int64, monoMs: Int64, wallMs: Int64, timeQuality: TimeQuality) {
        self.rseq = rseq
        self.boot = boot
        self.monoMs = monoMs
        self.wallMs = wallMs
        self.timeQuality = timeQuality
    }
}

/// Statistics of one channel over one interval. Values are integers: real value = v × 10^scale.
public struct ReadingSummary: Sendable, Equatable {
    public var stamp: RecordStamp  // mono/wall are the interval start
    public var channel: String
    public var intervalMs: Int64
    public var unit: String
    public var scale: Int64
    /// Polls that produced a value.
    public var count: Int64
    /// Polls that failed (communication error): the channel was unreadable this often.
    public var errors: Int64
    public var min: Int64?
    public var max: Int64?
    public var mean: Int64?
    public var last: Int64?
    /// Stable code of the last communication error in the interval, if any (e.g. `E_MODBUS_ETIMEDOUT`).
    public var lastError: String?

    public init(
        stamp: RecordStamp, channel: String, intervalMs: Int64, unit: String, scale: Int64, count: Int64,
        errors: Int64, min: Int64?, max: Int64?, mean: Int64?, last: Int64?, lastError: String?
    ) {
        self.stamp = stamp
        self.channel = channel
        self.intervalMs = intervalMs
        self.unit = unit
        self.scale = scale
        self.count = count
        self.errors = errors
        self.min = min
        self.max = max
        self.mean = mean
        self.last = last
        self.lastError = lastError
    }
}

/// One sample in an event's evidence window. `value` is nil where the poll failed.
public struct WindowSample: Sendable, Equatable {
    public var monoMs: Int64
    public var wallMs: Int64
    public var value: Int64?
    public init(monoMs: Int64, wallMs: Int64, value: Int64?) {
        self.monoMs = monoMs
        self.wallMs = wallMs
        self.value = value
    }
}

/// A detector's finding. An event is written when it starts (`phase == .start`, end unknown) and
/// again when it ends (`phase == .end`, same `eventId`), so the bank learns of it without waiting.
public struct EventRecord: Sendable, Equatable {
    public enum Phase: String, Sendable, Equatable { case start, end }

    public var stamp: RecordStamp
    /// Identifies the event across its start and end records: `"<boot>-<startMonoMs>-<rule>-<channel>"`.
    public var eventId: String
    public var phase: Phase
    public var rule: String
    public var ruleVersion: Int64
    public var channel: String
    public var severity: String
    public var startMonoMs: Int64
    public var startWallMs: Int64
    public var endMonoMs: Int64?
    public var endWallMs: Int64?
    /// Known duration so far (start records: time from start to detection).
    public var durationMs: Int64
    public var unit: String
    public var scale: Int64
    /// Rule parameters as configured, integer-scaled like the channel.
    public var params: [String: JSONValue]
    /// What the rule compared the readings against (a fixed threshold, a learned profile…), integer-scaled
    /// like the channel; null when the rule has no baseline beyond its parameters.
    public var baseline: JSONValue
    /// Samples around the start of the event (before and after).
    public var window: [WindowSample]
    /// One line a credit officer can read.
    public var explanation: String

    public init(
        stamp: RecordStamp, eventId: String, phase: Phase, rule: String, ruleVersion: Int64, channel: String,
        severity: String, startMonoMs: Int64, startWallMs: Int64, endMonoMs: Int64?, endWallMs: Int64?,
        durationMs: Int64, unit: String, scale: Int64, params: [String: JSONValue], baseline: JSONValue = .null,
        window: [WindowSample], explanation: String
    ) {
        self.stamp = stamp
        self.eventId = eventId
        self.phase = phase
        self.rule = rule
        self.ruleVersion = ruleVersion
        self.channel = channel
        self.severity = severity
        self.startMonoMs = startMonoMs
        self.startWallMs = startWallMs
        self.endMonoMs = endMonoMs
        self.endWallMs = endWallMs
        self.durationMs = durationMs
        self.unit = unit
        self.scale = scale
        self.params = params
        self.baseline = baseline
        self.window = window
        self.explanation = explanation
    }
}

/// The record kinds of evidence format v1, each serialised as a positional JSON array whose first
/// element names the kind and whose next five are the ``RecordStamp``. The spec (EvidenceFormat.md)
/// lists every field of every kind.
public enum EvidenceRecord: Sendable, Equatable {
    case summary(ReadingSummary)
    case event(EventRecord)
    case heartbeat(Heartbeat)
    case gap(GapRecord)
    case configChange(ConfigChange)
    case action(TechnicianAction)
    case attestation(Attestation)
    case keyRotation(KeyRotation)
    case clockStep(ClockStep)
    case raw(RawSamples)

    /// Every kind name v1 defines, in the spec's order.
    public static let kinds = ["sum", "evt", "hb", "gap", "cfg", "act", "att", "key", "clk", "raw"]

    public var stamp: RecordStamp {
        get {
            switch self {
            case .summary(let r): r.stamp
            case .event(let r): r.stamp
            case .heartbeat(let r): r.stamp
            case .gap(let r): r.stamp
            case .configChange(let r): r.stamp
            case .action(let r): r.stamp
            case .attestation(let r): r.stamp
            case .keyRotation(let r): r.stamp
            case .clockStep(let r): r.stamp
            case .raw(let r): r.stamp
            }
        }
        set {
            switch self {
            case .summary(var r): r.stamp = newValue; self = .summary(r)
            case .event(var r): r.stamp = newValue; self = .event(r)
            case .heartbeat(var r): r.stamp = newValue; self = .heartbeat(r)
            case .gap(var r): r.stamp = newValue; self = .gap(r)
            case .configChange(var r): r.stamp = newValue; self = .configChange(r)
            case .action(var r): r.stamp = newValue; self = .action(r)
            case .attestation(var r): r.stamp = newValue; self = .attestation(r)
            case .keyRotation(var r): r.stamp = newValue; self = .keyRotation(r)
            case .clockStep(var r): r.stamp = newValue; self = .clockStep(r)
            case .raw(var r): r.stamp = newValue; self = .raw(r)
            }
        }
    }

    public var kind: String {
        switch self {
        case .summary: "sum"
        case .event: "evt"
        case .heartbeat: "hb"
        case .gap: "gap"
        case .configChange: "cfg"
        case .action: "act"
        case .attestation: "att"
        case .keyRotation: "key"
        case .clockStep: "clk"
        case .raw: "raw"
        }
    }

    /// Whether a disk budget may ever drop or coarsen it: only readings may go; findings and the
    /// records about the device itself never do.
    public var isReading: Bool {
        switch self {
        case .summary, .raw: true
        default: false
        }
    }

    public var json: JSONValue {
        let s = stamp
        let head: [JSONValue] = [.string(kind), .int(s.rseq), .int(s.boot), .int(s.monoMs), .int(s.wallMs), .string(s.timeQuality.rawValue)]
        let body: [JSONValue]
        switch self {
        case .summary(let r):
            body = [
                .string(r.channel), .int(r.intervalMs), .string(r.unit), .int(r.scale), .int(r.count), .int(r.errors),
                .optionalInt(r.min), .optionalInt(r.max), .optionalInt(r.mean), .optionalInt(r.last), .optionalString(r.lastError),
            ]
        case .event(let e):
            body = [
                .string(e.eventId), .string(e.phase.rawValue), .string(e.rule), .int(e.ruleVersion), .string(e.channel),
                .string(e.severity), .int(e.startMonoMs), .int(e.startWallMs), .optionalInt(e.endMonoMs),
                .optionalInt(e.endWallMs), .int(e.durationMs), .string(e.unit), .int(e.scale), .object(e.params), e.baseline,
                .array(e.window.map { [.int($0.monoMs), .int($0.wallMs), .optionalInt($0.value)] }),
                .string(e.explanation),
            ]
        case .heartbeat(let h):
            body = [.int(h.intervalMs), .int(h.uptimeMs), .int(h.backlog)]
        case .gap(let g):
            body = [
                .string(g.reason.rawValue), .optionalString(g.channel), .int(g.fromBoot), .int(g.fromMonoMs), .int(g.fromWallMs),
                .int(g.toMonoMs), .int(g.toWallMs), .int(g.missing), .string(g.detail),
            ]
        case .configChange(let c):
            body = [.string(c.configSha256), .optionalString(c.previousSha256), .string(c.source), .optionalString(c.who), .string(c.summary)]
        case .action(let a):
            body = [.string(a.action), .optionalString(a.who), .object(a.params), .string(a.explanation)]
        case .attestation(let a):
            body = [.object(a.claims)]
        case .keyRotation(let k):
            body = [k.newKey.json, .string(k.proof)]
        case .clockStep(let c):
            body = [.int(c.expectedWallMs), .int(c.stepMs), .string(c.qualityBefore.rawValue)]
        case .raw(let r):
            body = [.string(r.channel), .string(r.unit), .int(r.scale), .int(r.periodMs), .array(r.encodedValues)]
        }
        return .array(head + body)
    }

    /// The leaf bytes of the Merkle tree and the bytes stored in the outbox.
    public var canonicalBytes: [UInt8] { CanonicalJSON.encode(json) }

    public init(json: JSONValue) throws(EvidenceError) {
        var r = FieldReader(json)
        let kind = try r.string("kind")
        let stamp = RecordStamp(
            rseq: try r.int("rseq"), boot: try r.int("boot"), monoMs: try r.int("mono"), wallMs: try r.int("wall"),
            timeQuality: try r.enumeration("tq", TimeQuality.self))
        guard stamp.rseq >= 1 else { throw EvidenceError(.malformedRecord, "rseq must be ≥ 1, got \(stamp.rseq)") }
        switch kind {
        case "sum":
            self = .summary(
                ReadingSummary(
                    stamp: stamp, channel: try r.string("channel"), intervalMs: try r.int("interval_ms"),
                    unit: try r.string("unit"), scale: try r.int("scale"), count: try r.int("count"),
                    errors: try r.int("errors"), min: try r.optionalInt("min"), max: try r.optionalInt("max"),
                    mean: try r.optionalInt("mean"), last: try r.optionalInt("last"),
                    lastError: try r.optionalString("last_error")))
        case "evt":
            let eventId = try r.string("event_id")
            let phase = try r.enumeration("phase", EventRecord.Phase.self)
            let rule = try r.string("rule")
            let ruleVersion = try r.int("rule_v")
            let channel = try r.string("channel")
            let severity = try r.string("severity")
            let startMono = try r.int("start_mono")
            let startWall = try r.int("start_wall")
            let endMono = try r.optionalInt("end_mono")
            let endWall = try r.optionalInt("end_wall")
            let duration = try r.int("duration_ms")
            let unit = try r.string("unit")
            let scale = try r.int("scale")
            let params = try r.object("params")
            let baseline = try r.next("baseline")
            guard baseline.isNull || baseline.objectValue != nil else { throw r.fail("baseline", "an object or null") }
            guard let windowItems = try r.next("window").arrayValue else { throw r.fail("window", "an array") }
            var window: [WindowSample] = []
            for item in windowItems {
                guard let a = item.arrayValue, a.count == 3, let m = a[0].intValue, let w = a[1].intValue,
                    a[2].isNull || a[2].intValue != nil
                else { throw r.fail("window", "[mono, wall, value|null] samples") }
                window.append(WindowSample(monoMs: m, wallMs: w, value: a[2].intValue))
            }
            let text = try r.string("explanation")
            self = .event(
                EventRecord(
                    stamp: stamp, eventId: eventId, phase: phase, rule: rule, ruleVersion: ruleVersion, channel: channel,
                    severity: severity, startMonoMs: startMono, startWallMs: startWall, endMonoMs: endMono,
                    endWallMs: endWall, durationMs: duration, unit: unit, scale: scale, params: params, baseline: baseline, window: window,
                    explanation: text))
        case "hb":
            self = .heartbeat(Heartbeat(stamp: stamp, intervalMs: try r.int("interval_ms"), uptimeMs: try r.int("uptime_ms"), backlog: try r.int("backlog")))
        case "gap":
            self = .gap(
                GapRecord(
                    stamp: stamp, reason: try r.enumeration("reason", GapRecord.Reason.self), channel: try r.optionalString("channel"),
                    fromBoot: try r.int("from_boot"), fromMonoMs: try r.int("from_mono"), fromWallMs: try r.int("from_wall"),
                    toMonoMs: try r.int("to_mono"), toWallMs: try r.int("to_wall"), missing: try r.int("missing"), detail: try r.string("detail")))
        case "cfg":
            let hash = try r.string("config_sha256")
            guard BatchPayload.isHash(hash) else { throw r.fail("config_sha256", "64 lowercase hex digits") }
            let previous = try r.optionalString("previous_sha256")
            guard previous.map(BatchPayload.isHash) ?? true else { throw r.fail("previous_sha256", "64 lowercase hex digits or null") }
            self = .configChange(
                ConfigChange(stamp: stamp, configSha256: hash, previousSha256: previous, source: try r.string("source"), who: try r.optionalString("who"), summary: try r.string("summary")))
        case "act":
            self = .action(
                TechnicianAction(stamp: stamp, action: try r.string("action"), who: try r.optionalString("who"), params: try r.object("params"), explanation: try r.string("explanation")))
        case "att":
            self = .attestation(Attestation(stamp: stamp, claims: try r.object("claims")))
        case "key":
            let jwkValue = try r.next("new_jwk")
            let jwk: PublicJWK
            do { jwk = try PublicJWK(json: jwkValue) } catch { throw r.fail("new_jwk", "a P-256 public JWK (\(error.message))") }
            self = .keyRotation(KeyRotation(stamp: stamp, newKey: jwk, proof: try r.string("proof")))
        case "clk":
            self = .clockStep(ClockStep(stamp: stamp, expectedWallMs: try r.int("expected_wall"), stepMs: try r.int("step_ms"), qualityBefore: try r.enumeration("tq_before", TimeQuality.self)))
        case "raw":
            let channel = try r.string("channel")
            let unit = try r.string("unit")
            let scale = try r.int("scale")
            let period = try r.int("period_ms")
            guard period > 0 else { throw r.fail("period_ms", "a positive integer") }
            guard let items = try r.next("values").arrayValue, let values = RawSamples.decodeValues(items) else {
                throw r.fail("values", "an array of integers and nulls")
            }
            self = .raw(RawSamples(stamp: stamp, channel: channel, unit: unit, scale: scale, periodMs: period, values: values))
        default:
            throw EvidenceError(.malformedRecord, "unknown record kind \"\(kind)\" (v1 defines \(Self.kinds.joined(separator: ", ")))")
        }
        guard r.atEnd else { throw EvidenceError(.malformedRecord, "\(kind) record has \(r.items.count) fields, more than v1 defines") }
    }
}

extension JSONValue {
    static func optionalInt(_ v: Int64?) -> JSONValue { v.map(JSONValue.int) ?? .null }
    static func optionalString(_ v: String?) -> JSONValue { v.map(JSONValue.string) ?? .null }
}

/// Reads a positional record field by field, naming the field in every error.
struct FieldReader {
    let items: [JSONValue]
    var index = 0
    let valid: Bool

    init(_ json: JSONValue) {
        items = json.arrayValue ?? []
        valid = json.arrayValue != nil
    }

    var atEnd: Bool { index == items.count }

    func fail(_ field: String, _ expected: String) -> EvidenceError {
        EvidenceError(.malformedRecord, "record field \(index - 1) (\(field)) must be \(expected)")
    }

    mutating func next(_ field: String) throws(EvidenceError) -> JSONValue {
        guard valid else { throw EvidenceError(.malformedRecord, "a record must be a JSON array") }
        guard index < items.count else { throw EvidenceError(.malformedRecord, "record ends before field \(index) (\(field))") }
        defer { index += 1 }
        return items[index]
    }

    mutating func int(_ field: String) throws(EvidenceError) -> Int64 {
        guard let v = try next(field).intValue else { throw fail(field, "an integer") }
        return v
    }

    mutating func optionalInt(_ field: String) throws(EvidenceError) -> Int64? {
        let v = try next(field)
        if v.isNull { return nil }
        guard let i = v.intValue else { throw fail(field, "an integer or null") }
        return i
    }

    mutating func string(_ field: String) throws(EvidenceError) -> String {
        guard let v = try next(field).stringValue else { throw fail(field, "a string") }
        return v
    }

    mutating func optionalString(_ field: String) throws(EvidenceError) -> String? {
        let v = try next(field)
        if v.isNull { return nil }
        guard let s = v.stringValue else { throw fail(field, "a string or null") }
        return s
    }

    mutating func object(_ field: String) throws(EvidenceError) -> [String: JSONValue] {
        guard let v = try next(field).objectValue else { throw fail(field, "an object") }
        return v
    }

    mutating func enumeration<E: RawRepresentable<String>>(_ field: String, _: E.Type) throws(EvidenceError) -> E {
        let raw = try string(field)
        guard let v = E(rawValue: raw) else { throw fail(field, "one of the defined values, not \"\(raw)\"") }
        return v
    }
}
