import Foundation
import Testing
import VouchCore
import VouchDetect
import VouchEvidence
import VouchStore
@testable import VouchAgent

/// The settled weight survives an agent restart through the outbox: stock taken while the agent was
/// down is an alarm at the restart, and a loss already on record is not alarmed twice.
@Suite struct CarryOverPipelineTests {
    typealias T = AgentFixtures
    typealias Site = ReleaseWindowTests.Site

    /// A pipeline on `store` as `Agent.build` makes it after a restart: the rules resumed from the outbox.
    func restart(_ store: TemporaryOutbox, at seconds: Int64) throws -> (EvidencePipeline, ScriptedClock) {
        let config = try ConfigLoader.parse(ReleaseWindowTests.siteText, file: "/etc/vouch/vouch.toml")
        var engine = try DetectorFactory.engine(for: config)
        Agent.resumeDetectors(&engine, outbox: store.outbox, logger: T.quietLogger)
        let clock = ScriptedClock(T.time(seconds))
        return (EvidencePipeline(config: config, outbox: store.outbox, clock: clock, logger: T.quietLogger, engine: engine, onEvent: {}), clock)
    }

    func weigh(_ pipeline: EvidencePipeline, _ clock: ScriptedClock, _ kg: Int64, from: Int64, to: Int64) async {
        for s in stride(from: from, to: to, by: 10) {
            clock.set(T.time(s))
            await pipeline.ingest([Reading(channel: "scale.weight", time: T.time(s), value: kg, scaleExponent: 0, unit: "kg", rawWords: [], quality: .ok)])
        }
    }

    @Test func stockTakenWhileTheAgentWasDownIsAnAlarmAtTheRestart() async throws {
        let first = try Site()
        defer { first.store.cleanUp() }
        await first.weigh(10_000, from: 0, to: 180)
        let saved = try #require(try first.store.outbox.state(EvidencePipeline.carryOverStateKey), "kept with the summary that closed at 60 s")
        #expect(saved == #"{"stock-left|weight_drop|scale.weight|0":{"baseline":10000,"reference":10000}}"#)
        // The agent is killed; 2 t leave; it starts again an hour later.
        let (pipeline, clock) = try restart(first.store, at: 3_780)
        await weigh(pipeline, clock, 8_000, from: 3_780, to: 3_960)
        let events = ReleaseWindowTests.events(try first.records())
        try #require(events.count == 1, "\(events.map(\.explanation))")
        #expect(events[0].severity == "alarm" && events[0].rule == "stock-left")
        #expect(events[0].explanation.contains("2000 kg (20.0 %) below the 10000 kg settled before it stopped: stock left while the gateway was not watching"), "\(events[0].explanation)")
    }

    @Test func aLossAlreadyOnRecordIsNotAlarmedAgainAfterARestart() async throws {
        let first = try Site()
        defer { first.store.cleanUp() }
        await first.weigh(10_000, from: 0, to: 180)
        await first.weigh(8_000, from: 180, to: 250)  // alarmed at 240 s; the agent stops before the drop's end is recorded
        #expect(ReleaseWindowTests.events(try first.records()).map(\.severity) == ["alarm"])
        let (pipeline, clock) = try restart(first.store, at: 300)
        await weigh(pipeline, clock, 8_000, from: 300, to: 480)
        #expect(ReleaseWindowTests.events(try first.records()).isEmpty)
    }

    @Test func anUnreadableKeptStateStartsTheRulesAfresh() async throws {
        let store = try TemporaryOutbox()
        defer { store.cleanUp() }
        try store.outbox.append([.heartbeat(Heartbeat(stamp: RecordStamp(rseq: 0, boot: 1, monoMs: 0, wallMs: 0, timeQuality: .synchronized), intervalMs: 1, uptimeMs: 0, backlog: 0))]) { _ in
            (EvidencePipeline.carryOverStateKey, "{broken")
        }
        let (pipeline, clock) = try restart(store, at: 0)
        await weigh(pipeline, clock, 8_000, from: 0, to: 180)
        #expect(ReleaseWindowTests.events(try store.sealAndVerifyRecords()).isEmpty)
    }
}
