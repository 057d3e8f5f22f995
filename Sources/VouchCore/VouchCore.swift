/// VouchCore: the gateway's domain values, shared by every gateway module.
///
/// Invariants:
/// - A ``Reading`` carries an integer-scaled value (never a float) and the raw words it came from.
/// - Every ``AgentConfig`` was produced by ``ConfigLoader`` and has passed all its checks; there is
///   no other way to make one outside tests.
/// - Time comes from an injected ``AgentClock``; nothing here reads a clock on its own.
public enum VouchCoreInfo {
    public static let agentVersion = "0.9.0"
}
