import Foundation
import VouchCore

/// A problem with a replay's input, located in the CSV.
public struct ReplayError: Error, Sendable, Equatable, CustomStringConvertible {
    public static let code = "E_REPLAY"
    /// 1-based line of the CSV (0: not about one line).
    public var line: Int
    public var message: String
    public var description: String { line > 0 ? "line \(line): \(message)" : message }

    public init(line: Int, _ message: String) {
        self.line = line
        self.message = message
    }
}

/// A CSV history: a header row, then one row per moment, a timestamp column (ISO 8601, or epoch
/// seconds or milliseconds) and value columns. Quoted fields (RFC 4180) are understood; an empty value
/// cell is a failed reading.
public struct CSVHistory: Sendable {
    public let header: [String]
    public let timestampColumn: Int
    /// A column named `release` (1: a release window is open, 0 or empty: closed), as `vouch release
    /// open` / `close` would have set it live; nil when there is none.
    public let releaseColumn: Int?
    /// Data rows: their 1-based line in the file and their cells.
    public let rows: [(line: Int, cells: [String])]

    /// Splits `text`; `timestamp` names the timestamp column (default: one named timestamp, time, ts,
    /// date or datetime, else the first).
    public init(text: String, timestamp: String?) throws(ReplayError) {
        var lines: [(Int, [String])] = []
        var lineNumber = 0
        // "\r\n" is one Character in Swift: split on either ending.
        for line in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }) {
            lineNumber += 1
            if line.trimmingCharacters(in: .whitespaces).isEmpty { continue }
            lines.append((lineNumber, try Self.fields(line, line: lineNumber)))
        }
        guard let first = lines.first else { throw ReplayError(line: 0, "the CSV is empty: expected a header row, then one row per moment") }
        header = first.1.map { $0.trimmingCharacters(in: .whitespaces) }
        if let timestamp {
            guard let i = header.firstIndex(of: timestamp) else {
                throw ReplayError(line: first.0, "no column \"\(timestamp)\" for the timestamps (columns: \(header.joined(separator: ", ")))")
            }
            timestampColumn = i
        } else {
            timestampColumn = header.firstIndex { ["timestamp", "time", "ts", "date", "datetime"].contains($0.lowercased()) } ?? 0
        }
        releaseColumn = header.firstIndex { $0.lowercased() == "release" }
        var rows: [(line: Int, cells: [String])] = []
        for (n, cells) in lines.dropFirst() {
            guard cells.count == header.count else {
                throw ReplayError(line: n, "\(cells.count) fields, but the header has \(header.count)")
            }
            rows.append((n, cells))
        }
        self.rows = rows
    }

    /// One line's fields; quotes may hold commas and doubled quotes.
    static func fields(_ line: Substring, line number: Int) throws(ReplayError) -> [String] {
        var out: [String] = []
        var field = ""
        var quoted = false
        var index = line.startIndex
        while index < line.endIndex {
            let c = line[index]
            if quoted {
                if c == "\"" {
                    let next = line.index(after: index)
                    if next < line.endIndex && line[next] == "\"" {
                        field.append("\"")
                        index = next
                    } else {
                        quoted = false
                    }
                } else {
                    field.append(c)
                }
            } else if c == "\"" && field.isEmpty {
                quoted = true
            } else if c == "," {
                out.append(field)
                field = ""
            } else {
                field.append(c)
            }
            index = line.index(after: index)
        }
        if quoted { throw ReplayError(line: number, "a quoted field is not closed") }
        out.append(field)
        return out
    }

    /// A timestamp cell as wall milliseconds: ISO 8601 ("2026-12-01T10:42:00Z", "+01:00", or local to
    /// `zoneID` without an offset; a space may stand for the "T"; fractions of a second are kept to
    /// the millisecond), or an epoch number (milliseconds from 10^11 on, else seconds).
    public static func wallMs(_ text: String, zoneID: String) -> Int64? {
        let t = text.trimmingCharacters(in: .whitespaces)
        if let number = Double(t), t.allSatisfy({ $0.isNumber || $0 == "." || $0 == "-" }) {
            let ms = abs(number) >= 1e11 ? number : number * 1000
            guard ms.isFinite, abs(ms) < 1e15 else { return nil }
            return Int64(ms.rounded())
        }
        var iso = t.replacingOccurrences(of: " ", with: "T")
        var fractionMs: Int64 = 0
        // Fractions of a second: "…:SS.fff" before any zone designator.
        if let dot = iso.firstIndex(of: ".") {
            let afterDot = iso[iso.index(after: dot)...]
            let digits = afterDot.prefix { $0.isNumber }
            guard !digits.isEmpty else { return nil }
            let ms = (String(digits) + "00").prefix(3)
            fractionMs = Int64(ms) ?? 0
            iso = String(iso[..<dot]) + String(afterDot.dropFirst(digits.count))
        }
        return CivilDate.wallMs(localISO: iso, zoneID: zoneID).map { $0 + fractionMs }
    }

    /// A value cell in engineering units as the channel's scaled integer (`exponent` -1: tenths),
    /// rounded half away from zero; nil for an empty cell; an error for anything else that is not a number.
    public static func scaled(_ text: String, exponent: Int64) -> Result<Int64?, ReplayError> {
        let t = text.trimmingCharacters(in: .whitespaces)
        if t.isEmpty || t.lowercased() == "nan" || t.lowercased() == "null" { return .success(nil) }
        guard let v = Double(t), v.isFinite else { return .failure(ReplayError(line: 0, "\"\(text)\" is not a number")) }
        guard let scaled = IntegerScaling.scaled(v, decimals: Int(-exponent)) else {
            return .failure(ReplayError(line: 0, "\(text) is too large for the channel's scale"))
        }
        return .success(scaled)
    }
}

/// Runs a ``DetectionEngine`` over a ``CSVHistory``: the same engine, fed the same way, as the agent.
public struct Replay {
    /// A channel replayed from a column.
    public struct Channel: Sendable, Equatable {
        public var id: String
        public var column: Int
        public var scaleExponent: Int64

        public init(id: String, column: Int, scaleExponent: Int64) {
            self.id = id
            self.column = column
            self.scaleExponent = scaleExponent
        }
    }

    /// One input row's outcome: per channel its value, the score and the ids of events started or
    /// ended at it.
    public struct Row: Sendable, Equatable {
        public var line: Int
        public var timestamp: String
        public var wallMs: Int64
        public var values: [Int64?]
        public var scores: [Double]
        public var events: [[String]]
        /// False where the cell was `-`: the channel was not sampled at this row (nothing was fed).
        public var sampled: [Bool] = []
    }

    /// A cell saying the channel was not sampled at this row, so channels polled at different rates
    /// can share one CSV (an empty cell is a failed reading, which the detectors see).
    public static let notSampled = "-"

    /// The id an event is known by in a replay's output: its rule, channel and start.
    public static func eventID(_ finding: Finding) -> String {
        "\(finding.rule.id)-\(finding.start.wallMs)"
    }

    /// Feeds every row, in order, calling `row` for each and `finding` for each finding. Rows must not
    /// go back in time; the monotonic clock of a replay is the wall clock since the first row.
    public static func run(
        _ history: CSVHistory, channels: [Channel], engine: inout DetectionEngine, zoneID: String, row emit: (Row) -> Void, finding: (Finding) -> Void
    ) throws(ReplayError) {
        var firstWall: Int64?
        var lastWall = Int64.min
        for (line, cells) in history.rows {
            let stamp = cells[history.timestampColumn]
            guard let wall = CSVHistory.wallMs(stamp, zoneID: zoneID) else {
                throw ReplayError(line: line, "timestamp \"\(stamp)\" is neither ISO 8601 (e.g. 2026-12-01T10:42:00Z) nor epoch seconds or milliseconds")
            }
            guard wall >= lastWall else {
                throw ReplayError(line: line, "timestamp \(stamp) is earlier than the row before: rows must be in time order")
            }
            lastWall = wall
            let origin = firstWall ?? wall
            firstWall = origin
            var releaseOpen = false
            if let column = history.releaseColumn {
                switch cells[column].trimmingCharacters(in: .whitespaces) {
                case "1", "true", "open": releaseOpen = true
                case "", "0", "false", "closed": releaseOpen = false
                case let other: throw ReplayError(line: line, "release \"\(other)\": expected 1 (a release window is open) or 0")
                }
            }
            var out = Row(line: line, timestamp: stamp, wallMs: wall, values: [], scores: [], events: [])
            for channel in channels {
                if cells[channel.column].trimmingCharacters(in: .whitespaces) == Self.notSampled {
                    out.values.append(nil)
                    out.scores.append(0)
                    out.events.append([])
                    out.sampled.append(false)
                    continue
                }
                out.sampled.append(true)
                let value: Int64?
                switch CSVHistory.scaled(cells[channel.column], exponent: channel.scaleExponent) {
                case .success(let v): value = v
                case .failure(let e): throw ReplayError(line: line, "column \"\(history.header[channel.column])\": \(e.message)")
                }
                let (score, findings) = engine.feed(channel: channel.id, DetectorSample(monoMs: wall - origin, wallMs: wall, value: value), releaseOpen: releaseOpen)
                out.values.append(value)
                out.scores.append(score)
                out.events.append(findings.map(eventID))
                findings.forEach(finding)
            }
            emit(out)
        }
    }
}
