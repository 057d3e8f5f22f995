import Foundation
import VouchCore
import VouchEvidence

/// A release window: for a set time, pledged stock may leave without an alarm (a sale, a delivery
/// the bank agreed to). A weight or count drop that begins inside an open window is recorded as a
/// release; outside one it is an alarm.
///
/// Every change is a `technician_action` record in the signed chain, stored in the same transaction
/// as the window state the agent keeps (``Outbox/append(_:now:state:)``):
/// - `release_open`: who, why, for how long, which channels. Its `rseq` is the window's id.
/// - `release_close`: closed before its time (`vouch release close`).
/// - `release_expired`: its time ran out.
/// - `release_ended`: the agent could not keep it (the gateway rebooted, or the saved state was
///   unreadable); the borrower must open a new one.
///
/// Times are monotonic (CLOCK_BOOTTIME) within one kernel boot, so setting the wall clock neither
/// lengthens nor shortens a window. A window survives a restart of the agent in the same boot; a reboot
/// ends it, since the time the gateway spent off cannot be measured.
public struct ReleaseWindow: Codable, Sendable, Equatable {
    /// The `rseq` of its `release_open` record: the same id at the bank.
    public var id: Int64
    /// The kernel boot the monotonic times belong to.
    public var bootID: String
    public var openedMonoMs: Int64
    public var openedWallMs: Int64
    public var untilMonoMs: Int64
    public var untilWallMs: Int64
    /// The channels it covers; empty: every channel.
    public var channels: [String]
    public var reason: String
    /// Who opened it: the name given to the CLI, else the Unix user.
    public var who: String

    public init(
        id: Int64, bootID: String, openedMonoMs: Int64, openedWallMs: Int64, untilMonoMs: Int64, untilWallMs: Int64, channels: [String],
        reason: String, who: String
    ) {
        self.id = id
        self.bootID = bootID
        self.openedMonoMs = openedMonoMs
        self.openedWallMs = openedWallMs
        self.untilMonoMs = untilMonoMs
        self.untilWallMs = untilWallMs
        self.channels = channels
        self.reason = reason
        self.who = who
    }

    /// A reading of `channel` at `monoMs` (this boot) falls inside the window.
    public func covers(channel: String, monoMs: Int64) -> Bool {
        monoMs >= openedMonoMs && monoMs < untilMonoMs && (channels.isEmpty || channels.contains(channel))
    }

    var scope: String { channels.isEmpty ? "every channel" : channels.joined(separator: ", ") }
}

/// What `vouch release open` asks for.
public struct ReleaseRequest: Sendable, Equatable {
    public var durationMs: Int64
    public var reason: String
    public var channels: [String]
    /// A name the person gave (`--by`), if any.
    public var by: String?
    /// Who the kernel says connected (nil for a caller inside the agent, such as a test).
    public var peer: UnixPeer?

    public init(durationMs: Int64, reason: String, channels: [String] = [], by: String? = nil, peer: UnixPeer? = nil) {
        self.durationMs = durationMs
        self.reason = reason
        self.channels = channels
        self.by = by
        self.peer = peer
    }
}

/// Why a release window was not opened or closed. Codes are stable.
public struct ReleaseError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: String, Sendable {
        /// The request itself is wrong (duration, reason, channel): fix it and ask again.
        case input = "E_RELEASE_INPUT"
        /// No open window has that id, or none is open.
        case notOpen = "E_RELEASE_NOT_OPEN"
        /// Several windows are open: say which one to close.
        case ambiguous = "E_RELEASE_AMBIGUOUS"
        /// The outbox cannot be written: nothing was opened or closed.
        case store = "E_RELEASE_STORE"
    }
    public let code: Code
    public let message: String
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }
    public var description: String { "\(code.rawValue): \(message)" }
}

/// The open release windows of one agent and the records that change them. Pure: the pipeline stores
/// what it returns.
public struct ReleaseBook: Sendable, Equatable {
    /// Key of the saved windows in the outbox's agent state.
    public static let stateKey = "release_windows"
    /// Shortest window: anything less is a typing mistake (`--for 2` meaning 2 h).
    public static let minimumDurationMs: Int64 = 60_000
    public static let maxReasonLength = 500
    public static let maxNameLength = 100

    /// The kernel boot this agent runs in.
    public let bootID: String
    public private(set) var open: [ReleaseWindow]

    public init(bootID: String, open: [ReleaseWindow] = []) {
        self.bootID = bootID
        self.open = open
    }

    /// True when a window open at `monoMs` covers `channel`.
    public func covers(channel: String, monoMs: Int64) -> Bool {
        open.contains { $0.covers(channel: channel, monoMs: monoMs) }
    }

    /// The windows still open at `monoMs`.
    public func openAt(monoMs: Int64) -> [ReleaseWindow] { open.filter { $0.untilMonoMs > monoMs } }

    /// The state to save (JSON array of windows).
    public func encoded() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return (try? encoder.encode(open)).map { String(decoding: $0, as: UTF8.self) } ?? "[]"
    }

    // MARK: opening and closing

    /// Checks a request against the config; returns it cleaned (trimmed reason, known channels once each).
    public static func validate(_ request: ReleaseRequest, settings: ReleaseSettings, channels known: [String]) throws(ReleaseError) -> ReleaseRequest {
        var r = request
        let longestMs = settings.maxDuration.milliseconds
        guard r.durationMs >= minimumDurationMs else {
            throw ReleaseError(.input, "a release window must last at least 1 min (asked for \(HumanTime.duration(r.durationMs)))")
        }
        guard r.durationMs <= longestMs else {
            throw ReleaseError(
                .input, "a release window may last at most \(HumanTime.duration(longestMs)) ([release] max_duration), asked for \(HumanTime.duration(r.durationMs)); open another one when it ends")
        }
        r.reason = r.reason.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !r.reason.isEmpty else {
            throw ReleaseError(.input, "say why stock may leave (--reason \"sale to Koné Ltd, invoice 2291\"): the bank reads it")
        }
        guard r.reason.count <= maxReasonLength else {
            throw ReleaseError(.input, "the reason is \(r.reason.count) characters long; at most \(maxReasonLength)")
        }
        guard !r.reason.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw ReleaseError(.input, "the reason must be one line of text without control characters")
        }
        if let by = r.by?.trimmingCharacters(in: .whitespacesAndNewlines) {
            guard !by.isEmpty, by.count <= maxNameLength, !by.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
                throw ReleaseError(.input, "--by must be a name of 1 to \(maxNameLength) characters on one line")
            }
            r.by = by
        }
        var seen: [String] = []
        for channel in r.channels where !seen.contains(channel) {
            guard known.contains(channel) else {
                throw ReleaseError(.input, "\"\(channel)\" is not a configured channel (channels: \(known.joined(separator: ", ")))")
            }
            seen.append(channel)
        }
        r.channels = seen
        return r
    }

    /// The `release_open` record for a validated request.
    public static func openRecord(_ r: ReleaseRequest, stamp: RecordStamp) -> EvidenceRecord {
        var params: [String: JSONValue] = [
            "for_ms": .int(r.durationMs), "until_wall_ms": .int(stamp.wallMs + r.durationMs), "channels": .array(r.channels.map { .string($0) }),
            "reason": .string(r.reason),
        ]
        if let peer = r.peer {
            params["uid"] = .int(Int64(peer.uid))
            if let name = peer.userName { params["unix_user"] = .string(name) }
        }
        let scope = r.channels.isEmpty ? "every channel" : r.channels.joined(separator: ", ")
        return .action(
            TechnicianAction(
                stamp: stamp, action: "release_open", who: who(r),
                params: params,
                explanation: "release window opened for \(HumanTime.duration(r.durationMs)) (until \(HumanTime.clock(stamp.wallMs + r.durationMs))) on \(scope): \(r.reason)"))
    }

    static func who(_ r: ReleaseRequest) -> String {
        switch (r.by, r.peer) {
        case (let by?, let peer?): "\(by), as \(peer.description)"
        case (let by?, nil): by
        case (nil, let peer?): peer.description
        case (nil, nil): "agent"
        }
    }

    /// The window a stored `release_open` record opened.
    func window(for stored: EvidenceRecord, request r: ReleaseRequest) -> ReleaseWindow {
        let s = stored.stamp
        return ReleaseWindow(
            id: s.rseq, bootID: bootID, openedMonoMs: s.monoMs, openedWallMs: s.wallMs, untilMonoMs: s.monoMs + r.durationMs,
            untilWallMs: s.wallMs + r.durationMs, channels: r.channels, reason: r.reason, who: Self.who(r))
    }

    mutating func add(_ window: ReleaseWindow) { open.append(window) }

    /// The window `id` names, or the only one open when `id` is nil.
    func pick(_ id: Int64?, monoMs: Int64) throws(ReleaseError) -> ReleaseWindow {
        let current = openAt(monoMs: monoMs)
        if let id {
            guard let w = current.first(where: { $0.id == id }) else {
                throw ReleaseError(
                    .notOpen, "no release window \(id) is open" + (current.isEmpty ? "; none is" : " (open: \(current.map { String($0.id) }.joined(separator: ", ")))"))
            }
            return w
        }
        switch current.count {
        case 0: throw ReleaseError(.notOpen, "no release window is open")
        case 1: return current[0]
        default:
            throw ReleaseError(.ambiguous, "\(current.count) release windows are open (\(current.map { String($0.id) }.joined(separator: ", "))): say which one to close")
        }
    }

    /// The `release_close` record for `window`, closed by a person at `stamp`.
    static func closeRecord(_ window: ReleaseWindow, stamp: RecordStamp, by: String?, peer: UnixPeer?, note: String?) -> EvidenceRecord {
        var params: [String: JSONValue] = ["release": .int(window.id), "open_ms": .int(stamp.monoMs - window.openedMonoMs)]
        if let note { params["note"] = .string(note) }
        if let peer {
            params["uid"] = .int(Int64(peer.uid))
            if let name = peer.userName { params["unix_user"] = .string(name) }
        }
        let who = who(ReleaseRequest(durationMs: 0, reason: "", by: by, peer: peer))
        return .action(
            TechnicianAction(
                stamp: stamp, action: "release_close", who: who, params: params,
                explanation: "release window \(window.id) (\(window.reason)) closed after \(HumanTime.duration(stamp.monoMs - window.openedMonoMs))\(note.map { ": \($0)" } ?? "")"))
    }

    mutating func remove(_ id: Int64) { open.removeAll { $0.id == id } }

    /// Removes the windows whose time is up at `monoMs` and returns their `release_expired` records.
    mutating func expire(monoMs: Int64, stamp: RecordStamp) -> [EvidenceRecord] {
        let due = open.filter { $0.untilMonoMs <= monoMs }
        guard !due.isEmpty else { return [] }
        open.removeAll { $0.untilMonoMs <= monoMs }
        return due.map { w in
            .action(
                TechnicianAction(
                    stamp: stamp, action: "release_expired", who: "agent",
                    params: ["release": .int(w.id), "until_wall_ms": .int(w.untilWallMs)],
                    explanation: "release window \(w.id) (\(w.reason)) ended at its set time, \(HumanTime.clock(w.untilWallMs)); drops are alarms again"))
        }
    }

    /// The book an agent starting in `bootID` at `now` resumes from the saved state, and the records
    /// for windows it cannot keep: expired while the agent was down, begun in another boot (a reboot
    /// ends them: the time the gateway spent off is unknown), or unreadable state.
    public static func resume(saved: String?, bootID: String, now: ClockReading) -> (book: ReleaseBook, records: [EvidenceRecord]) {
        let stamp = RecordStamp(rseq: 0, boot: now.bootCount, monoMs: now.monoMs, wallMs: now.wallMs, timeQuality: now.quality)
        guard let saved else { return (ReleaseBook(bootID: bootID), []) }
        guard let windows = try? JSONDecoder().decode([ReleaseWindow].self, from: Data(saved.utf8)) else {
            let record = EvidenceRecord.action(
                TechnicianAction(
                    stamp: stamp, action: "release_ended", who: "agent", params: ["cause": .string("state_unreadable")],
                    explanation: "the saved release windows could not be read; any window that was open is ended, open a new one if stock is still leaving"))
            return (ReleaseBook(bootID: bootID), [record])
        }
        var book = ReleaseBook(bootID: bootID)
        var records: [EvidenceRecord] = []
        for w in windows {
            if w.bootID != bootID {
                records.append(
                    .action(
                        TechnicianAction(
                            stamp: stamp, action: "release_ended", who: "agent", params: ["release": .int(w.id), "cause": .string("reboot")],
                            explanation: "release window \(w.id) (\(w.reason)) ended: the gateway rebooted, so the time it spent off cannot be counted; open a new one if stock is still leaving")))
            } else {
                book.add(w)
            }
        }
        records += book.expire(monoMs: now.monoMs, stamp: stamp)
        return (book, records)
    }
}

/// Times as a technician reads them.
enum HumanTime {
    /// 7_200_000 → "2 h"; 5_400_000 → "1 h 30 min"; 90_000 → "1 min 30 s".
    static func duration(_ ms: Int64) -> String {
        let s = max(0, ms / 1000)
        let (h, m, sec) = (s / 3_600, s % 3_600 / 60, s % 60)
        var parts: [String] = []
        if h > 0 { parts.append("\(h) h") }
        if m > 0 { parts.append("\(m) min") }
        if sec > 0 || parts.isEmpty { parts.append("\(sec) s") }
        return parts.joined(separator: " ")
    }

    /// UTC clock time, "16:42:05Z", as the pipeline's other explanations.
    static func clock(_ wallMs: Int64) -> String { EvidencePipeline.clockTime(wallMs) }
}

extension Duration {
    var milliseconds: Int64 { components.seconds * 1_000 + components.attoseconds / 1_000_000_000_000_000 }
}
