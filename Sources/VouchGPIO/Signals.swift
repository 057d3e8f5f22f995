/// Signals built on edges. Each is a pure state machine: fed edges and times (nanoseconds on
/// CLOCK_BOOTTIME), deterministic, O(1) memory, no I/O — the same code runs live, in the VM tests and
/// in unit tests with a fake chip.

/// A level that changed, and since when.
public struct LevelChange: Sendable, Equatable {
    public var active: Bool
    /// When the line entered this level (the edge that started the stable run), not when it was confirmed.
    public var sinceNs: Int64

    public init(active: Bool, sinceNs: Int64) {
        self.active = active
        self.sinceNs = sinceNs
    }
}

/// Software debounce: a change counts once the line has stayed at the new level for `stableNs`;
/// shorter blips (contact bounce, a door rattling in the wind) are ignored. State: 3 words.
public struct Debouncer: Sendable, Equatable {
    public let stableNs: Int64
    /// The debounced level.
    public private(set) var active: Bool
    private var candidate: LevelChange?

    public init(stableNs: Int64, initial: Bool) {
        self.stableNs = stableNs
        self.active = initial
    }

    /// A raw edge. Returns the change that became stable before it, if any.
    public mutating func edge(rising: Bool, atNs now: Int64) -> LevelChange? {
        let confirmed = advance(toNs: now)
        if rising == active {
            candidate = nil  // back to the debounced level: the excursion was a bounce
        } else if candidate?.active != rising {
            candidate = LevelChange(active: rising, sinceNs: now)
        }
        if stableNs == 0, let c = candidate {  // no debounce: every edge is a change
            active = c.active
            candidate = nil
            return confirmed ?? c
        }
        return confirmed
    }

    /// Time passes without an edge: returns the change once it has been stable long enough.
    public mutating func advance(toNs now: Int64) -> LevelChange? {
        guard let c = candidate, now - c.sinceNs >= stableNs else { return nil }
        active = c.active
        candidate = nil
        return c
    }
}

/// "Door open for 40 s": reports once when the (debounced) level has been active for `holdNs`, and
/// once when it returns to inactive after that. State: 3 words.
public struct HoldTimer: Sendable, Equatable {
    public enum Event: Sendable, Equatable {
        /// Active for at least the hold time, since `sinceNs`.
        case held(sinceNs: Int64)
        /// Back to inactive after having been held; `durationNs` active in total.
        case released(atNs: Int64, durationNs: Int64)
    }

    public let holdNs: Int64
    private var activeSince: Int64?
    private var reported = false

    public init(holdNs: Int64) { self.holdNs = holdNs }

    public mutating func level(_ change: LevelChange) -> Event? {
        if change.active {
            if activeSince == nil { activeSince = change.sinceNs }
            return advance(toNs: change.sinceNs)
        }
        defer {
            activeSince = nil
            reported = false
        }
        if let since = activeSince, reported { return .released(atNs: change.sinceNs, durationNs: change.sinceNs - since) }
        return nil
    }

    public mutating func advance(toNs now: Int64) -> Event? {
        guard let since = activeSince, !reported, now - since >= holdNs else { return nil }
        reported = true
        return .held(sinceNs: since)
    }
}

/// Pulses of a production counter (one per cycle, per item, per litre): a running total and the
/// count per interval, from which the rate follows. State: 3 words.
public struct PulseCounter: Sendable, Equatable {
    public private(set) var total: Int64 = 0
    public private(set) var inInterval: Int64 = 0
    private var intervalStartNs: Int64

    public init(startNs: Int64) { intervalStartNs = startNs }

    /// Counts rising edges (a pulse is counted when it starts).
    public mutating func edge(rising: Bool) {
        guard rising else { return }
        total += 1
        inInterval += 1
    }

    /// Closes the interval at `now`: pulses in it and the rate in pulses per minute (× 1000, so a slow
    /// counter keeps its fraction as an integer), and starts the next.
    public mutating func closeInterval(atNs now: Int64) -> (count: Int64, perMinuteMilli: Int64) {
        let span = max(1, now - intervalStartNs)
        let count = inInterval
        // count × 60 s / span, in thousandths; 128-bit intermediate so a fast counter over a long span cannot overflow.
        let (high, low) = (count * 60_000).multipliedFullWidth(by: 1_000_000_000)
        let rate = Int64(truncatingIfNeeded: span.dividingFullWidth((high, low)).quotient)
        inInterval = 0
        intervalStartNs = now
        return (count, rate)
    }
}

/// A machine's run signal: the share of an interval it was active (duty cycle). State: 4 words.
public struct DutyCycle: Sendable, Equatable {
    private var active: Bool
    private var lastNs: Int64
    private var intervalStartNs: Int64
    private var activeNs: Int64 = 0

    public init(active: Bool, startNs: Int64) {
        self.active = active
        lastNs = startNs
        intervalStartNs = startNs
    }

    public mutating func level(_ change: LevelChange) {
        let at = max(change.sinceNs, lastNs)
        if active { activeNs += at - lastNs }
        active = change.active
        lastNs = at
    }

    /// Closes the interval: active share in per mille (0…1000), and starts the next.
    public mutating func closeInterval(atNs now: Int64) -> Int64 {
        if active { activeNs += max(0, now - lastNs) }
        let span = max(1, now - intervalStartNs)
        let perMille = min(1000, activeNs * 1000 / span)
        activeNs = 0
        lastNs = now
        intervalStartNs = now
        return perMille
    }
}

/// Detects lost edges. The kernel keeps at most 16 unread events per line under the v1 uAPI and drops
/// the rest silently; edges must alternate, and the level read while the line is quiet must be the
/// level the last edge left. When either fails, events were lost and the count and rate from those
/// edges is a lower bound: that is reported, never hidden. State: 3 words.
public struct EdgeContinuity: Sendable, Equatable {
    /// The level the edges seen so far leave the line at.
    public private(set) var level: Bool
    /// How many times a loss was detected (each may hide several edges).
    public private(set) var losses: Int64 = 0
    /// A level read that disagreed once: an edge may still be on its way.
    private var suspect: Bool?

    public init(level: Bool) { self.level = level }

    /// An edge in kernel order. Returns true when it shows an edge was lost before it (the same direction twice).
    public mutating func edge(rising: Bool) -> Bool {
        suspect = nil
        defer { level = rising }
        if rising == level {
            losses += 1
            return true
        }
        return false
    }

    /// The line's level, read while it is quiet (a wait for edges returned none). A disagreement with
    /// the last edge counts as a loss once two quiet reads in a row show it — an edge that happened
    /// between the wait and the read arrives with the next wait — and then resynchronises.
    public mutating func check(current: Bool) -> Bool {
        guard current != level else {
            suspect = nil
            return false
        }
        guard suspect == current else {
            suspect = current
            return false
        }
        losses += 1
        level = current
        suspect = nil
        return true
    }
}
