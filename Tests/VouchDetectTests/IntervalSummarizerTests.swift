import Testing
import VouchCore
@testable import VouchDetect

struct IntervalSummarizerTests {
    func reading(_ ms: Int64, _ value: Int64?, error: String? = nil) -> Reading {
        Reading(
            channel: "meter.power", time: ClockReading(bootCount: 1, monoNs: ms * 1_000_000, wallNs: (1_700_000_000_000 + ms) * 1_000_000, quality: .synchronized),
            value: value, scaleExponent: -1, unit: "W", rawWords: [], quality: error.map { .commError(code: $0, message: "x") } ?? .ok)
    }

    @Test func intervalStatisticsAndBoundaries() throws {
        var s = IntervalSummarizer(channel: "meter.power", intervalMs: 10_000)
        let added1 = s.add(reading(0, 10))
        #expect(added1 == nil)
        let added2 = s.add(reading(1_000, 30))
        #expect(added2 == nil)
        let added3 = s.add(reading(2_000, nil, error: "E_MODBUS_ETIMEDOUT"))
        #expect(added3 == nil)
        let added4 = s.add(reading(9_999, 25))
        #expect(added4 == nil)
        let closedValue = s.add(reading(10_000, 99))
        let closed = try #require(closedValue)
        #expect(closed.count == 3)
        #expect(closed.errors == 1)
        #expect(closed.lastError == "E_MODBUS_ETIMEDOUT")
        #expect(closed.min == 10)
        #expect(closed.max == 30)
        #expect(closed.last == 25)
        #expect(closed.mean == 22, "(10+30+25)/3 = 21.67 rounds to 22")
        #expect(closed.intervalMs == 10_000)
        #expect(closed.start.monoNs == 0)
        // The reading that closed the interval opened the next one.
        let nextValue = s.flush()
        let next = try #require(nextValue)
        #expect(next.count == 1)
        #expect(next.last == 99)
        #expect(next.start.monoNs == 10_000 * 1_000_000)
        let flushed5 = s.flush()
        #expect(flushed5 == nil)
    }

    @Test func flushedIntervalReportsTheSpanItReallyCovered() throws {
        var s = IntervalSummarizer(channel: "meter.power", intervalMs: 60_000)
        _ = s.add(reading(0, 1))
        _ = s.add(reading(2_000, 1))
        let flushed6Value = s.flush()
        let flushed6 = try #require(flushed6Value)
        #expect(flushed6.intervalMs == 2_000)
    }

    @Test func meanRoundsHalfAwayFromZeroForNegatives() throws {
        var s = IntervalSummarizer(channel: "c", intervalMs: 1_000)
        _ = s.add(reading(0, -1))
        _ = s.add(reading(1, -2))
        let flushed7Value = s.flush()
        let flushed7 = try #require(flushed7Value)
        #expect(flushed7.mean == -2, "-1.5 rounds to -2")
    }

    @Test func allPollsFailedGivesNoValuesButCountsErrors() throws {
        var s = IntervalSummarizer(channel: "c", intervalMs: 1_000)
        _ = s.add(reading(0, nil, error: "E_MODBUS_ECONNREFUSED"))
        _ = s.add(reading(500, nil, error: "E_MODBUS_ECONNREFUSED"))
        let summaryValue = s.flush()
        let summary = try #require(summaryValue)
        #expect(summary.count == 0)
        #expect(summary.errors == 2)
        #expect(summary.mean == nil && summary.min == nil && summary.last == nil)
    }

    @Test func overflowingSumLeavesMeanEmptyInsteadOfWrong() throws {
        var s = IntervalSummarizer(channel: "c", intervalMs: 1_000)
        _ = s.add(reading(0, Int64.max))
        _ = s.add(reading(1, Int64.max))
        let summaryValue = s.flush()
        let summary = try #require(summaryValue)
        #expect(summary.mean == nil)
        #expect(summary.max == Int64.max)
    }
}
