/// VouchDetect: detectors and summarisers as pure state machines.
///
/// Invariants:
/// - No I/O, no clocks of their own: fed readings (which carry their times), they return findings.
///   The same code runs live and in replay.
/// - Memory per channel is bounded by configuration (documented on each type), never by uptime.
public enum VouchDetectInfo {}
