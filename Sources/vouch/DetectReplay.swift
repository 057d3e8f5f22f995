import ArgumentParser
import Foundation
import VouchCore
import VouchDetect

struct DetectReplay: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Run the configured detectors over a CSV history: a row per input row, and the events.",
        discussion: """
            The CSV has a header row, a timestamp column (ISO 8601 with or without an offset; without one it \
            is local time in the config's [shift] time zone; or epoch seconds or milliseconds) and value \
            columns in the channel's units (an empty cell is a failed reading; "-" means the channel was not \
            sampled at that row, so channels polled at different rates can share one file). Each configured channel \
            whose id is a column name is replayed, or name them with --channel CHANNEL[=COLUMN]. A column \
            named "release" says when a release window was open (1) or not (0), as `vouch release open` \
            would have recorded it live. The same \
            detectors, fed the same way, as `vouch run`: the events are the ones the agent would have raised.

            Output: a CSV with one row per input row (timestamp, then per channel its value, its anomaly \
            score and the ids of events starting or ending there) to --out or stdout; the events as JSON \
            lines to --events, or stderr when --out is not given.

            Exit status: 0; 64 usage; 65 the CSV is wrong (the message names the line); 78 the config is \
            invalid or has a rule this build cannot run.

            Examples:
              vouch detect replay --config vouch.toml --csv press-week.csv > replay.csv 2> events.jsonl
              vouch detect replay --config vouch.toml --csv scale.csv --channel scale.weight=kg \\
                  --timestamp when --out replay.csv --events events.jsonl
            """)

    @Option(name: .shortAndLong, help: "Config file with the [[detect]] rules.")
    var config = "/etc/vouch/vouch.toml"

    @Option(help: ArgumentHelp("The history.", valueName: "file"))
    var csv: String

    @Option(help: ArgumentHelp("A channel to replay, from the column of that name or COLUMN (repeatable).", valueName: "channel[=column]"))
    var channel: [String] = []

    @Option(help: ArgumentHelp("The timestamp column (default: timestamp, time, ts, date or datetime, else the first).", valueName: "column"))
    var timestamp: String?

    @Option(help: ArgumentHelp("Write the row CSV here instead of stdout.", valueName: "file"))
    var out: String?

    @Option(help: ArgumentHelp("Write the events (JSON lines) here (default: stderr).", valueName: "file"))
    var events: String?

    func run() throws {
        let settings: AgentConfig
        do { settings = try ConfigLoader.load(path: config) } catch {
            FileHandleOutput.standardError("\(error)")
            throw ExitCode(78)
        }
        var engine: DetectionEngine
        do { engine = try DetectorFactory.engine(for: settings) } catch {
            FileHandleOutput.standardError("vouch detect replay: \(error)")
            throw ExitCode(78)
        }
        guard let data = FileManager.default.contents(atPath: csv), let text = String(data: data, encoding: .utf8) else {
            throw ValidationError("--csv \(csv): \(FileManager.default.fileExists(atPath: csv) ? "cannot be read as UTF-8 text" : "no such file")")
        }
        let history: CSVHistory
        do { history = try CSVHistory(text: text, timestamp: timestamp) } catch { throw Self.csvError(error) }
        let channels = try replayedChannels(history, settings, engine)
        let zone = settings.shift.timeZoneID

        let rowSink = try Sink(path: out)
        let eventSink = try Sink(path: events ?? (out == nil ? "/dev/stderr" : nil))
        rowSink.write((["timestamp"] + channels.flatMap { [$0.id, "\($0.id).score", "\($0.id).event"] }).map(Self.csvField).joined(separator: ",") + "\n")
        var rowCount = 0, eventCount = 0
        // On a terminal, when neither rows nor events are written there: how far a long history has got.
        let progress = out != nil && events?.hasPrefix("/dev/std") != true ? ProgressLine("vouch detect replay: \(csv)") : nil
        defer { progress?.finish() }
        do {
            try Replay.run(
                history, channels: channels, engine: &engine, zoneID: zone,
                row: { row in
                    rowCount += 1
                    if rowCount % 10_000 == 0 { progress?.update("vouch detect replay: \(csv), row \(rowCount) of \(history.rows.count)") }
                    var fields = [row.timestamp]
                    for (i, c) in channels.enumerated() {
                        if row.sampled.indices.contains(i), !row.sampled[i] {
                            fields += [Replay.notSampled, ""]
                        } else {
                            fields.append(row.values[i].map { DetectorFormatting.decimal($0, c.scaleExponent) } ?? "")
                            fields.append(String(format: "%.4f", row.scores[i]))
                        }
                        fields.append(row.events[i].joined(separator: ";"))
                    }
                    rowSink.write(fields.map(Self.csvField).joined(separator: ",") + "\n")
                },
                finding: { finding in
                    eventCount += 1
                    eventSink.write(DetectorFormatting.json(finding, id: Replay.eventID(finding)) + "\n")
                })
        } catch {
            throw Self.csvError(error)
        }
        rowSink.close()
        eventSink.close()
        progress?.finish()
        if out != nil {
            FileHandleOutput.standardError("vouch detect replay: \(rowCount) rows, \(channels.count) channel(s), \(eventCount) finding(s)")
        }
    }

    static func csvError(_ error: ReplayError) -> ExitCode {
        FileHandleOutput.standardError("vouch detect replay: \(error)")
        return ExitCode(65)  // EX_DATAERR
    }

    /// --channel, or every watched channel with a column of its name.
    func replayedChannels(_ history: CSVHistory, _ settings: AgentConfig, _ engine: DetectionEngine) throws -> [Replay.Channel] {
        let descriptors = Dictionary(settings.allChannels.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        var out: [Replay.Channel] = []
        let wanted: [(String, String)] =
            channel.isEmpty
            ? engine.channels.sorted().filter { history.header.contains($0) }.map { ($0, $0) }
            : channel.map { spec in
                let parts = spec.split(separator: "=", maxSplits: 1).map(String.init)
                return (parts[0], parts.count == 2 ? parts[1] : parts[0])
            }
        for (id, column) in wanted {
            guard let descriptor = descriptors[id] else {
                throw ValidationError("--channel \(id): not a channel of \(config) (channels: \(settings.allChannels.map(\.id).joined(separator: ", ")))")
            }
            guard engine.channels.contains(id) else {
                throw ValidationError("--channel \(id): no [[detect]] rule watches it (watched: \(engine.channels.sorted().joined(separator: ", ")))")
            }
            guard let index = history.header.firstIndex(of: column) else {
                throw ValidationError("--channel \(id): no column \"\(column)\" in \(csv) (columns: \(history.header.joined(separator: ", ")))")
            }
            out.append(Replay.Channel(id: id, column: index, scaleExponent: descriptor.scaleExponent))
        }
        guard !engine.channels.isEmpty else {
            throw ValidationError("\(config) has no [[detect]] rule, so there is nothing to replay (stoppage rules are not replayed: write them as kind = \"run_state\")")
        }
        guard !out.isEmpty else {
            throw ValidationError(
                "no column of \(csv) is named after a watched channel (\(engine.channels.sorted().joined(separator: ", "))): name one with --channel CHANNEL=COLUMN")
        }
        return out
    }

    static func csvField(_ s: String) -> String {
        s.contains(",") || s.contains("\"") || s.contains("\n") ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
    }

    /// A file, or stdout for nil.
    final class Sink {
        let handle: FileHandle
        let owned: Bool
        init(path: String?) throws {
            guard let path else {
                handle = FileHandle.standardOutput
                owned = false
                return
            }
            if path == "/dev/stderr" {
                handle = FileHandle.standardError
                owned = false
                return
            }
            guard FileManager.default.createFile(atPath: path, contents: nil), let h = FileHandle(forWritingAtPath: path) else {
                throw ValidationError("cannot write \(path) (does its directory exist, may this user write there?)")
            }
            handle = h
            owned = true
        }
        func write(_ text: String) { handle.write(Data(text.utf8)) }
        func close() { if owned { try? handle.close() } }
    }
}

/// How the replay writes values and findings.
enum DetectorFormatting {
    static func decimal(_ value: Int64, _ exponent: Int64) -> String { IntegerScaling.text(value, exponent: exponent) }

    static let iso = Date.ISO8601FormatStyle(includingFractionalSeconds: true)

    static func time(_ wallMs: Int64) -> String { iso.format(Date(timeIntervalSince1970: Double(wallMs) / 1000)) }

    /// One finding as one JSON object: what the event record of the live agent carries.
    static func json(_ f: Finding, id: String) -> String {
        func value(_ v: Int64?) -> Any { v.map { decimal($0, f.rule.scaleExponent) as Any } ?? NSNull() }
        var doc: [String: Any] = [
            "event_id": id, "phase": f.phase.rawValue, "rule": f.rule.id, "kind": f.rule.kind, "rule_version": f.rule.version,
            "channel": f.rule.channel, "severity": f.severity.rawValue, "start": time(f.start.wallMs), "at": time(f.at.wallMs),
            "duration_ms": f.durationMs, "unit": f.rule.unit, "explanation": f.explanation,
            "params": f.params.mapValues { p -> Any in
                switch p {
                case .int(let v): v
                case .text(let t): t
                }
            },
            "baseline": f.baseline.mapValues { decimal($0, f.rule.scaleExponent) },
            "window": f.window.map { [time($0.wallMs), value($0.value)] },
        ]
        if let end = f.end { doc["end"] = time(end.wallMs) }
        guard let data = try? JSONSerialization.data(withJSONObject: doc, options: [.sortedKeys]) else { return "{}" }
        return String(decoding: data, as: UTF8.self)
    }
}
