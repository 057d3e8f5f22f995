import VouchEvidence
@testable import VouchStore

/// Seals what the outbox hands over into a batch of device "dev-1", signed by `key`.
func testSealer(_ key: SigningKey) -> (Outbox.SealInput) -> SealedBatch {
    { input in
        SealedBatch.seal(
            BatchPayload(
                device: "dev-1", bseq: input.bseq, prev: input.prev, bootId: "b", bootCount: 1, sealedWallMs: 1, sealedMonoMs: 1,
                timeQuality: .synchronized, records: input.records, receipt: input.receiptHash), records: input.records, key: key)
    }
}
