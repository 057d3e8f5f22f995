import Foundation
import Testing
import VouchBank
import VouchEvidence
import VouchStore
@testable import VouchUplink

@Suite struct UplinkRetentionTests {
    @Test("after a delivery the uplink prunes batches past the retention, at most hourly, and the chain goes on")
    func prunesAfterDelivery() async throws {
        let dir = try TempDir()
        defer { dir.remove() }
        let bank = try Bank(dir: dir)
        try await bank.serving { url in
            var gateway = try Gateway(dir: dir, bankURL: url, maxBatchRecords: 2)
            // Receipts are stamped with the real time; StepClock's wall clock is in 2025, so with a retention
            // of zero its cutoff still lies before every receipt.
            gateway = gateway.withSettings { $0.retention = .zero }
            try bank.store.enroll(gateway.enrollment)
            try gateway.outbox.append(Fixture.summaries(6))
            var failures = 0
            #expect(await gateway.uplink.round(failures: &failures) == nil)
            let held = try gateway.outbox.sealedBatches().map(\.batch.bseq)
            #expect(held == [1, 2, 3])
            #expect(try bank.store.batches(device: gateway.deviceID).count == 3)

            // With a clock far in the future (every receipt is old), the next delivery prunes all but the newest.
            let future = Gateway.FutureClock()
            var late = gateway
            late.clockOverride(future)
            try late.outbox.append(Fixture.summaries(2, from: 7))
            #expect(await late.uplink.round(failures: &failures) == nil)
            #expect(try late.outbox.sealedBatches().map(\.batch.bseq) == [4], "1–3 pruned; 4 is the newest and stays")
            // An hour has not passed: another delivery does not prune again.
            try late.outbox.append(Fixture.summaries(2, from: 9))
            #expect(await late.uplink.round(failures: &failures) == nil)
            #expect(try late.outbox.sealedBatches().map(\.batch.bseq) == [4, 5])
            // The bank still holds everything, and the chain it holds verifies across the pruning.
            #expect(try bank.store.batches(device: gateway.deviceID).map(\.bseq) == [1, 2, 3, 4, 5])
        }
    }
}
