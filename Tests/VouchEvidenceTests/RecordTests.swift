import Testing
import VouchEvidence

enum Fixtures {
    static let summary = EvidenceRecord.summary(
        ReadingSummary(
            stamp: RecordStamp(rseq: 1, boot: 3, monoMs: 1_000, wallMs: 1_700_000_000_000, timeQuality: .synchronized),
            channel: "meter.power", intervalMs: 60_000, unit: "W", scale: -1, count: 60, errors: 0, min: 10, max: 20,
            mean: 15, last: 18, lastError: nil))

    static let failedSummary = EvidenceRecord.summary(
        ReadingSummary(
            stamp: RecordStamp(rseq: 2, boot: 3, monoMs: 61_000, wallMs: 1_700_000_060_000, timeQuality: .unsynchronized),
            channel: "meter.power", intervalMs: 60_000, unit: "W", scale: -1, count: 0, errors: 60, min: nil, max: nil,
            mean: nil, last: nil, lastError: "E_MODBUS_ETIMEDOUT"))

    static let event = EvidenceRecord.event(
        EventRecord(
            stamp: RecordStamp(rseq: 3, boot: 3, monoMs: 76_000, wallMs: 1_700_000_075_000, timeQuality: .synchronized),
            eventId: "3-61000-press-stop-meter.power", phase: .start, rule: "press-stop", ruleVersion: 1,
            channel: "meter.power", severity: "high", startMonoMs: 61_000, startWallMs: 1_700_000_060_000,
            endMonoMs: nil, endWallMs: nil, durationMs: 15_000, unit: "W", scale: -1,
            params: ["below": 5000, "for_ms": 15_000, "note": nil, "nested": ["list": [1, "two", nil, true]]],
            baseline: ["threshold": 5000],
            window: [
                WindowSample(monoMs: 59_000, wallMs: 1_700_000_058_000, value: 6000),
                WindowSample(monoMs: 60_000, wallMs: 1_700_000_059_000, value: nil),
                WindowSample(monoMs: 61_000, wallMs: 1_700_000_060_000, value: -3),
            ],
            explanation: "Power below 500.0 W for 15 s"))

    static let endedEvent = EvidenceRecord.event(
        EventRecord(
            stamp: RecordStamp(rseq: 4, boot: 3, monoMs: 200_000, wallMs: 1_700_000_199_000, timeQuality: .synchronized),
            eventId: "3-61000-press-stop-meter.power", phase: .end, rule: "press-stop", ruleVersion: 1,
            channel: "meter.power", severity: "high", startMonoMs: 61_000, startWallMs: 1_700_000_060_000,
            endMonoMs: 200_000, endWallMs: 1_700_000_199_000, durationMs: 139_000, unit: "W", scale: -1,
            params: [:], window: [], explanation: "ended"))

    /// The readings and findings of one interval: what the older tests were written against.
    static let all = [summary, failedSummary, event, endedEvent]

    static let hashA = String(repeating: "ab", count: 32)
    static let hashB = String(repeating: "cd", count: 32)
    static let hashC = String(repeating: "0f", count: 32)

    static let heartbeat = EvidenceRecord.heartbeat(
        Heartbeat(
            stamp: RecordStamp(rseq: 5, boot: 3, monoMs: 300_000, wallMs: 1_700_000_299_000, timeQuality: .synchronized),
            intervalMs: 300_000, uptimeMs: 299_000, backlog: 2))

    static let agentDownGap = EvidenceRecord.gap(
        GapRecord(
            stamp: RecordStamp(rseq: 6, boot: 4, monoMs: 12_000, wallMs: 1_700_003_600_000, timeQuality: .unsynchronized),
            reason: .agentDown, channel: nil, fromBoot: 3, fromMonoMs: 300_000, fromWallMs: 1_700_000_299_000, toMonoMs: 12_000,
            toWallMs: 1_700_003_600_000, missing: 3301, detail: "agent not running"))

    static let sensorGap = EvidenceRecord.gap(
        GapRecord(
            stamp: RecordStamp(rseq: 7, boot: 4, monoMs: 80_000, wallMs: 1_700_003_668_000, timeQuality: .stepped),
            reason: .sensorUnreachable, channel: "meter.power", fromBoot: 4, fromMonoMs: 13_000, fromWallMs: 1_700_003_601_000,
            toMonoMs: 80_000, toWallMs: 1_700_003_668_000, missing: 67, detail: "meter.power did not answer for 67 s"))

    static let configChange = EvidenceRecord.configChange(
        ConfigChange(
            stamp: RecordStamp(rseq: 8, boot: 4, monoMs: 12_000, wallMs: 1_700_003_600_000, timeQuality: .synchronized),
            configSha256: hashA, previousSha256: hashB, source: "/etc/vouch/vouch.toml", who: "j.doe", summary: "configuration changed"))

    static let firstConfig = EvidenceRecord.configChange(
        ConfigChange(
            stamp: RecordStamp(rseq: 1, boot: 1, monoMs: 5_000, wallMs: 1_699_000_000_000, timeQuality: .unsynchronized),
            configSha256: hashA, previousSha256: nil, source: "vouch.toml", who: nil, summary: "first configuration"))

    static let action = EvidenceRecord.action(
        TechnicianAction(
            stamp: RecordStamp(rseq: 9, boot: 4, monoMs: 20_000, wallMs: 1_700_003_608_000, timeQuality: .synchronized),
            action: "release_open", who: "j.doe", params: ["minutes": 30, "reason": "maintenance"],
            explanation: "release window opened for 30 min"))

    static let bootID = "6f1c2a9e-3b7d-4e21-9c0a-5d8e7f6a1b2c"
    /// base64url (no padding) of the UUID's 16 bytes, computed outside Swift (Python `uuid` + `base64`).
    static let bootSeed = "bxwqnjt9TiGcCl2Of2obLA"

    static let attestation = EvidenceRecord.attestation(
        Attestation(
            stamp: RecordStamp(rseq: 10, boot: 4, monoMs: 12_000, wallMs: 1_700_003_600_000, timeQuality: .synchronized),
            bootCount: 4, bootID: bootID, uptimeSeconds: 12, softwareVersion: "0.1.0", binarySha256: hashA, configSha256: hashB,
            keyProtection: .softwareFile, keyID: "kid-1"))

    /// RFC 7515 Appendix A.3's ES256 public key: a fixed key, so the pinned text cannot drift.
    static let rfcKey = try! PublicJWK(
        json: ["kty": "EC", "crv": "P-256", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"])
    static let proofText = "eyJhbGciOiJFUzI1NiJ9.eyJ4IjoxfQ.c2lnbmF0dXJl"

    static let keyRotation = EvidenceRecord.keyRotation(
        KeyRotation(
            stamp: RecordStamp(rseq: 11, boot: 4, monoMs: 12_000, wallMs: 1_700_003_600_000, timeQuality: .synchronized),
            newKey: rfcKey, proof: proofText))

    static let clockStep = EvidenceRecord.clockStep(
        ClockStep(
            stamp: RecordStamp(rseq: 12, boot: 4, monoMs: 40_000, wallMs: 1_700_004_228_000, timeQuality: .synchronized),
            expectedWallMs: 1_700_003_628_000, stepMs: 600_000, qualityBefore: .unsynchronized))

    static let raw = EvidenceRecord.raw(
        RawSamples(
            stamp: RecordStamp(rseq: 13, boot: 4, monoMs: 41_000, wallMs: 1_700_004_229_000, timeQuality: .synchronized),
            channel: "meter.power", unit: "W", scale: -1, periodMs: 100, values: [5000, 5003, nil, 4990, 4990, nil]))

    /// At least one record of every kind v1 defines.
    static let everyKind = all + [
        heartbeat, agentDownGap, sensorGap, configChange, firstConfig, action, attestation, keyRotation, clockStep, raw,
    ]
}

/// The exact text of each fixture: the format is positional, so a field moved is a format break.
struct PinnedRecord: Sendable, CustomTestStringConvertible {
    let record: EvidenceRecord
    let text: String
    var testDescription: String { String(text.prefix(40)) }
}

@Suite struct RecordTests {
    @Test(arguments: Fixtures.everyKind)
    func jsonRoundTrips(_ record: EvidenceRecord) throws {
        #expect(try EvidenceRecord(json: record.json) == record)
        // Through bytes too, as the bank receives them.
        #expect(try EvidenceRecord(json: CanonicalJSON.decode(record.canonicalBytes)) == record)
        #expect(CanonicalJSON.encode(try CanonicalJSON.decode(record.canonicalBytes)) == record.canonicalBytes)
        #expect(record.json.arrayValue?.first == .string(record.kind))
    }

    @Test func fixturesCoverEveryKindTheFormatDefines() {
        #expect(EvidenceRecord.kinds == ["sum", "evt", "hb", "gap", "cfg", "act", "att", "key", "clk", "raw"])
        #expect(Set(Fixtures.everyKind.map(\.kind)) == Set(EvidenceRecord.kinds))
    }

    @Test func onlyReadingsAreReadings() {
        for record in Fixtures.everyKind {
            #expect(record.isReading == (record.kind == "sum" || record.kind == "raw"), "\(record.kind)")
        }
    }

    @Test(arguments: Fixtures.everyKind)
    func stampCanBeReplacedOnEveryKind(_ record: EvidenceRecord) throws {
        var copy = record
        let stamp = RecordStamp(rseq: 99, boot: 7, monoMs: 123, wallMs: 456, timeQuality: .stepped)
        copy.stamp = stamp
        #expect(copy.stamp == stamp)
        #expect(copy.kind == record.kind)
        let head = Array(try #require(copy.json.arrayValue).prefix(6))
        #expect(head == [.string(record.kind), 99, 7, 123, 456, "step"])
        // Only the head changed.
        #expect(Array(copy.json.arrayValue!.dropFirst(6)) == Array(record.json.arrayValue!.dropFirst(6)))
        #expect(try EvidenceRecord(json: copy.json) == copy)
    }

    static let pinned: [PinnedRecord] = [
        PinnedRecord(
            record: Fixtures.summary,
            text: #"["sum",1,3,1000,1700000000000,"sync","meter.power",60000,"W",-1,60,0,10,20,15,18,null]"#),
        PinnedRecord(
            record: Fixtures.failedSummary,
            text: #"["sum",2,3,61000,1700000060000,"unsync","meter.power",60000,"W",-1,0,60,null,null,null,null,"E_MODBUS_ETIMEDOUT"]"#),
        PinnedRecord(
            record: Fixtures.event,
            text: #"["evt",3,3,76000,1700000075000,"sync","3-61000-press-stop-meter.power","start","press-stop",1,"meter.power","high",61000,1700000060000,null,null,15000,"W",-1,{"below":5000,"for_ms":15000,"nested":{"list":[1,"two",null,true]},"note":null},{"threshold":5000},[[59000,1700000058000,6000],[60000,1700000059000,null],[61000,1700000060000,-3]],"Power below 500.0 W for 15 s"]"#),
        PinnedRecord(
            record: Fixtures.endedEvent,
            text: #"["evt",4,3,200000,1700000199000,"sync","3-61000-press-stop-meter.power","end","press-stop",1,"meter.power","high",61000,1700000060000,200000,1700000199000,139000,"W",-1,{},null,[],"ended"]"#),
        PinnedRecord(record: Fixtures.heartbeat, text: #"["hb",5,3,300000,1700000299000,"sync",300000,299000,2]"#),
        PinnedRecord(
            record: Fixtures.agentDownGap,
            text: #"["gap",6,4,12000,1700003600000,"unsync","agent_down",null,3,300000,1700000299000,12000,1700003600000,3301,"agent not running"]"#),
        PinnedRecord(
            record: Fixtures.sensorGap,
            text: #"["gap",7,4,80000,1700003668000,"step","sensor_unreachable","meter.power",4,13000,1700003601000,80000,1700003668000,67,"meter.power did not answer for 67 s"]"#),
        PinnedRecord(
            record: Fixtures.configChange,
            text: #"["cfg",8,4,12000,1700003600000,"sync","\#(Fixtures.hashA)","\#(Fixtures.hashB)","/etc/vouch/vouch.toml","j.doe","configuration changed"]"#),
        PinnedRecord(
            record: Fixtures.firstConfig,
            text: #"["cfg",1,1,5000,1699000000000,"unsync","\#(Fixtures.hashA)",null,"vouch.toml",null,"first configuration"]"#),
        PinnedRecord(
            record: Fixtures.action,
            text: #"["act",9,4,20000,1700003608000,"sync","release_open","j.doe",{"minutes":30,"reason":"maintenance"},"release window opened for 30 min"]"#),
        PinnedRecord(
            record: Fixtures.attestation,
            text: #"["att",10,4,12000,1700003600000,"sync",{"bootcount":4,"bootseed":"bxwqnjt9TiGcCl2Of2obLA","swname":"vouch","swversion":["0.1.0"],"uptime":12,"vouch.bin_sha256":"\#(Fixtures.hashA)","vouch.cfg_sha256":"\#(Fixtures.hashB)","vouch.keyprot":"software-file","vouch.kid":"kid-1"}]"#),
        PinnedRecord(
            record: Fixtures.keyRotation,
            text: #"["key",11,4,12000,1700003600000,"sync",{"crv":"P-256","kty":"EC","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},"eyJhbGciOiJFUzI1NiJ9.eyJ4IjoxfQ.c2lnbmF0dXJl"]"#),
        PinnedRecord(record: Fixtures.clockStep, text: #"["clk",12,4,40000,1700004228000,"sync",1700003628000,600000,"unsync"]"#),
        PinnedRecord(record: Fixtures.raw, text: #"["raw",13,4,41000,1700004229000,"sync","meter.power","W",-1,100,[5000,3,null,-13,0,null]]"#),
    ]

    @Test(arguments: pinned)
    func everyKindIsAPinnedPositionalArray(_ p: PinnedRecord) throws {
        #expect(CanonicalJSON.string(p.record.json) == p.text)
        #expect(p.record.canonicalBytes == Array(p.text.utf8))
        // And the pinned text reads back as the same record.
        #expect(try EvidenceRecord(json: CanonicalJSON.decode(Array(p.text.utf8))) == p.record)
    }

    @Test func pinnedTableCoversEveryKind() {
        #expect(Set(Self.pinned.map(\.record.kind)) == Set(EvidenceRecord.kinds))
        #expect(Fixtures.summary.kind == "sum")
        #expect(Fixtures.event.kind == "evt")
        #expect(Fixtures.event.stamp.rseq == 3)
    }

    static func replacing(_ record: EvidenceRecord, at index: Int, with value: JSONValue) -> JSONValue {
        var items = record.json.arrayValue!
        items[index] = value
        return .array(items)
    }

    static let summaryFields = [
        "kind", "rseq", "boot", "mono", "wall", "tq", "channel", "interval_ms", "unit", "scale", "count", "errors",
        "min", "max", "mean", "last", "last_error",
    ]
    static let eventFields = [
        "kind", "rseq", "boot", "mono", "wall", "tq", "event_id", "phase", "rule", "rule_v", "channel", "severity",
        "start_mono", "start_wall", "end_mono", "end_wall", "duration_ms", "unit", "scale", "params", "baseline", "window",
        "explanation",
    ]

    /// A value of the wrong type for each field: a string where an integer is due and vice versa.
    static func wrongValue(for original: JSONValue, field: String) -> JSONValue {
        if field == "last_error" { return .int(7) }  // null in the fixture, but a string would be valid
        switch original {
        case .string: return .int(7)
        case .int, .null: return .string("7")
        case .object: return .array([])
        case .array: return .object([:])
        case .bool: return .string("x")
        }
    }

    @Test(arguments: Array(1..<summaryFields.count))
    func summaryFieldOfWrongTypeIsNamed(_ index: Int) {
        let original = Fixtures.summary.json.arrayValue![index]
        let json = Self.replacing(Fixtures.summary, at: index, with: Self.wrongValue(for: original, field: Self.summaryFields[index]))
        let error = evidenceError { try EvidenceRecord(json: json) }
        #expect(error?.code == .malformedRecord)
        #expect(error?.message.contains("(\(Self.summaryFields[index]))") == true, "\(String(describing: error))")
    }

    @Test(arguments: Array(1..<eventFields.count))
    func eventFieldOfWrongTypeIsNamed(_ index: Int) {
        let original = Fixtures.event.json.arrayValue![index]
        let json = Self.replacing(Fixtures.event, at: index, with: Self.wrongValue(for: original, field: Self.eventFields[index]))
        let error = evidenceError { try EvidenceRecord(json: json) }
        #expect(error?.code == .malformedRecord)
        #expect(error?.message.contains("(\(Self.eventFields[index]))") == true, "\(String(describing: error))")
    }

    @Test func eventFieldCountMatchesTheFieldTable() {
        #expect(Fixtures.event.json.arrayValue?.count == Self.eventFields.count)
        #expect(Fixtures.summary.json.arrayValue?.count == Self.summaryFields.count)
    }

    @Test func eventBaselineIsAnObjectOrNull() throws {
        let index = Self.eventFields.firstIndex(of: "baseline")!
        #expect(Fixtures.event.json.arrayValue?[index] == ["threshold": 5000])
        #expect(Fixtures.endedEvent.json.arrayValue?[index] == .null)
        // A null baseline reads back as null (the default).
        guard case .event(let e) = try EvidenceRecord(json: Self.replacing(Fixtures.event, at: index, with: nil)) else {
            Issue.record("not an event")
            return
        }
        #expect(e.baseline == .null)
        for bad: JSONValue in ["threshold", 5000, [5000], true] {
            let error = evidenceError { try EvidenceRecord(json: Self.replacing(Fixtures.event, at: index, with: bad)) }
            #expect(error?.code == .malformedRecord)
            #expect(error?.message.contains("(baseline)") == true, "\(bad)")
            #expect(error?.message.contains("an object or null") == true, "\(bad)")
        }
    }

    @Test func nullIsRefusedWhereAValueIsRequired() {
        for index in [1, 7, 10] {  // rseq, interval_ms, count
            let error = evidenceError { try EvidenceRecord(json: Self.replacing(Fixtures.summary, at: index, with: nil)) }
            #expect(error?.code == .malformedRecord)
            #expect(error?.message.contains(Self.summaryFields[index]) == true)
        }
    }

    @Test(arguments: [Int64(0), -1, Int64.min])
    func rseqBelowOneIsRefused(_ rseq: Int64) {
        for record in [Fixtures.summary, Fixtures.heartbeat, Fixtures.raw] {
            let error = evidenceError { try EvidenceRecord(json: Self.replacing(record, at: 1, with: .int(rseq))) }
            #expect(error?.code == .malformedRecord)
            #expect(error?.message.contains("rseq must be ≥ 1") == true, "\(String(describing: error))")
        }
        // rseq 1 is the first valid one.
        #expect(evidenceError { try EvidenceRecord(json: Self.replacing(Fixtures.heartbeat, at: 1, with: 1)) } == nil)
    }

    @Test func undefinedEnumerationValuesAreNamed() {
        let tq = evidenceError { try EvidenceRecord(json: Self.replacing(Fixtures.summary, at: 5, with: "maybe")) }
        #expect(tq?.code == .malformedRecord)
        #expect(tq?.message.contains("(tq)") == true)
        #expect(tq?.message.contains("maybe") == true)
        let phase = evidenceError { try EvidenceRecord(json: Self.replacing(Fixtures.event, at: 7, with: "middle")) }
        #expect(phase?.code == .malformedRecord)
        #expect(phase?.message.contains("(phase)") == true)
    }

    @Test func steppedTimeQualityIsStep() throws {
        #expect(TimeQuality.stepped.rawValue == "step")
        #expect(TimeQuality.allCases.map(\.rawValue) == ["sync", "unsync", "step"])
        let record = try EvidenceRecord(json: Self.replacing(Fixtures.summary, at: 5, with: "step"))
        #expect(record.stamp.timeQuality == .stepped)
    }

    @Test func unknownKindIsRefused() {
        let error = evidenceError { try EvidenceRecord(json: Self.replacing(Fixtures.summary, at: 0, with: "gps")) }
        #expect(error?.code == .malformedRecord)
        #expect(error?.message.contains("\"gps\"") == true)
        let kindNotString = evidenceError { try EvidenceRecord(json: Self.replacing(Fixtures.summary, at: 0, with: 1)) }
        #expect(kindNotString?.code == .malformedRecord)
        #expect(kindNotString?.message.contains("(kind)") == true)
    }

    @Test(arguments: Fixtures.everyKind)
    func extraFieldsAreRefused(_ record: EvidenceRecord) {
        let json = JSONValue.array(record.json.arrayValue! + [nil])
        let error = evidenceError { try EvidenceRecord(json: json) }
        #expect(error?.code == .malformedRecord)
        #expect(error?.message.contains("\(record.kind) record has") == true, "\(String(describing: error))")
    }

    @Test func shortArraysNameTheMissingField() {
        let sum = Fixtures.summary.json.arrayValue!
        for keep in [1, 7, sum.count - 1] {
            let error = evidenceError { try EvidenceRecord(json: .array(Array(sum.prefix(keep)))) }
            #expect(error?.code == .malformedRecord)
            #expect(error?.message.contains("(\(Self.summaryFields[keep]))") == true, "\(String(describing: error))")
        }
        let evt = Fixtures.event.json.arrayValue!
        let error = evidenceError { try EvidenceRecord(json: .array(Array(evt.prefix(evt.count - 1)))) }
        #expect(error?.message.contains("(explanation)") == true)
        let empty = evidenceError { try EvidenceRecord(json: []) }
        #expect(empty?.code == .malformedRecord)
        #expect(empty?.message.contains("(kind)") == true)
    }

    @Test func recordThatIsNotAnArrayIsRefused() {
        #expect(evidenceError { try EvidenceRecord(json: ["kind": "sum"]) }?.code == .malformedRecord)
        #expect(evidenceError { try EvidenceRecord(json: "sum") }?.code == .malformedRecord)
    }

    @Test func malformedWindowSamplesAreNamed() {
        let index = Self.eventFields.firstIndex(of: "window")!
        #expect(index == 21)
        for bad: JSONValue in [[[1, 2]], [[1, 2, 3, 4]], [[1, 2, "3"]], [["1", 2, 3]], [1]] {
            let error = evidenceError { try EvidenceRecord(json: Self.replacing(Fixtures.event, at: index, with: bad)) }
            #expect(error?.code == .malformedRecord)
            #expect(error?.message.contains("(window)") == true, "\(bad)")
        }
    }
}

// MARK: the kinds beside readings and events

/// What each field of a kind must be, to make a value that is wrong for it.
enum FieldType: Sendable {
    case int, optionalInt, string, optionalString, object, array, jwk

    /// A value of another JSON type than the field accepts (null is no good for a required field either,
    /// but these must also fail for the optional ones).
    var wrongValue: JSONValue {
        switch self {
        case .int, .optionalInt: "7"
        case .string, .optionalString: 7
        case .object: [1]
        case .array: ["a": 1]
        case .jwk: ["kty": "EC"]
        }
    }
}

struct KindFields: Sendable, CustomTestStringConvertible {
    let record: EvidenceRecord
    /// The fields after the common head `[kind, rseq, boot, mono, wall, tq]`, in order.
    let fields: [(String, FieldType)]
    var testDescription: String { record.kind }
}

@Suite struct RecordKindFieldTests {
    static let head: [(String, FieldType)] = [("rseq", .int), ("boot", .int), ("mono", .int), ("wall", .int), ("tq", .string)]

    static let kinds: [KindFields] = [
        KindFields(record: Fixtures.heartbeat, fields: [("interval_ms", .int), ("uptime_ms", .int), ("backlog", .int)]),
        KindFields(
            record: Fixtures.sensorGap,
            fields: [
                ("reason", .string), ("channel", .optionalString), ("from_boot", .int), ("from_mono", .int), ("from_wall", .int),
                ("to_mono", .int), ("to_wall", .int), ("missing", .int), ("detail", .string),
            ]),
        KindFields(
            record: Fixtures.agentDownGap,
            fields: [
                ("reason", .string), ("channel", .optionalString), ("from_boot", .int), ("from_mono", .int), ("from_wall", .int),
                ("to_mono", .int), ("to_wall", .int), ("missing", .int), ("detail", .string),
            ]),
        KindFields(
            record: Fixtures.configChange,
            fields: [("config_sha256", .string), ("previous_sha256", .optionalString), ("source", .string), ("who", .optionalString), ("summary", .string)]),
        KindFields(
            record: Fixtures.firstConfig,
            fields: [("config_sha256", .string), ("previous_sha256", .optionalString), ("source", .string), ("who", .optionalString), ("summary", .string)]),
        KindFields(record: Fixtures.action, fields: [("action", .string), ("who", .optionalString), ("params", .object), ("explanation", .string)]),
        KindFields(record: Fixtures.attestation, fields: [("claims", .object)]),
        KindFields(record: Fixtures.keyRotation, fields: [("new_jwk", .jwk), ("proof", .string)]),
        KindFields(record: Fixtures.clockStep, fields: [("expected_wall", .int), ("step_ms", .int), ("tq_before", .string)]),
        KindFields(
            record: Fixtures.raw,
            fields: [("channel", .string), ("unit", .string), ("scale", .int), ("period_ms", .int), ("values", .array)]),
    ]

    @Test(arguments: kinds)
    func fieldTableMatchesTheRecordsLength(_ k: KindFields) {
        #expect(k.record.json.arrayValue?.count == 6 + k.fields.count)
    }

    @Test(arguments: kinds)
    func everyFieldOfTheWrongTypeIsNamed(_ k: KindFields) {
        let all = Self.head + k.fields
        for (offset, (name, type)) in all.enumerated() {
            let index = offset + 1
            let json = RecordTests.replacing(k.record, at: index, with: type.wrongValue)
            let error = evidenceError { try EvidenceRecord(json: json) }
            #expect(error?.code == .malformedRecord, "\(k.record.kind) field \(name)")
            #expect(error?.message.contains("(\(name))") == true, "\(k.record.kind) field \(name): \(String(describing: error))")
        }
    }

    @Test(arguments: kinds)
    func nullIsRefusedForEveryRequiredField(_ k: KindFields) {
        for (offset, (name, type)) in k.fields.enumerated() {
            let index = 6 + offset
            let result = evidenceError { try EvidenceRecord(json: RecordTests.replacing(k.record, at: index, with: nil)) }
            switch type {
            case .optionalInt, .optionalString:
                #expect(result == nil, "\(k.record.kind) field \(name) may be null")
            default:
                #expect(result?.code == .malformedRecord, "\(k.record.kind) field \(name)")
                #expect(result?.message.contains("(\(name))") == true, "\(k.record.kind) field \(name): \(String(describing: result))")
            }
        }
    }

    @Test(arguments: kinds)
    func shortRecordNamesItsLastField(_ k: KindFields) {
        let items = k.record.json.arrayValue!
        let error = evidenceError { try EvidenceRecord(json: .array(Array(items.dropLast()))) }
        #expect(error?.code == .malformedRecord)
        #expect(error?.message.contains("(\(k.fields.last!.0))") == true, "\(String(describing: error))")
    }

    /// Values of the right JSON type that the field still refuses.
    struct BadValue: Sendable, CustomTestStringConvertible {
        let record: EvidenceRecord
        let field: String
        let value: JSONValue
        var testDescription: String { "\(record.kind).\(field) = \(CanonicalJSON.string(value))" }
    }

    static func index(_ record: EvidenceRecord, _ field: String) -> Int {
        let k = kinds.first { $0.record.kind == record.kind }!
        return 6 + k.fields.firstIndex { $0.0 == field }!
    }

    static let badValues: [BadValue] = [
        BadValue(record: Fixtures.sensorGap, field: "reason", value: "power_cut"),
        BadValue(record: Fixtures.sensorGap, field: "reason", value: "AGENT_DOWN"),
        BadValue(record: Fixtures.configChange, field: "config_sha256", value: .string(Fixtures.hashA.uppercased())),
        BadValue(record: Fixtures.configChange, field: "config_sha256", value: .string(String(Fixtures.hashA.dropLast()))),
        BadValue(record: Fixtures.configChange, field: "config_sha256", value: ""),
        BadValue(record: Fixtures.configChange, field: "previous_sha256", value: "abc"),
        BadValue(record: Fixtures.configChange, field: "previous_sha256", value: .string(Fixtures.hashB + "0")),
        BadValue(record: Fixtures.keyRotation, field: "new_jwk", value: ["kty": "EC", "crv": "P-384", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"]),
        BadValue(record: Fixtures.keyRotation, field: "new_jwk", value: ["kty": "EC", "crv": "P-256", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRjGzEmV0B1Y8HQaGsk-S6xJJRvHJHxWAOpbL9w"]),
        BadValue(record: Fixtures.clockStep, field: "tq_before", value: "maybe"),
        BadValue(record: Fixtures.raw, field: "period_ms", value: 0),
        BadValue(record: Fixtures.raw, field: "period_ms", value: -100),
        BadValue(record: Fixtures.raw, field: "values", value: [1, "2"]),
        BadValue(record: Fixtures.raw, field: "values", value: [1, [2]]),
        BadValue(record: Fixtures.raw, field: "values", value: [true]),
        BadValue(record: Fixtures.action, field: "params", value: nil),
        BadValue(record: Fixtures.attestation, field: "claims", value: nil),
    ]

    @Test(arguments: badValues)
    func valuesOfTheRightTypeThatAreStillWrongAreNamed(_ b: BadValue) {
        let error = evidenceError { try EvidenceRecord(json: RecordTests.replacing(b.record, at: Self.index(b.record, b.field), with: b.value)) }
        #expect(error?.code == .malformedRecord)
        #expect(error?.message.contains("(\(b.field))") == true, "\(String(describing: error))")
    }

    @Test func everyGapReasonRoundTrips() throws {
        #expect(GapRecord.Reason.allCases.map(\.rawValue) == ["agent_down", "sensor_unreachable", "disk_budget", "store_corrupt"])
        guard case .gap(let base) = Fixtures.sensorGap else { Issue.record("not a gap"); return }
        for reason in GapRecord.Reason.allCases {
            var g = base
            g.reason = reason
            let record = EvidenceRecord.gap(g)
            #expect(record.json.arrayValue?[6] == .string(reason.rawValue))
            #expect(try EvidenceRecord(json: CanonicalJSON.decode(record.canonicalBytes)) == record)
        }
    }

    @Test func keyProtectionNames() {
        #expect(Attestation.KeyProtection.allCases.map(\.rawValue) == ["software-file", "hardware"])
    }
}

// MARK: raw samples

@Suite struct RawSamplesTests {
    static func raw(_ values: [Int64?]) -> EvidenceRecord {
        .raw(
            RawSamples(
                stamp: RecordStamp(rseq: 1, boot: 1, monoMs: 0, wallMs: 0, timeQuality: .synchronized), channel: "c", unit: "", scale: 0,
                periodMs: 1, values: values))
    }

    /// The `values` member as written.
    static func encoded(_ values: [Int64?]) -> String {
        CanonicalJSON.string(raw(values).json.arrayValue![10])
    }

    static let cases: [[Int64?]] = [
        [],
        [nil],
        [nil, nil],
        [0],
        [Int64.min],
        [Int64.max],
        [Int64.min, Int64.max],
        [Int64.max, Int64.min],
        [Int64.max, nil, Int64.min, nil, nil, Int64.max, Int64.max, -1, 0, 1, Int64.min],
        [nil, 5, nil, 7, nil],
        [-3, -3, -3],
        [Int64.min, Int64.min + 1, Int64.max - 1, Int64.max, 0],
        Array((0..<200).map { Int64($0 * $0) - 10_000 }),
    ]

    @Test(arguments: cases)
    func valuesRoundTripExactlyThroughJSONAndBytes(_ values: [Int64?]) throws {
        let record = Self.raw(values)
        #expect(try EvidenceRecord(json: record.json) == record)
        let back = try EvidenceRecord(json: CanonicalJSON.decode(record.canonicalBytes))
        guard case .raw(let r) = back else {
            Issue.record("not a raw record")
            return
        }
        #expect(r.values == values)
    }

    struct Encoding: Sendable, CustomTestStringConvertible {
        let values: [Int64?]
        let text: String
        var testDescription: String { text }
    }

    // Deltas are to the previous present value, in wrapping 64-bit arithmetic.
    static let encodings: [Encoding] = [
        Encoding(values: [], text: "[]"),
        Encoding(values: [100, 103, nil, 101, 101], text: "[100,3,null,-2,0]"),
        Encoding(values: [nil, 5, nil, 7, nil], text: "[null,5,null,2,null]"),
        Encoding(values: [Int64.min, Int64.max], text: "[-9223372036854775808,-1]"),
        Encoding(values: [Int64.max, Int64.min], text: "[9223372036854775807,1]"),
        Encoding(values: [0, Int64.min], text: "[0,-9223372036854775808]"),
        Encoding(values: [-1, Int64.max], text: "[-1,-9223372036854775808]"),
        Encoding(values: [Int64.max, nil, Int64.max], text: "[9223372036854775807,null,0]"),
        Encoding(values: [1, -1], text: "[1,-2]"),
    ]

    @Test(arguments: encodings)
    func deltaEncodingIsPinned(_ e: Encoding) throws {
        #expect(Self.encoded(e.values) == e.text)
        // Decoding the pinned text restores the values.
        var items = Self.raw([]).json.arrayValue!
        items[10] = try CanonicalJSON.decode(Array(e.text.utf8))
        guard case .raw(let r) = try EvidenceRecord(json: .array(items)) else {
            Issue.record("not a raw record")
            return
        }
        #expect(r.values == e.values)
    }
}
