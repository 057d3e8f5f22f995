import Foundation
import Testing
import VouchCore
import VouchEvidence
import VouchStore
@testable import VouchAgent

/// `[evidence] raw_samples = true`: every sample is recorded, one `raw` record per channel and summary
/// interval beside the summary, and signed like everything else.
@Suite struct RawSampleModeTests {
    typealias T = AgentFixtures

    static func rawConfig() throws -> AgentConfig {
        try T.config(T.configText.replacingOccurrences(of: "batch_interval = \"30s\"", with: "batch_interval = \"30s\"\nraw_samples = true"))
    }

    @Test("the config key is read, and off by default")
    func configKey() throws {
        #expect(try Self.rawConfig().evidence.rawSamples)
        #expect(try T.config().evidence.rawSamples == false)
        #expect(throws: ConfigError.self) {
            try T.config(T.configText.replacingOccurrences(of: "batch_interval = \"30s\"", with: "batch_interval = \"30s\"\nraw_samples = \"yes\""))
        }
    }

    @Test("each interval's samples, in order, failed polls and skipped cycles as null, beside its summary")
    func rawRecordsMatchTheSamples() async throws {
        let store = try TemporaryOutbox()
        defer { store.cleanUp() }
        let clock = ScriptedClock(T.time(0))
        let pipeline = EvidencePipeline(config: try Self.rawConfig(), outbox: store.outbox, clock: clock, logger: T.quietLogger, onEvent: {})
        var fed: [Int64: Int64?] = [:]
        for s in Int64(0)...130 where s != 75 {  // second 75: the poller skipped a late cycle
            let value: Int64? = s == 42 ? nil : 1_000 + s * 3
            fed[s] = value
            clock.set(T.time(s))
            await pipeline.ingest([value.map { T.reading(T.time(s), value: $0) } ?? T.failed(T.time(s))])
        }
        await pipeline.flush()
        let records = try store.sealAndVerifyRecords()
        let raws = records.compactMap { r -> RawSamples? in if case .raw(let x) = r { x } else { nil } }
        let summaries = records.compactMap(\.summary)
        #expect(raws.count == 3, "minutes 0, 1 and the flushed part of 2")
        #expect(raws.count == summaries.count)
        for (raw, summary) in zip(raws, summaries) {
            #expect(raw.channel == "meter.power")
            #expect(raw.periodMs == 1_000)
            #expect(raw.stamp.monoMs == summary.stamp.monoMs, "a raw record covers its summary's interval")
            #expect(Int64(raw.values.compactMap { $0 }.count) == summary.count)
            #expect(raw.values.compactMap { $0 }.min() == summary.min)
            #expect(raw.values.compactMap { $0 }.max() == summary.max)
        }
        // Every sample at its second: value, null for the failed poll and for the skipped cycle.
        for raw in raws {
            let startSecond = (raw.stamp.monoMs - T.time(0).monoMs) / 1_000
            for (i, value) in raw.values.enumerated() {
                let expected: Int64? = fed[startSecond + Int64(i)] ?? nil
                #expect(value == expected, "second \(startSecond + Int64(i))")
            }
        }
        #expect(raws[1].values[15] == nil, "second 75 was skipped")
        #expect(raws[0].values[42] == nil, "second 42 failed")
    }
}
