import Foundation
import Testing
import VouchCore
import VouchEvidence
import VouchStore
@testable import VouchAgent

/// The pipeline on a scripted clock and a real outbox: what it stores for clock steps, sensor outages
/// and stoppages. Readings come one per second on "meter.power"; summaries are one minute.
@Suite struct EvidencePipelineTests {
    typealias T = AgentFixtures

    /// Runs `feed` against a new pipeline, flushes it, and returns everything it stored.
    static func run(
        flushAt: ClockReading? = nil, onEvent: @escaping @Sendable () -> Void = {}, _ feed: (Feeder) async throws -> Void
    ) async throws -> [EvidenceRecord] {
        let store = try TemporaryOutbox()
        defer { store.cleanUp() }
        let clock = ScriptedClock(T.time(0))
        let pipeline = EvidencePipeline(config: try T.config(), outbox: store.outbox, clock: clock, logger: T.quietLogger, onEvent: onEvent)
        let feeder = Feeder(pipeline: pipeline, clock: clock)
        try await feed(feeder)
        if let flushAt { clock.set(flushAt) }
        await pipeline.flush()
        return try store.sealAndVerifyRecords()
    }

    struct Feeder {
        let pipeline: EvidencePipeline
        let clock: ScriptedClock

        /// Ingests one reading with the clock set to its time, as the poller does.
        func feed(_ reading: Reading) async {
            clock.set(reading.time)
            await pipeline.ingest([reading])
        }

        /// Readings of `value` (nil: a failed poll) at each second of `seconds`.
        func feed(_ seconds: ClosedRange<Int64>, value: Int64?, wallOffsetMs: Int64 = 0, quality: TimeQuality = .synchronized) async {
            for s in seconds {
                let time = T.time(s, wallOffsetMs: wallOffsetMs, quality: quality)
                await feed(value.map { T.reading(time, value: $0) } ?? T.failed(time))
            }
        }
    }

    // MARK: clock steps

    @Test func aStepOfTenMinutesIsOneClockStepRecordAndMarksTheSummarySpanningIt() async throws {
        let step: Int64 = 600_000
        let records = try await Self.run(flushAt: T.time(70, wallOffsetMs: step)) { f in
            await f.feed(0...29, value: 1000)
            await f.feed(30...70, value: 1000, wallOffsetMs: step)
        }
        let steps = records.compactMap(\.clockStep)
        try #require(steps.count == 1)
        let c = steps[0]
        #expect(c.stepMs == step)
        #expect(c.expectedWallMs == T.time(30).wallMs)
        #expect(c.stamp.monoMs == T.time(30).monoMs)
        #expect(c.stamp.wallMs == T.time(30).wallMs + step)
        #expect(c.stamp.boot == 2)
        #expect(c.qualityBefore == .synchronized)
        #expect(c.stamp.timeQuality == .synchronized)

        let summaries = records.compactMap(\.summary)
        try #require(summaries.count == 2)
        // 0…59 s contains the step at 30 s.
        #expect(summaries[0].stamp.monoMs == T.time(0).monoMs)
        #expect(summaries[0].stamp.wallMs == T.time(0).wallMs)
        #expect(summaries[0].count == 60)
        #expect(summaries[0].stamp.timeQuality == .stepped)
        // 60…70 s starts after it: its wall times are all on the new clock.
        #expect(summaries[1].stamp.monoMs == T.time(60).monoMs)
        #expect(summaries[1].stamp.wallMs == T.time(60).wallMs + step)
        #expect(summaries[1].count == 11)
        #expect(summaries[1].stamp.timeQuality == .synchronized)
        // The step is stored before the summary it marks; a synchronised clock that steps is a warning event too.
        #expect(records.map(\.kind) == ["clk", "evt", "evt", "sum", "sum"])
        let events = records.compactMap(\.event)
        #expect(events.map(\.phase) == [.start, .end] && events.allSatisfy { $0.rule == "clock-step" && $0.severity == "warning" && $0.channel == "gateway" })
        #expect(events.first?.params["step_ms"] == .int(step) && events.first?.durationMs == 0)
        #expect(events.first?.explanation.hasPrefix("the wall clock was set forward by 10 min while it was synchronised") == true, "\(events.first?.explanation ?? "")")
    }

    @Test func aStepBackIsNegative() async throws {
        let records = try await Self.run { f in
            await f.feed(0...9, value: 1000)
            await f.feed(10...20, value: 1000, wallOffsetMs: -600_000)
        }
        let steps = records.compactMap(\.clockStep)
        #expect(steps.map(\.stepMs) == [-600_000])
        #expect(steps.first?.expectedWallMs == T.time(10).wallMs)
        #expect(steps.first?.stamp.wallMs == T.time(10).wallMs - 600_000)
    }

    @Test func theFirstSynchronisationOfAnUnsetClockIsAStepFromUnsync() async throws {
        let records = try await Self.run { f in
            await f.feed(0...9, value: 1000, wallOffsetMs: -86_400_000, quality: .unsynchronized)
            await f.feed(10...70, value: 1000)
        }
        let c = try #require(records.compactMap(\.clockStep).first)
        #expect(records.compactMap(\.clockStep).count == 1)
        #expect(records.compactMap(\.event).isEmpty, "a first synchronisation is recorded, and warns nobody")
        #expect(c.stepMs == 86_400_000)
        #expect(c.qualityBefore == .unsynchronized)
        #expect(c.stamp.timeQuality == .synchronized)
        #expect(records.compactMap(\.summary).first?.stamp.timeQuality == .stepped)
    }

    @Test(arguments: [Int64(1), 500, 999, -999, 1_000, -1_000])
    func aJumpOfAtMostOneSecondIsNoStep(_ jumpMs: Int64) async throws {
        let records = try await Self.run { f in
            await f.feed(0...29, value: 1000)
            await f.feed(30...70, value: 1000, wallOffsetMs: jumpMs)
        }
        #expect(records.compactMap(\.clockStep).isEmpty)
        #expect(records.compactMap(\.summary).map(\.stamp.timeQuality) == [.synchronized, .synchronized])
    }

    @Test(arguments: [Int64(1_001), -1_001, 5_000])
    func aJumpOfMoreThanOneSecondIsAStep(_ jumpMs: Int64) async throws {
        let records = try await Self.run { f in
            await f.feed(0...29, value: 1000)
            await f.feed(30...70, value: 1000, wallOffsetMs: jumpMs)
        }
        #expect(records.compactMap(\.clockStep).map(\.stepMs) == [jumpMs])
    }

    @Test func slowDriftIsNoStepEvenWhenItAddsUpToMore() async throws {
        // 0.5 s per reading for a minute: 30 s in all, but never a jump of more than 1 s.
        let records = try await Self.run { f in
            for s in Int64(0)...70 { await f.feed(T.reading(T.time(s, wallOffsetMs: s * 500), value: 1000)) }
        }
        #expect(records.compactMap(\.clockStep).isEmpty)
        #expect(records.compactMap(\.summary).allSatisfy { $0.stamp.timeQuality == .synchronized })
    }

    // MARK: sensor outages

    @Test func anOutageLongerThanASummaryIntervalIsOneGapOnRecovery() async throws {
        let records = try await Self.run { f in
            await f.feed(0...9, value: 1000)
            await f.feed(10...80, value: nil)  // 71 failed polls
            await f.feed(81...90, value: 1000)
        }
        let gaps = records.compactMap(\.gap)
        try #require(gaps.count == 1)
        let g = gaps[0]
        #expect(g.reason == .sensorUnreachable)
        #expect(g.channel == "meter.power")
        #expect(g.fromBoot == 2)
        #expect(g.fromMonoMs == T.time(10).monoMs)
        #expect(g.fromWallMs == T.time(10).wallMs)
        #expect(g.toMonoMs == T.time(81).monoMs)
        #expect(g.toWallMs == T.time(81).wallMs)
        #expect(g.missing == 71)
        #expect(g.stamp.monoMs == T.time(81).monoMs)
        #expect(g.detail.contains("did not answer for 71 s"), "\(g.detail)")
        #expect(g.detail.contains("71 failed polls"), "\(g.detail)")
        #expect(g.detail.contains("E_MODBUS_ETIMEDOUT"), "\(g.detail)")
        #expect(!g.detail.contains("still unreachable"), "\(g.detail)")
        // The summaries still count every failed poll.
        let summaries = records.compactMap(\.summary)
        #expect(summaries.map(\.errors) == [50, 21])
        #expect(summaries.map(\.count) == [10, 10])
    }

    @Test func anOutageOfExactlyOneIntervalIsAGapAndOneSecondLessIsNot() async throws {
        let sixty = try await Self.run { f in
            await f.feed(0...9, value: 1000)
            await f.feed(10...69, value: nil)
            await f.feed(70...75, value: 1000)
        }
        #expect(sixty.compactMap(\.gap).map(\.missing) == [60])
        let fiftyNine = try await Self.run { f in
            await f.feed(0...9, value: 1000)
            await f.feed(10...68, value: nil)
            await f.feed(69...75, value: 1000)
        }
        #expect(fiftyNine.compactMap(\.gap).isEmpty)
    }

    @Test func aShortOutageShowsOnlyInTheSummary() async throws {
        let records = try await Self.run { f in
            await f.feed(0...9, value: 1000)
            await f.feed(10...20, value: nil)
            await f.feed(21...70, value: 1000)
        }
        #expect(records.compactMap(\.gap).isEmpty)
        let first = try #require(records.compactMap(\.summary).first)
        #expect(first.errors == 11)
        #expect(first.count == 49)
        #expect(first.lastError == "E_MODBUS_ETIMEDOUT")
    }

    @Test func twoLongOutagesAreTwoGaps() async throws {
        let records = try await Self.run { f in
            await f.feed(0...9, value: 1000)
            await f.feed(10...79, value: nil)
            await f.feed(80...89, value: 1000)
            await f.feed(90...159, value: nil)
            await f.feed(160...165, value: 1000)
        }
        let gaps = records.compactMap(\.gap)
        #expect(gaps.map(\.missing) == [70, 70])
        #expect(gaps.map(\.fromMonoMs) == [T.time(10).monoMs, T.time(90).monoMs])
    }

    @Test func flushWhileStillFailingRecordsAGapThatSaysSo() async throws {
        let records = try await Self.run(flushAt: T.time(101)) { f in
            await f.feed(0...9, value: 1000)
            await f.feed(10...100, value: nil)  // 91 failed polls, never recovered
        }
        let gaps = records.compactMap(\.gap)
        try #require(gaps.count == 1)
        let g = gaps[0]
        #expect(g.reason == .sensorUnreachable)
        #expect(g.channel == "meter.power")
        #expect(g.fromMonoMs == T.time(10).monoMs)
        #expect(g.toMonoMs == T.time(101).monoMs)
        #expect(g.toWallMs == T.time(101).wallMs)
        #expect(g.missing == 91)
        #expect(g.detail.contains("still unreachable when the agent stopped"), "\(g.detail)")
        #expect(g.detail.contains("did not answer for 91 s"), "\(g.detail)")
    }

    @Test func flushDuringAShortOutageRecordsNoGap() async throws {
        let records = try await Self.run(flushAt: T.time(31)) { f in
            await f.feed(0...9, value: 1000)
            await f.feed(10...30, value: nil)
        }
        #expect(records.compactMap(\.gap).isEmpty)
        #expect(records.compactMap(\.summary).map(\.errors) == [21])
    }

    // MARK: events

    @Test func aStoppageIsRecordedWithItsThresholdAsBaseline() async throws {
        let events = Counter()
        let records = try await Self.run(onEvent: { events.increment() }) { f in
            await f.feed(0...9, value: 1000)
            await f.feed(10...40, value: 100)
            await f.feed(41...45, value: 1000)
        }
        let found = records.compactMap(\.event)
        try #require(found.count == 2)
        let (start, end) = (found[0], found[1])
        #expect(start.phase == .start)
        #expect(start.rule == "press-stop")
        #expect(start.channel == "meter.power")
        #expect(start.startMonoMs == T.time(10).monoMs)
        #expect(start.startWallMs == T.time(10).wallMs)
        #expect(start.durationMs == 15_000)
        #expect(start.stamp.monoMs == T.time(25).monoMs)
        #expect(start.baseline == ["threshold": 500])
        #expect(start.params == ["below": 500, "min_duration_ms": 15_000, "window_samples": 10])
        #expect(start.unit == "W")
        #expect(start.scale == 0)
        #expect(start.eventId == "press-stop@\(T.time(10).monoMs)")
        #expect(end.phase == .end)
        #expect(end.eventId == start.eventId)
        #expect(end.endMonoMs == T.time(41).monoMs)
        #expect(end.durationMs == 31_000)
        #expect(end.baseline == ["threshold": 500])
        #expect(events.value == 2)
    }

    @Test func anEventWhoseSpanContainsAStepIsMarkedStepped() async throws {
        let records = try await Self.run { f in
            await f.feed(0...9, value: 1000)
            await f.feed(10...19, value: 100)
            await f.feed(20...40, value: 100, wallOffsetMs: 120_000)
            await f.feed(41...45, value: 1000, wallOffsetMs: 120_000)
        }
        let found = records.compactMap(\.event).filter { $0.rule == "press-stop" }
        #expect(found.map(\.phase) == [.start, .end])
        #expect(found.map(\.stamp.timeQuality) == [.stepped, .stepped])
        #expect(records.compactMap(\.clockStep).map(\.stepMs) == [120_000])
    }

    // MARK: records made beside the readings

    @Test func recordAndStampNowStoreInOrderWithTheReadings() async throws {
        let store = try TemporaryOutbox()
        defer { store.cleanUp() }
        let clock = ScriptedClock(T.time(5))
        let pipeline = EvidencePipeline(config: try T.config(), outbox: store.outbox, clock: clock, logger: T.quietLogger, onEvent: {})
        let stamp = await pipeline.stampNow()
        #expect(stamp == RecordStamp(rseq: 0, boot: 2, monoMs: T.time(5).monoMs, wallMs: T.time(5).wallMs, timeQuality: .synchronized))
        await pipeline.record([.heartbeat(Heartbeat(stamp: stamp, intervalMs: 300_000, uptimeMs: 5_000, backlog: 0))])
        clock.set(T.time(6))
        await pipeline.ingest([T.reading(T.time(6), value: 1000)])
        await pipeline.flush()
        let records = try store.sealAndVerifyRecords()
        #expect(records.map(\.kind) == ["hb", "sum"])
        #expect(records.map(\.stamp.rseq) == [1, 2])
        #expect(records[0].heartbeat?.uptimeMs == 5_000)
    }
}
