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

    static let all = [summary, failedSummary, event, endedEvent]
}

@Suite struct RecordTests {
    @Test(arguments: Fixtures.all)
    func jsonRoundTrips(_ record: EvidenceRecord) throws {
        #expect(try EvidenceRecord(json: record.json) == record)
        // Through bytes too, as the bank receives them.
        #expect(try EvidenceRecord(json: CanonicalJSON.decode(record.canonicalBytes)) == record)
    }

    @Test func summaryIsAPositionalArray() {
        #expect(Fixtures.summary.kind == "sum")
        #expect(
            CanonicalJSON.string(Fixtures.summary.json)
                == #"["sum",1,3,1000,1700000000000,"sync","meter.power",60000,"W",-1,60,0,10,20,15,18,null]"#)
        #expect(
            CanonicalJSON.string(Fixtures.failedSummary.json)
                == #"["sum",2,3,61000,1700000060000,"unsync","meter.power",60000,"W",-1,0,60,null,null,null,null,"E_MODBUS_ETIMEDOUT"]"#)
    }

    @Test func eventIsAPositionalArray() {
        #expect(Fixtures.event.kind == "evt")
        #expect(
            CanonicalJSON.string(Fixtures.event.json)
                == #"["evt",3,3,76000,1700000075000,"sync","3-61000-press-stop-meter.power","start","press-stop",1,"meter.power","high",61000,1700000060000,null,null,15000,"W",-1,{"below":5000,"for_ms":15000,"nested":{"list":[1,"two",null,true]},"note":null},[[59000,1700000058000,6000],[60000,1700000059000,null],[61000,1700000060000,-3]],"Power below 500.0 W for 15 s"]"#)
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
        "start_mono", "start_wall", "end_mono", "end_wall", "duration_ms", "unit", "scale", "params", "window",
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

    @Test func nullIsRefusedWhereAValueIsRequired() {
        for index in [1, 7, 10] {  // rseq, interval_ms, count
            let error = evidenceError { try EvidenceRecord(json: Self.replacing(Fixtures.summary, at: index, with: nil)) }
            #expect(error?.code == .malformedRecord)
            #expect(error?.message.contains(Self.summaryFields[index]) == true)
        }
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

    @Test func unknownKindIsRefused() {
        let error = evidenceError { try EvidenceRecord(json: Self.replacing(Fixtures.summary, at: 0, with: "gps")) }
        #expect(error?.code == .malformedRecord)
        #expect(error?.message.contains("\"gps\"") == true)
        let kindNotString = evidenceError { try EvidenceRecord(json: Self.replacing(Fixtures.summary, at: 0, with: 1)) }
        #expect(kindNotString?.code == .malformedRecord)
        #expect(kindNotString?.message.contains("(kind)") == true)
    }

    @Test(arguments: [Fixtures.summary, Fixtures.event])
    func extraFieldsAreRefused(_ record: EvidenceRecord) {
        let json = JSONValue.array(record.json.arrayValue! + [nil])
        let error = evidenceError { try EvidenceRecord(json: json) }
        #expect(error?.code == .malformedRecord)
        #expect(error?.message.contains(record.kind) == true)
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
        for bad: JSONValue in [[[1, 2]], [[1, 2, 3, 4]], [[1, 2, "3"]], [["1", 2, 3]], [1]] {
            let error = evidenceError { try EvidenceRecord(json: Self.replacing(Fixtures.event, at: 20, with: bad)) }
            #expect(error?.code == .malformedRecord)
            #expect(error?.message.contains("(window)") == true, "\(bad)")
        }
    }
}
