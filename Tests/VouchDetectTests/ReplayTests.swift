import Testing
import VouchCore
@testable import VouchDetect

/// A detector for the engine's and the replay's own tests: an event while the value is above `limit`.
struct AboveDetector: Detector {
    let rule: RuleIdentity
    let limit: Int64
    var start: DetectorSample?
    var score = 0.0
    var stateBytes: Int { MemoryLayout<Self>.size }

    init(id: String = "above", channel: String, limit: Int64, exponent: Int64 = 0) {
        rule = RuleIdentity(id: id, version: 1, kind: "test_above", channel: channel, unit: "", scaleExponent: exponent)
        self.limit = limit
    }

    mutating func feed(_ sample: DetectorSample, _ context: SiteContext) -> Finding? {
        guard let v = sample.value else { return nil }
        score = v > limit ? 1 : 0
        switch (start, v > limit) {
        case (nil, true):
            start = sample
            return Finding(phase: .start, rule: rule, severity: context.inShift ? .alarm : .record, start: sample, at: sample, params: ["limit": .int(limit)], window: [sample], explanation: "above")
        case (let s?, false):
            start = nil
            return Finding(phase: .end, rule: rule, severity: .alarm, start: s, end: sample, at: sample, params: ["limit": .int(limit)], window: [], explanation: "back")
        default:
            return nil
        }
    }
}

struct ReplayTests {
    static let calendar = SiteCalendar(timeZoneID: "UTC", shift: .init(days: Set(Weekday.allCases), startMinute: 360, endMinute: 1320))

    @Test func csvFieldsQuotesAndLineNumbers() throws {
        let h = try CSVHistory(text: "time,\"a,b\",c\r\n\n2026-12-01T10:00:00Z,\"1\"\"\",2\n", timestamp: nil)
        #expect(h.header == ["time", "a,b", "c"])
        #expect(h.timestampColumn == 0)
        #expect(h.rows.map(\.line) == [3])
        #expect(h.rows.first?.cells == ["2026-12-01T10:00:00Z", "1\"", "2"])
        #expect(throws: ReplayError(line: 2, "3 fields, but the header has 2")) { try CSVHistory(text: "t,v\n1,2,3\n", timestamp: nil) }
        #expect(throws: ReplayError(line: 2, "a quoted field is not closed")) { try CSVHistory(text: "t,v\n1,\"2\n", timestamp: nil) }
        #expect(throws: ReplayError(line: 1, "no column \"when\" for the timestamps (columns: t, v)")) { try CSVHistory(text: "t,v\n", timestamp: "when") }
    }

    @Test func timestampsInEveryAcceptedForm() {
        let utc10 = CivilDate.wallMs(localISO: "2026-12-01T10:00Z", zoneID: "UTC")
        #expect(CSVHistory.wallMs("2026-12-01T10:00:00Z", zoneID: "UTC") == utc10)
        #expect(CSVHistory.wallMs("2026-12-01 11:00:00", zoneID: "Europe/Berlin") == utc10, "local time in the site's zone")
        #expect(CSVHistory.wallMs("2026-12-01T11:00:00+01:00", zoneID: "UTC") == utc10)
        #expect(CSVHistory.wallMs("2026-12-01T10:00:00.250Z", zoneID: "UTC") == utc10.map { $0 + 250 })
        #expect(CSVHistory.wallMs("1764583200", zoneID: "UTC") == 1_764_583_200_000, "epoch seconds")
        #expect(CSVHistory.wallMs("1764583200000", zoneID: "UTC") == 1_764_583_200_000, "epoch milliseconds")
        #expect(CSVHistory.wallMs("1764583200.5", zoneID: "UTC") == 1_764_583_200_500)
        #expect(CSVHistory.wallMs("yesterday", zoneID: "UTC") == nil)
        #expect(CSVHistory.wallMs("2026-12-01T10:00:00.Z", zoneID: "UTC") == nil)
    }

    @Test func valuesAreScaledLikeTheChannel() {
        #expect(CSVHistory.scaled("812.45", exponent: -1) == .success(8125), "half away from zero")
        #expect(CSVHistory.scaled("-812.45", exponent: -1) == .success(-8125))
        #expect(CSVHistory.scaled("1e3", exponent: 0) == .success(1000))
        #expect(CSVHistory.scaled("", exponent: -1) == .success(nil), "an empty cell is a failed reading")
        #expect(CSVHistory.scaled("NaN", exponent: 0) == .success(nil))
        #expect(CSVHistory.scaled("12 kg", exponent: 0) == .failure(ReplayError(line: 0, "\"12 kg\" is not a number")))
    }

    @Test func replayFeedsTheEngineRowByRowAndNamesTheEvents() throws {
        var engine = DetectionEngine(detectors: [AboveDetector(channel: "m.power", limit: 100, exponent: -1)], calendar: Self.calendar)
        let csv = "timestamp,m.power,other\n2026-12-01T10:00:00Z,5.0,x\n2026-12-01T10:01:00Z,10.5,x\n2026-12-01T10:02:00Z,,x\n2026-12-01T10:03:00Z,9.9,x\n"
        let history = try CSVHistory(text: csv, timestamp: nil)
        var rows: [Replay.Row] = []
        var findings: [Finding] = []
        try Replay.run(history, channels: [.init(id: "m.power", column: 1, scaleExponent: -1)], engine: &engine, zoneID: "UTC", row: { rows.append($0) }, finding: { findings.append($0) })
        #expect(rows.map(\.values) == [[50], [105], [nil], [99]])
        #expect(rows.map(\.scores) == [[0], [1], [1], [0]], "a failed reading leaves the score as it was")
        let id = Replay.eventID(findings[0])
        #expect(rows.map(\.events) == [[[]], [[id]], [[]], [[id]]])
        #expect(findings.map(\.phase) == [.start, .end])
        #expect(findings[0].start.monoMs == 60_000, "the replay's monotonic clock runs from the first row")
        #expect(findings[0].severity == .alarm, "10:01 UTC is inside the 06:00–22:00 shift")
    }

    @Test func rowsMustNotGoBackInTime() throws {
        var engine = DetectionEngine(detectors: [AboveDetector(channel: "c", limit: 1)], calendar: Self.calendar)
        let history = try CSVHistory(text: "t,c\n2026-12-01T10:00:00Z,1\n2026-12-01T09:59:00Z,1\n", timestamp: nil)
        #expect(throws: ReplayError(line: 3, "timestamp 2026-12-01T09:59:00Z is earlier than the row before: rows must be in time order")) {
            try Replay.run(history, channels: [.init(id: "c", column: 1, scaleExponent: 0)], engine: &engine, zoneID: "UTC", row: { _ in }, finding: { _ in })
        }
        let bad = try CSVHistory(text: "t,c\n2026-12-01T10:00:00Z,lots\n", timestamp: nil)
        #expect(throws: ReplayError(line: 2, "column \"c\": \"lots\" is not a number")) {
            try Replay.run(bad, channels: [.init(id: "c", column: 1, scaleExponent: 0)], engine: &engine, zoneID: "UTC", row: { _ in }, finding: { _ in })
        }
    }

    @Test func theEngineGivesEachChannelOnlyItsDetectorsAndTheCalendarsContext() {
        var engine = DetectionEngine(
            detectors: [AboveDetector(id: "a", channel: "x", limit: 0), AboveDetector(id: "b", channel: "y", limit: 0)], calendar: Self.calendar)
        let night = CivilDate.wallMs(localISO: "2026-12-01T23:00Z", zoneID: "UTC") ?? 0
        let r = engine.feed(channel: "x", DetectorSample(monoMs: 0, wallMs: night, value: 1))
        #expect(r.findings.map(\.rule.id) == ["a"] && r.findings.first?.severity == .record, "outside the shift")
        #expect(engine.feed(channel: "z", DetectorSample(monoMs: 1, wallMs: night, value: 1)).findings.isEmpty)
        #expect(engine.channels == ["x", "y"])
    }
}

struct ReplayReleaseColumnTests {
    /// Records whether the context said a release window was open.
    struct ReleaseProbe: Detector {
        let rule = RuleIdentity(id: "probe", version: 1, kind: "probe", channel: "c", unit: "", scaleExponent: 0)
        var seen: [Bool] = []
        var score: Double { 0 }
        var stateBytes: Int { 0 }
        mutating func feed(_ sample: DetectorSample, _ context: SiteContext) -> Finding? {
            Finding(phase: .start, rule: rule, severity: context.releaseOpen ? .record : .alarm, start: sample, at: sample, params: [:], window: [], explanation: "")
        }
    }

    @Test func aReleaseColumnOpensAndClosesReleaseWindows() throws {
        var engine = DetectionEngine(detectors: [ReleaseProbe()], calendar: ReplayTests.calendar)
        let history = try CSVHistory(text: "t,c,release\n1764583200,1,0\n1764583260,1,1\n1764583320,1,\n", timestamp: nil)
        var severities: [Severity] = []
        try Replay.run(history, channels: [.init(id: "c", column: 1, scaleExponent: 0)], engine: &engine, zoneID: "UTC", row: { _ in }, finding: { severities.append($0.severity) })
        #expect(severities == [.alarm, .record, .alarm])
        let bad = try CSVHistory(text: "t,c,release\n1764583200,1,maybe\n", timestamp: nil)
        #expect(throws: ReplayError(line: 2, "release \"maybe\": expected 1 (a release window is open) or 0")) {
            try Replay.run(bad, channels: [.init(id: "c", column: 1, scaleExponent: 0)], engine: &engine, zoneID: "UTC", row: { _ in }, finding: { _ in })
        }
    }
}

struct ReplayNotSampledTests {
    /// Counts what it is fed: a value, or a failed reading.
    struct Counter: Detector {
        let rule: RuleIdentity
        var score: Double { 0 }
        var stateBytes: Int { 0 }
        init(_ channel: String) { rule = RuleIdentity(id: channel, version: 1, kind: "probe", channel: channel, unit: "", scaleExponent: 0) }
        mutating func feed(_ sample: DetectorSample, _ context: SiteContext) -> Finding? {
            Finding(phase: .start, rule: rule, severity: .record, start: sample, at: sample, params: [:], window: [], explanation: sample.value == nil ? "failed" : "value")
        }
    }

    @Test("a \"-\" cell feeds nothing: a door sampled every 10 s and a weight every 60 s share one CSV; an empty cell is still a failed reading")
    func notSampledCellsAreSkipped() throws {
        var engine = DetectionEngine(detectors: [Counter("door"), Counter("weight")], calendar: ReplayTests.calendar)
        let csv = "t,door,weight\n1764583200,0,100\n1764583210,1,-\n1764583220,1, - \n1764583230,0,\n"
        var fed: [String] = []
        var rows: [Replay.Row] = []
        try Replay.run(
            try CSVHistory(text: csv, timestamp: nil), channels: [.init(id: "door", column: 1, scaleExponent: 0), .init(id: "weight", column: 2, scaleExponent: 0)],
            engine: &engine, zoneID: "UTC", row: { rows.append($0) }, finding: { fed.append("\($0.rule.id) \($0.explanation)") })
        #expect(fed == ["door value", "weight value", "door value", "door value", "door value", "weight failed"])
        #expect(rows.map(\.sampled) == [[true, true], [true, false], [true, false], [true, true]])
    }
}
