import Foundation

/// A TOML 1.0 reader that keeps where every key and value came from, so configuration errors can
/// point at `file:line:column`. Covers what a gateway config needs: tables, arrays of tables, dotted
/// keys, basic/literal/multi-line strings, integers (decimal, hex, octal, binary, `_` separators),
/// floats, booleans, arrays and inline tables. Dates and times are not supported (configs write
/// times of day as strings such as "06:00"), and say so when met.
public struct SourcePosition: Sendable, Equatable, Comparable, CustomStringConvertible {
    public var line: Int
    public var column: Int
    public init(line: Int, column: Int) {
        self.line = line
        self.column = column
    }
    public static func < (a: Self, b: Self) -> Bool { (a.line, a.column) < (b.line, b.column) }
    public var description: String { "\(line):\(column)" }
}

public indirect enum TOMLValue: Sendable, Equatable {
    case string(String)
    case integer(Int64)
    case float(Double)
    case boolean(Bool)
    case array([TOMLNode])
    case table(TOMLTable)

    /// The TOML type name, as a technician reads it in an error message.
    public var typeName: String {
        switch self {
        case .string: "a string"
        case .integer: "an integer"
        case .float: "a float"
        case .boolean: "a boolean"
        case .array: "an array"
        case .table: "a table"
        }
    }
}

public struct TOMLNode: Sendable, Equatable {
    public var value: TOMLValue
    /// Where the value starts (for tables: the header or the first key that created them).
    public var position: SourcePosition
    /// Where the key naming this value starts (same as `position` for array elements).
    public var keyPosition: SourcePosition
}

public struct TOMLTable: Sendable, Equatable {
    /// Keys in the order they appeared.
    public private(set) var keys: [String] = []
    public private(set) var entries: [String: TOMLNode] = [:]
    /// Tables created by a `[header]` cannot be reopened; implicit ones (from `[a.b]`) can, once.
    var explicitlyDefined = false
    var isInline = false

    public init() {}
    public subscript(key: String) -> TOMLNode? { entries[key] }

    mutating func set(_ key: String, _ node: TOMLNode) {
        if entries[key] == nil { keys.append(key) }
        entries[key] = node
    }
}

public struct TOMLError: Error, Sendable, Equatable, CustomStringConvertible {
    public var position: SourcePosition
    public var message: String
    public var description: String { "\(position): \(message)" }
}

public enum TOML {
    public static func parse(_ text: String) throws(TOMLError) -> TOMLTable {
        var parser = TOMLParser(Array(text.utf8))
        return try parser.parseDocument()
    }
}

struct TOMLParser {
    let b: [UInt8]
    var i = 0
    var line = 1
    var lineStart = 0
    var root = TOMLTable()
    /// Path of the table that `key = value` lines currently go into.
    var current: [PathStep] = []

    enum PathStep: Equatable {
        case key(String)
        case lastElement(String)  // the last table of an array of tables
    }

    init(_ bytes: [UInt8]) { b = bytes }

    var pos: SourcePosition { SourcePosition(line: line, column: i - lineStart + 1) }
    var atEnd: Bool { i >= b.count }
    var peek: UInt8? { i < b.count ? b[i] : nil }

    func error(_ message: String, at p: SourcePosition? = nil) -> TOMLError { TOMLError(position: p ?? pos, message: message) }

    mutating func advance() {
        if b[i] == 0x0A {
            line += 1
            lineStart = i + 1
        }
        i += 1
    }

    mutating func skipSpaces() { while let c = peek, c == 0x20 || c == 0x09 { i += 1 } }

    mutating func skipComment() throws(TOMLError) {
        guard peek == UInt8(ascii: "#") else { return }
        while let c = peek, c != 0x0A {
            if c < 0x20 && c != 0x09 && c != 0x0D { throw error("control character in comment") }
            i += 1
        }
    }

    /// After a key/value pair or header: only spaces, a comment, then a newline or the end.
    mutating func expectLineEnd() throws(TOMLError) {
        skipSpaces()
        try skipComment()
        if atEnd { return }
        if peek == 0x0D, i + 1 < b.count, b[i + 1] == 0x0A { i += 1 }
        guard peek == 0x0A else { throw error("expected the end of the line, found \(describe(peek))") }
        advance()
    }

    func describe(_ c: UInt8?) -> String {
        guard let c else { return "the end of the file" }
        if c == 0x0A { return "the end of the line" }
        if c >= 0x20 && c < 0x7F { return "'\(Character(Unicode.Scalar(c)))'" }
        return "byte 0x\(String(c, radix: 16))"
    }

    mutating func parseDocument() throws(TOMLError) -> TOMLTable {
        if b.starts(with: [0xEF, 0xBB, 0xBF]) { i = 3; lineStart = 3 }
        while !atEnd {
            skipSpaces()
            guard let c = peek else { break }
            if c == UInt8(ascii: "#") { try skipComment(); continue }
            if c == 0x0A { advance(); continue }
            if c == 0x0D, i + 1 < b.count, b[i + 1] == 0x0A { i += 1; advance(); continue }
            if c == UInt8(ascii: "[") { try parseHeader(); continue }
            try parseKeyValue(into: current)
            try expectLineEnd()
        }
        return root
    }

    mutating func parseHeader() throws(TOMLError) {
        let start = pos
        i += 1
        let isArray = peek == UInt8(ascii: "[")
        if isArray { i += 1 }
        skipSpaces()
        let keys = try parseKeyPath()
        skipSpaces()
        guard peek == UInt8(ascii: "]") else { throw error("expected ']' to close the table header") }
        i += 1
        if isArray {
            guard peek == UInt8(ascii: "]") else { throw error("expected ']]' to close the array-of-tables header") }
            i += 1
        }
        try expectLineEnd()
        let names = keys.map(\.name)
        if isArray {
            try appendArrayTable(names, at: start)
        } else {
            try defineTable(names, at: start)
        }
    }

    /// Walks `path` from the root, creating implicit tables, and returns the steps to reach it.
    mutating func resolve(_ names: [String], at p: SourcePosition, header: String) throws(TOMLError) -> [PathStep] {
        var steps: [PathStep] = []
        var table = root
        for name in names {
            if let node = table[name] {
                switch node.value {
                case .table(let t):
                    if t.isInline { throw error("cannot extend inline table \"\(name)\" defined at \(node.position)", at: p) }
                    steps.append(.key(name))
                    table = t
                case .array(let items):
                    guard case .table(let t)? = items.last?.value, Self.isArrayOfTables(node) else {
                        throw error("\"\(name)\" is already an array (at \(node.position)), not a table", at: p)
                    }
                    steps.append(.lastElement(name))
                    table = t
                default:
                    throw error("\"\(name)\" is already \(node.value.typeName) (at \(node.keyPosition)), it cannot also be a table", at: p)
                }
            } else {
                var implicit = TOMLTable()
                implicit.explicitlyDefined = false
                try modify(steps) { t throws(TOMLError) in t.set(name, TOMLNode(value: .table(implicit), position: p, keyPosition: p)) }
                steps.append(.key(name))
                table = implicit
            }
        }
        return steps
    }

    static func isArrayOfTables(_ node: TOMLNode) -> Bool {
        guard case .array(let items) = node.value else { return false }
        return items.allSatisfy { if case .table(let t) = $0.value { return !t.isInline } else { return false } } && !items.isEmpty
    }

    mutating func defineTable(_ names: [String], at p: SourcePosition) throws(TOMLError) {
        let parent = try resolve(Array(names.dropLast()), at: p, header: "")
        let last = names[names.count - 1]
        var existing: TOMLNode?
        try modify(parent) { t throws(TOMLError) in existing = t[last] }
        if let node = existing {
            guard case .table(var t) = node.value, !t.isInline else {
                throw error("\"\(names.joined(separator: "."))\" is already defined at \(node.keyPosition)", at: p)
            }
            if t.explicitlyDefined { throw error("table [\(names.joined(separator: "."))] is defined twice (first at \(node.position))", at: p) }
            t.explicitlyDefined = true
            let newNode = TOMLNode(value: .table(t), position: p, keyPosition: p)
            try modify(parent) { tt throws(TOMLError) in tt.set(last, newNode) }
        } else {
            var t = TOMLTable()
            t.explicitlyDefined = true
            try modify(parent) { tt throws(TOMLError) in tt.set(last, TOMLNode(value: .table(t), position: p, keyPosition: p)) }
        }
        current = parent + [.key(last)]
    }

    mutating func appendArrayTable(_ names: [String], at p: SourcePosition) throws(TOMLError) {
        let parent = try resolve(Array(names.dropLast()), at: p, header: "")
        let last = names[names.count - 1]
        var t = TOMLTable()
        t.explicitlyDefined = true
        let element = TOMLNode(value: .table(t), position: p, keyPosition: p)
        var failure: TOMLError?
        try modify(parent) { tt throws(TOMLError) in
            if let node = tt[last] {
                guard case .array(var items) = node.value, Self.isArrayOfTables(node) else {
                    failure = TOMLError(position: p, message: "\"\(names.joined(separator: "."))\" is already \(node.value.typeName) (at \(node.keyPosition)), not an array of tables")
                    return
                }
                items.append(element)
                tt.set(last, TOMLNode(value: .array(items), position: node.position, keyPosition: node.keyPosition))
            } else {
                tt.set(last, TOMLNode(value: .array([element]), position: p, keyPosition: p))
            }
        }
        if let failure { throw failure }
        current = parent + [.lastElement(last)]
    }

    /// Applies `body` to the table at `steps` (from the root), writing the change back.
    mutating func modify(_ steps: [PathStep], _ body: (inout TOMLTable) throws(TOMLError) -> Void) throws(TOMLError) {
        try Self.modify(&root, steps[...], body)
    }

    static func modify(_ table: inout TOMLTable, _ steps: ArraySlice<PathStep>, _ body: (inout TOMLTable) throws(TOMLError) -> Void) throws(TOMLError) {
        guard let step = steps.first else { return try body(&table) }
        switch step {
        case .key(let name):
            guard var node = table[name], case .table(var t) = node.value else { return }
            try modify(&t, steps.dropFirst(), body)
            node.value = .table(t)
            table.set(name, node)
        case .lastElement(let name):
            guard var node = table[name], case .array(var items) = node.value, var lastNode = items.last,
                case .table(var t) = lastNode.value
            else { return }
            try modify(&t, steps.dropFirst(), body)
            lastNode.value = .table(t)
            items[items.count - 1] = lastNode
            node.value = .array(items)
            table.set(name, node)
        }
    }

    struct Key { var name: String; var position: SourcePosition }

    mutating func parseKeyPath() throws(TOMLError) -> [Key] {
        var keys: [Key] = []
        while true {
            skipSpaces()
            let p = pos
            keys.append(Key(name: try parseSimpleKey(), position: p))
            skipSpaces()
            if peek == UInt8(ascii: ".") { i += 1; continue }
            return keys
        }
    }

    mutating func parseSimpleKey() throws(TOMLError) -> String {
        guard let c = peek else { throw error("expected a key, found the end of the file") }
        if c == UInt8(ascii: "\"") { return try parseBasicString() }
        if c == UInt8(ascii: "'") { return try parseLiteralString() }
        let start = i
        while let c = peek, isBareKeyChar(c) { i += 1 }
        guard i > start else { throw error("expected a key, found \(describe(peek))") }
        return String(decoding: b[start..<i], as: UTF8.self)
    }

    func isBareKeyChar(_ c: UInt8) -> Bool {
        (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(c) || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(c)
            || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(c) || c == UInt8(ascii: "_") || c == UInt8(ascii: "-")
    }

    /// `key = value` into the table at `path` (the current table, or an inline table being built).
    mutating func parseKeyValue(into path: [PathStep]) throws(TOMLError) {
        let keys = try parseKeyPath()
        skipSpaces()
        guard peek == UInt8(ascii: "=") else {
            throw error("expected '=' after the key \"\(keys.map(\.name).joined(separator: "."))\", found \(describe(peek))")
        }
        i += 1
        skipSpaces()
        let valuePos = pos
        let value = try parseValue()
        try insert(keys, TOMLNode(value: value, position: valuePos, keyPosition: keys[0].position), under: path)
    }

    mutating func insert(_ keys: [Key], _ node: TOMLNode, under path: [PathStep]) throws(TOMLError) {
        var steps = path
        for k in keys.dropLast() {
            var existing: TOMLNode?
            try modify(steps) { t throws(TOMLError) in existing = t[k.name] }
            if let e = existing {
                guard case .table(let t) = e.value, !t.isInline else {
                    throw error("\"\(k.name)\" is already \(e.value.typeName) (at \(e.keyPosition))", at: k.position)
                }
            } else {
                try modify(steps) { t throws(TOMLError) in t.set(k.name, TOMLNode(value: .table(TOMLTable()), position: k.position, keyPosition: k.position)) }
            }
            steps.append(.key(k.name))
        }
        let last = keys[keys.count - 1]
        var duplicate: TOMLNode?
        try modify(steps) { t throws(TOMLError) in
            if let e = t[last.name] { duplicate = e } else { t.set(last.name, node) }
        }
        if let d = duplicate {
            throw error("key \"\(keys.map(\.name).joined(separator: "."))\" is defined twice (first at \(d.keyPosition))", at: last.position)
        }
    }

    mutating func parseValue() throws(TOMLError) -> TOMLValue {
        guard let c = peek else { throw error("expected a value, found the end of the file") }
        switch c {
        case UInt8(ascii: "\""):
            if b[i...].starts(with: Array("\"\"\"".utf8)) { return .string(try parseMultilineBasic()) }
            return .string(try parseBasicString())
        case UInt8(ascii: "'"):
            if b[i...].starts(with: Array("'''".utf8)) { return .string(try parseMultilineLiteral()) }
            return .string(try parseLiteralString())
        case UInt8(ascii: "["): return try parseArray()
        case UInt8(ascii: "{"): return try parseInlineTable()
        case UInt8(ascii: "t"), UInt8(ascii: "f"):
            for (word, value) in [("true", true), ("false", false)] where b[i...].starts(with: Array(word.utf8)) {
                let after = i + word.utf8.count
                if after >= b.count || !isBareKeyChar(b[after]) {
                    i = after
                    return .boolean(value)
                }
            }
            throw error("expected a value; strings need quotes, e.g. \"\(bareWord())\"")
        default:
            if c == UInt8(ascii: "+") || c == UInt8(ascii: "-") || c == UInt8(ascii: "i") || c == UInt8(ascii: "n")
                || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(c)
            {
                return try parseNumber()
            }
            throw error("expected a value (string, number, boolean, array or table); strings need quotes, e.g. \"\(bareWord())\"")
        }
    }

    func bareWord() -> String {
        var j = i
        while j < b.count, b[j] != 0x0A, b[j] != 0x20, b[j] != UInt8(ascii: "#"), b[j] != UInt8(ascii: ","), j - i < 40 { j += 1 }
        return String(decoding: b[i..<j], as: UTF8.self)
    }

    mutating func parseNumber() throws(TOMLError) -> TOMLValue {
        let start = i
        let p = pos
        while let c = peek, !(c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0D || c == UInt8(ascii: ",") || c == UInt8(ascii: "]")
            || c == UInt8(ascii: "}") || c == UInt8(ascii: "#"))
        {
            i += 1
        }
        let text = String(decoding: b[start..<i], as: UTF8.self)
        if text.contains(":") || (text.count >= 10 && text.dropFirst(4).first == "-") {
            throw error("dates and times are not supported here; write a time of day as a string, e.g. \"06:00\"", at: p)
        }
        if let letter = text.first(where: { $0.isLetter }), !["inf", "+inf", "-inf", "nan", "+nan", "-nan"].contains(text),
            !(text.hasPrefix("0x") || text.hasPrefix("0o") || text.hasPrefix("0b")), !(letter == "e" || letter == "E") || text.first?.isLetter == true
        {
            throw error("expected a value; strings need quotes, e.g. \"\(text)\"", at: p)
        }
        switch text {
        case "inf", "+inf": return .float(.infinity)
        case "-inf": return .float(-.infinity)
        case "nan", "+nan", "-nan": return .float(.nan)
        default: break
        }
        if text.contains("__") || text.hasPrefix("_") || text.hasSuffix("_") || text.contains("_.") || text.contains("._") {
            throw error("invalid number \(text): '_' must stand between digits", at: p)
        }
        let clean = text.replacingOccurrences(of: "_", with: "")
        for (prefix, radix) in [("0x", 16), ("0o", 8), ("0b", 2)] where clean.hasPrefix(prefix) {
            let digits = clean.dropFirst(2)
            guard !digits.isEmpty, digits.allSatisfy({ $0.isHexDigit && Int(String($0), radix: radix) != nil }),
                let v = Int64(digits, radix: radix)
            else { throw error("invalid number \(text)", at: p) }
            return .integer(v)
        }
        let digits = clean.hasPrefix("+") || clean.hasPrefix("-") ? String(clean.dropFirst()) : clean
        if digits.count > 1, digits.hasPrefix("0"), digits.dropFirst().first?.isNumber == true {
            throw error("invalid number \(text): leading zeros are not allowed", at: p)
        }
        if clean.contains(".") || clean.contains("e") || clean.contains("E") {
            guard !clean.hasSuffix("."), !clean.hasPrefix("."), !clean.contains(".e"), !clean.contains(".E"),
                let v = Double(clean)
            else { throw error("invalid number \(text)", at: p) }
            return .float(v)
        }
        guard let v = Int64(clean) else {
            throw error(
                clean.allSatisfy({ $0.isNumber || $0 == "-" || $0 == "+" }) ? "integer \(text) does not fit in 64 bits" : "invalid number \(text)",
                at: p)
        }
        return .integer(v)
    }

    mutating func parseBasicString() throws(TOMLError) -> String {
        let p = pos
        i += 1
        var out: [UInt8] = []
        while true {
            guard let c = peek, c != 0x0A else { throw error("string is not closed on its line (missing '\"')", at: p) }
            i += 1
            if c == UInt8(ascii: "\"") { break }
            if c == UInt8(ascii: "\\") { try parseEscape(into: &out); continue }
            if c < 0x20 && c != 0x09 || c == 0x7F { throw error("control character in string; escape it") }
            out.append(c)
        }
        return String(decoding: out, as: UTF8.self)
    }

    mutating func parseEscape(into out: inout [UInt8]) throws(TOMLError) {
        guard let e = peek else { throw error("unfinished escape") }
        i += 1
        switch e {
        case UInt8(ascii: "b"): out.append(0x08)
        case UInt8(ascii: "t"): out.append(0x09)
        case UInt8(ascii: "n"): out.append(0x0A)
        case UInt8(ascii: "f"): out.append(0x0C)
        case UInt8(ascii: "r"): out.append(0x0D)
        case UInt8(ascii: "\""): out.append(0x22)
        case UInt8(ascii: "\\"): out.append(0x5C)
        case UInt8(ascii: "u"), UInt8(ascii: "U"):
            let n = e == UInt8(ascii: "u") ? 4 : 8
            guard i + n <= b.count, b[i..<i + n].allSatisfy({ Character(Unicode.Scalar($0)).isHexDigit }),
                let v = UInt32(String(decoding: b[i..<i + n], as: UTF8.self), radix: 16),
                let scalar = Unicode.Scalar(v)
            else { throw error("invalid unicode escape") }
            i += n
            out.append(contentsOf: Array(String(Character(scalar)).utf8))
        default:
            throw error("invalid escape \\\(Character(Unicode.Scalar(e))); in Windows paths use '…' or \\\\")
        }
    }

    mutating func parseLiteralString() throws(TOMLError) -> String {
        let p = pos
        i += 1
        let start = i
        while true {
            guard let c = peek, c != 0x0A else { throw error("string is not closed on its line (missing \"'\")", at: p) }
            if c == UInt8(ascii: "'") { break }
            i += 1
        }
        defer { i += 1 }
        return String(decoding: b[start..<i], as: UTF8.self)
    }

    mutating func parseMultilineBasic() throws(TOMLError) -> String {
        let p = pos
        i += 3
        if peek == 0x0A { advance() } else if peek == 0x0D, i + 1 < b.count, b[i + 1] == 0x0A { i += 1; advance() }
        var out: [UInt8] = []
        while true {
            guard let c = peek else { throw error("multi-line string is not closed (missing '\"\"\"')", at: p) }
            if b[i...].starts(with: Array("\"\"\"".utf8)) {
                i += 3
                while peek == UInt8(ascii: "\""), out.count < Int.max { out.append(0x22); i += 1 }
                return String(decoding: out, as: UTF8.self)
            }
            if c == UInt8(ascii: "\\") {
                i += 1
                // A backslash at the end of a line trims the newline and following whitespace.
                var j = i
                while j < b.count, b[j] == 0x20 || b[j] == 0x09 { j += 1 }
                if j < b.count, b[j] == 0x0A || b[j] == 0x0D {
                    i = j
                    while let w = peek, w == 0x20 || w == 0x09 || w == 0x0A || w == 0x0D { advance() }
                    continue
                }
                try parseEscape(into: &out)
                continue
            }
            out.append(c)
            advance()
        }
    }

    mutating func parseMultilineLiteral() throws(TOMLError) -> String {
        let p = pos
        i += 3
        if peek == 0x0A { advance() }
        var out: [UInt8] = []
        while true {
            guard let c = peek else { throw error("multi-line string is not closed (missing \"'''\")", at: p) }
            if b[i...].starts(with: Array("'''".utf8)) { i += 3; return String(decoding: out, as: UTF8.self) }
            out.append(c)
            advance()
        }
    }

    mutating func skipWhitespaceCommentsNewlines() throws(TOMLError) {
        while true {
            skipSpaces()
            if peek == UInt8(ascii: "#") { try skipComment() }
            if let c = peek, c == 0x0A || c == 0x0D { advance(); continue }
            return
        }
    }

    mutating func parseArray() throws(TOMLError) -> TOMLValue {
        let p = pos
        i += 1
        var items: [TOMLNode] = []
        while true {
            try skipWhitespaceCommentsNewlines()
            guard let c = peek else { throw error("array is not closed (missing ']')", at: p) }
            if c == UInt8(ascii: "]") { i += 1; return .array(items) }
            let vp = pos
            items.append(TOMLNode(value: try parseValue(), position: vp, keyPosition: vp))
            try skipWhitespaceCommentsNewlines()
            if peek == UInt8(ascii: ",") { i += 1; continue }
            if peek == UInt8(ascii: "]") { i += 1; return .array(items) }
            throw error("expected ',' or ']' in the array, found \(describe(peek))")
        }
    }

    mutating func parseInlineTable() throws(TOMLError) -> TOMLValue {
        i += 1
        // Build the inline table in a scratch parser state rooted at an empty table.
        let savedRoot = root
        root = TOMLTable()
        let path: [PathStep] = []
        skipSpaces()
        if peek == UInt8(ascii: "}") {
            i += 1
        } else {
            while true {
                skipSpaces()
                try parseKeyValue(into: path)
                skipSpaces()
                if peek == UInt8(ascii: ",") { i += 1; continue }
                if peek == UInt8(ascii: "}") { i += 1; break }
                root = savedRoot
                throw error("expected ',' or '}' in the inline table (inline tables stay on one line)", )
            }
        }
        var table = root
        root = savedRoot
        table.isInline = true
        return .table(table)
    }
}
