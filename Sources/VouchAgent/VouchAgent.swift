/// VouchAgent: the composition root of the gateway.
///
/// Invariants:
/// - Every long-running part is a `Service` in one `ServiceGroup`; shutdown runs in reverse start
///   order (pollers, then pipeline flush, then the uplink's last round).
/// - The agent starts only from a validated ``VouchCore/AgentConfig`` and a key file of mode 0600.
public enum VouchAgentInfo {}
