/// Small helpers shared by the run-state, sensor-health and baseline detectors. Arithmetic on input
/// values never traps (a corrupt register can hold any Int64); text is built only when a finding is made.
enum HealthMath {
    /// |a - b| without overflow, for any two Int64.
    @inline(__always)
    static func distance(_ a: Int64, _ b: Int64) -> UInt64 {
        a >= b ? UInt64(bitPattern: a &- b) : UInt64(bitPattern: b &- a)
    }

    /// How far `held` is towards `needed`, in [0, 1): a condition that has not yet been confirmed never
    /// scores 1 (1 is kept for an event that is on).
    static func progress(_ held: Int64, of needed: Int64) -> Double {
        guard needed > 0 else { return 0.999 }
        return min(0.999, max(0, Double(held) / Double(needed)))
    }

    /// `f` as an Int64 for a report, saturating (Int64(Float) traps out of range, and a corrupt reading can
    /// be anything).
    static func int64(_ f: Float) -> Int64 {
        guard f.isFinite else { return 0 }
        if f >= 9.2e18 { return Int64.max }
        if f <= -9.2e18 { return Int64.min }
        return Int64(f.rounded())
    }

    /// Sentinel for "no such moment" in Int64 millisecond fields (saves an Optional's padding).
    static let never = Int64.min
}

/// A condition that must hold, unbroken, for a minimum time to be an event: where it began, the last
/// sample that counted, and whether the event is on. Its score is the progress towards the minimum,
/// 1 once on.
struct HealthHold {
    var sinceMs = HealthMath.never
    var lastMs = HealthMath.never
    var on = false

    var isHolding: Bool { sinceMs != HealthMath.never }

    /// Milliseconds held at `nowMs`.
    func held(at nowMs: Int64) -> Int64 { nowMs &- sinceMs }

    func score(needing ms: Int64) -> Double {
        if on { return 1 }
        return isHolding ? HealthMath.progress(lastMs &- sinceMs, of: ms) : 0
    }

    mutating func clear() {
        sinceMs = HealthMath.never
        on = false
    }
}

enum HealthText {
    /// How a confirmed stop (or idle spell) is judged by the calendar, for run_state and machine rules.
    static func stopVerdict(_ context: SiteContext, idle: Bool) -> String {
        if context.plannedStop { return "during a planned stop (holiday or maintenance): \(idle ? "idle" : "stop") recorded" }
        if !context.inShift { return "outside the shift: \(idle ? "idle" : "stop") recorded" }
        return idle ? "during the shift: machine idle, not producing" : "during the shift: production stopped"
    }

    /// A duration a person reads: "45 s", "10 min", "2 h", "2 h 15 min" (truncated, not rounded, so a
    /// stop "for 10 min" has lasted at least that long).
    static func duration(_ ms: Int64) -> String {
        let s = max(0, ms) / 1000
        if s < 60 { return ms < 1000 ? "\(max(0, ms)) ms" : "\(s) s" }
        let m = s / 60
        if m < 60 { return "\(m) min" }
        let h = m / 60, rest = m % 60
        return rest == 0 ? "\(h) h" : "\(h) h \(rest) min"
    }

    static func flag(_ b: Bool) -> ParameterValue { .text(b ? "true" : "false") }
}

extension Detector {
    /// The state bytes of a detector that keeps one ``EvidenceWindow`` inline: the struct itself plus the
    /// window's buffers (the window's own header is already inside the struct).
    func healthStateBytes(window: EvidenceWindow) -> Int {
        MemoryLayout<Self>.size + window.stateBytes - MemoryLayout<EvidenceWindow>.size
    }
}
