/// VouchBank: the bank's verifying receiver.
///
/// Invariants:
/// - Nothing is stored that did not verify against an enrolled, unrevoked key.
/// - A batch is stored only if it extends its device's chain (``ChainRule``), decided inside the
///   storage transaction; an identical resend is answered with the stored receipt and stores nothing.
/// - Every refusal carries a stable code and an HTTP status; none crashes the receiver.
public enum VouchBankInfo {}
