import Foundation
import VouchEvidence

/// What the config decoder filled in for keys and tables a file left out: the defaults, as the values the
/// agent really uses. Recorded by the decoder's typed readers themselves (a reader that returns its
/// default records it), so the effective config cannot drift from the loader.
struct FilledIn {
    /// A table of the file, by its dotted name and where it starts (unique within one file).
    struct TableID: Hashable {
        let name: String
        let line: Int
        let column: Int
        init(name: String, position: SourcePosition) {
            self.name = name
            line = position.line
            column = position.column
        }
    }
    /// The position given to a table the file does not have.
    static let absent = SourcePosition(line: 0, column: 0)

    var values: [TableID: [(key: String, value: TOMLValue)]] = [:]
    var notes: [TableID: [String]] = [:]
    /// Top-level tables the file left out, in the order the decoder read them.
    var absentTables: [String] = []
    /// Every table the decoder read: the keys its schema knows and those the file has.
    var visited: [TableID: (known: [String], present: Set<String>)] = [:]

    mutating func visit(_ s: ConfigDecoder.Section) {
        visited[TableID(name: s.name, position: s.position)] = (s.known, Set(s.table.keys))
    }

    /// Only `keys` of `s` apply (a Modbus TCP device has no serial settings; a detector kind has its own keys).
    mutating func narrow(_ s: ConfigDecoder.Section, to keys: [String]) {
        visited[TableID(name: s.name, position: s.position)]?.known = keys
    }

    /// "table.key" for each key a table's schema knows that is neither in the file nor filled in: keys that
    /// are optional with no default (an unset `ca_file`), and sub-tables.
    var unsetKeys: Set<String> {
        var out = Set<String>()
        for (id, table) in visited {
            let filled = Set((values[id] ?? []).map(\.key))
            for key in table.known where !table.present.contains(key) && !filled.contains(key) { out.insert("\(id.name).\(key)") }
        }
        return out
    }

    static func weekdays(_ days: [Weekday]) -> TOMLValue {
        .array(days.map { TOMLNode(value: .string($0.rawValue), position: absent, keyPosition: absent) })
    }

    /// "500ms", "15s", "5m", "12h", "30d": the largest unit that divides the duration exactly.
    static func durationText(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        let ms = seconds * 1000 + attoseconds / 1_000_000_000_000_000
        for (unit, size) in [("d", Int64(86_400_000)), ("h", 3_600_000), ("m", 60_000), ("s", 1000)] where ms != 0 && ms % size == 0 {
            return "\(ms / size)\(unit)"
        }
        return "\(ms)ms"
    }

    /// "1GB", "64MB", "512MiB", or bytes: the largest unit that divides the size exactly.
    static func byteSizeText(_ bytes: Int64) -> String {
        let units: [(String, Int64)] = [("TB", 1_000_000_000_000), ("GB", 1_000_000_000), ("MB", 1_000_000), ("GiB", 1 << 30), ("MiB", 1 << 20), ("kB", 1000), ("KiB", 1024)]
        for (unit, size) in units where bytes != 0 && bytes % size == 0 {
            return "\(bytes / size)\(unit)"
        }
        return "\(bytes)B"
    }
}

extension ConfigLoader {
    /// The config at `path` as the agent uses it: every table and key of the file, plus every default the
    /// file leaves out (marked `# default`), as TOML that loads to the same ``AgentConfig``. The file's
    /// comments and layout are not kept. Throws the same diagnostics as ``load(path:)``.
    public static func effective(path: String) throws(ConfigError) -> String {
        let (text, sha256) = try read(path: path)
        return try effective(text, file: path, sourceHash: sha256)
    }

    /// ``effective(path:)`` for text already read; `file` resolves relative template and board folders.
    public static func effective(_ text: String, file: String, sourceHash: String? = nil) throws(ConfigError) -> String {
        let (config, table, filledIn) = try decodeRecordingDefaults(text, file: file, sourceHash: sourceHash)
        var out = EffectiveConfigWriter(filledIn: filledIn)
        out.line("# vouch config show --effective: \(file) with every default filled in (marked \"# default\").")
        out.line("# The file's own comments are not shown. Config hash (as recorded in evidence): \(config.sourceHash)")
        if config.metrics == nil { out.line("# [metrics] is not set: no metrics are served.") }
        out.table(table, name: "top level", header: [], position: SourcePosition(line: 1, column: 1), isArrayItem: false)
        for name in filledIn.absentTables {
            out.table(TOMLTable(), name: name, header: [name], position: FilledIn.absent, isArrayItem: false)
        }
        return out.text
    }
}

/// Writes a TOML tree back as text: values first, then sub-tables as `[a.b]`, arrays of tables as
/// `[[a.b]]` (inline tables become standard ones, which TOML defines as the same), with the decoder's
/// filled-in defaults after each table's own keys.
struct EffectiveConfigWriter {
    let filledIn: FilledIn
    private(set) var text = ""

    init(filledIn: FilledIn) { self.filledIn = filledIn }

    mutating func line(_ s: String) { text += s + "\n" }

    mutating func table(_ t: TOMLTable, name: String, header: [String], position: SourcePosition, isArrayItem: Bool) {
        let id = FilledIn.TableID(name: name, position: position)
        let plain = t.keys.compactMap { key in t[key].flatMap { Self.isTableLike($0.value) ? nil : (key, $0.value) } }
        let defaults = filledIn.values[id] ?? []
        let notes = filledIn.notes[id] ?? []
        if !header.isEmpty && (isArrayItem || !plain.isEmpty || !defaults.isEmpty || !notes.isEmpty) {
            if !text.isEmpty { line("") }
            let path = header.map(Self.key).joined(separator: ".")
            line(isArrayItem ? "[[\(path)]]" : "[\(path)]")
        }
        for note in notes { line("# \(note)") }
        for (key, value) in plain { line("\(Self.key(key)) = \(Self.value(value))") }
        for (key, value) in defaults { line("\(Self.key(key)) = \(Self.value(value))  # default") }
        for key in t.keys {
            guard let node = t[key] else { continue }
            let childName = header.isEmpty ? key : "\(name).\(key)"
            switch node.value {
            case .table(let child):
                table(child, name: childName, header: header + [key], position: node.position, isArrayItem: false)
            case .array(let items) where Self.isTableLike(node.value):
                for item in items {
                    if case .table(let child) = item.value {
                        table(child, name: childName, header: header + [key], position: item.position, isArrayItem: true)
                    }
                }
            default: break
            }
        }
    }

    /// A table, or a non-empty array of tables: written under a header, not as `key = value`.
    static func isTableLike(_ value: TOMLValue) -> Bool {
        switch value {
        case .table: return true
        case .array(let items): return !items.isEmpty && items.allSatisfy { if case .table = $0.value { true } else { false } }
        default: return false
        }
    }

    static func key(_ k: String) -> String {
        let bare = !k.isEmpty && k.unicodeScalars.allSatisfy { $0.isASCII && (CharacterSet.alphanumerics.contains($0) || $0 == "_" || $0 == "-") }
        return bare ? k : string(k)
    }

    static func value(_ v: TOMLValue) -> String {
        switch v {
        case .string(let s): return string(s)
        case .integer(let i): return String(i)
        case .float(let d):
            let text = "\(d)"
            return text.contains(where: { $0 == "." || $0 == "e" || $0 == "n" || $0 == "i" }) ? text : text + ".0"
        case .boolean(let b): return b ? "true" : "false"
        case .array(let items): return "[" + items.map { value($0.value) }.joined(separator: ", ") + "]"
        case .table(let t): return "{ " + t.keys.compactMap { k in t[k].map { "\(key(k)) = \(value($0.value))" } }.joined(separator: ", ") + " }"
        }
    }

    /// A TOML basic string: quotes, backslashes and control characters escaped.
    static func string(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F: out += String(format: "\\u%04X", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
