import VouchEvidence

/// A stretch of a device's history the bank cannot see, whoever found it: the gateway itself (a `gap`
/// record: agent down, sensor unreachable, disk budget, store corrupt) or the bank (records that never
/// arrived: their rseqs are missing between two batches).
public struct BankGap: Sendable, Equatable {
    public var device: String
    /// `records-missing` (found by the bank), or the gateway's reason (`agent_down`, `sensor_unreachable`,
    /// `disk_budget`, `store_corrupt`).
    public var kind: String
    /// The channel concerned; nil when it is the whole device.
    public var channel: String?
    /// Wall time the gap began and ended, when known (for missing records: the records on either side).
    public var fromWallMs: Int64?
    public var toWallMs: Int64?
    /// Readings or records missing because of it.
    public var missing: Int64
    public var detail: String
    /// The batch that reported it (for missing records: the batch after them).
    public var bseq: Int64
    /// The gateway's gap record, when the gateway reported it.
    public var rseq: Int64?
}

extension BankStore {
    /// Gaps of one device (or of every device), by start time; from `sinceMs` on (by end time) when given.
    public func gaps(device: String?, sinceMs: Int64?, limit: Int = 10_000) async throws(BankError) -> [BankGap] {
        let ids: [String]
        if let device { ids = [device] } else { ids = try await devices().map(\.id) }
        var found: [BankGap] = []
        for id in ids {
            for stored in try await records(device: id, kind: "gap", channel: nil, fromMs: nil, untilMs: nil, afterRseq: nil, limit: limit) {
                guard case .gap(let g)? = try? EvidenceRecord(json: CanonicalJSON.decode(stored.line)) else { continue }
                found.append(
                    BankGap(
                        device: id, kind: g.reason.rawValue, channel: g.channel, fromWallMs: g.fromWallMs, toWallMs: g.toWallMs, missing: g.missing,
                        detail: g.detail, bseq: stored.bseq, rseq: stored.rseq))
            }
        }
        for incident in try await incidents(device: device, nowMs: 0) where incident.kind == "record-gap" {
            // detail: "rseq A-B missing"
            let numbers = incident.detail.split(whereSeparator: { !$0.isNumber }).compactMap { Int64($0) }
            guard numbers.count >= 2 else { continue }
            let (first, last) = (numbers[0], numbers[1])
            found.append(
                BankGap(
                    device: incident.device, kind: "records-missing", channel: nil,
                    fromWallMs: try await recordWallMs(device: incident.device, rseq: first - 1),
                    toWallMs: try await recordWallMs(device: incident.device, rseq: last + 1), missing: last - first + 1,
                    detail: "records \(first)-\(last) never reached the bank (deleted or lost on the gateway before batch \(incident.bseq))", bseq: incident.bseq,
                    rseq: nil))
        }
        return found.filter { gap in sinceMs.map { (gap.toWallMs ?? Int64.max) >= $0 } ?? true }
            .sorted { ($0.device, $0.fromWallMs ?? 0, $0.bseq) < ($1.device, $1.fromWallMs ?? 0, $1.bseq) }
    }
}

extension BankGap {
    public var json: JSONValue {
        [
            "device": .string(device), "kind": .string(kind), "channel": channel.map(JSONValue.string) ?? .null,
            "from_wall_ms": fromWallMs.map(JSONValue.int) ?? .null, "to_wall_ms": toWallMs.map(JSONValue.int) ?? .null, "missing": .int(missing),
            "detail": .string(detail), "bseq": .int(bseq), "rseq": rseq.map(JSONValue.int) ?? .null,
        ]
    }
}

extension ReadingSummary {
    /// A summary as the API gives it: the interval's start, its figures as the device scaled them.
    public func json(bseq: Int64) -> JSONValue {
        [
            "rseq": .int(stamp.rseq), "bseq": .int(bseq), "wall_ms": .int(stamp.wallMs), "time_quality": .string(stamp.timeQuality.rawValue),
            "channel": .string(channel), "interval_ms": .int(intervalMs), "unit": .string(unit), "scale": .int(scale), "count": .int(count),
            "errors": .int(errors), "min": min.map(JSONValue.int) ?? .null, "max": max.map(JSONValue.int) ?? .null, "mean": mean.map(JSONValue.int) ?? .null,
            "last": last.map(JSONValue.int) ?? .null, "last_error": lastError.map(JSONValue.string) ?? .null,
        ]
    }
}
