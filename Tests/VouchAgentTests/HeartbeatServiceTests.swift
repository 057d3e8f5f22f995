import Foundation
import ServiceLifecycle
import Testing
import VouchCore
import VouchEvidence
import VouchStore
@testable import VouchAgent

@Suite struct HeartbeatServiceTests {
    private typealias T = AgentFixtures

    @Test("records a heartbeat every interval, with its interval, uptime and backlog, until cancelled")
    func recordsHeartbeats() async throws {
        let store = try TemporaryOutbox()
        defer { store.cleanUp() }
        let clock = ScriptedClock(T.time(60))
        let pipeline = EvidencePipeline(config: try T.config(), outbox: store.outbox, clock: clock, logger: T.quietLogger, onEvent: {})
        let service = HeartbeatService(pipeline: pipeline, outbox: store.outbox, intervalMs: 100, startedMonoMs: T.time(0).monoMs)
        let run = Task { try await service.run() }
        // Wait for a few heartbeats (on a real timer), then stop the service.
        let deadline = ContinuousClock.now.advanced(by: .seconds(60))  // an upper bound: a loaded suite can starve the timer for seconds
        while try store.outbox.status().records < 3 && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        run.cancel()
        _ = await run.result
        let beats = try store.sealAndVerifyRecords().compactMap { r -> Heartbeat? in if case .heartbeat(let h) = r { h } else { nil } }
        #expect(beats.count >= 3)
        #expect(beats.allSatisfy { $0.intervalMs == 100 && $0.uptimeMs == 60_000 && $0.backlog == 0 })
        // Stopped means stopped: nothing more is recorded.
        let before = try store.outbox.status().records
        try await Task.sleep(for: .milliseconds(300))
        #expect(try store.outbox.status().records == before)
    }
}
