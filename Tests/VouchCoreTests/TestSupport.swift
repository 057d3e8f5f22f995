import Foundation
import Testing
import VouchCore

/// Line and column (1-based, in bytes) of the `occurrence`-th match of `needle` in `text`, found by
/// plain scanning so expected positions come from the test text, not from the parser.
func position(of needle: String, in text: String, occurrence: Int = 1, sourceLocation: SourceLocation = #_sourceLocation) -> SourcePosition {
    let hay = Array(text.utf8), pat = Array(needle.utf8)
    var seen = 0
    var line = 1, lineStart = 0
    var i = 0
    while i + pat.count <= hay.count {
        if Array(hay[i..<i + pat.count]) == pat {
            seen += 1
            if seen == occurrence { return SourcePosition(line: line, column: i - lineStart + 1) }
        }
        if hay[i] == 0x0A { line += 1; lineStart = i + 1 }
        i += 1
    }
    Issue.record("\"\(needle)\" (occurrence \(occurrence)) is not in the test text", sourceLocation: sourceLocation)
    return SourcePosition(line: 0, column: 0)
}

func line(of needle: String, in text: String, occurrence: Int = 1, sourceLocation: SourceLocation = #_sourceLocation) -> Int {
    position(of: needle, in: text, occurrence: occurrence, sourceLocation: sourceLocation).line
}

/// Position of `needle` shifted by `offset` bytes, e.g. to the value after `key = `.
func position(of needle: String, in text: String, plus offset: Int, sourceLocation: SourceLocation = #_sourceLocation) -> SourcePosition {
    let p = position(of: needle, in: text, sourceLocation: sourceLocation)
    return SourcePosition(line: p.line, column: p.column + offset)
}

func tomlError(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) -> TOMLError? {
    do {
        let table = try TOML.parse(text)
        Issue.record("expected a TOML error, parsed \(table)", sourceLocation: sourceLocation)
        return nil
    } catch {
        return error
    }
}

func configError(_ text: String, file: String = "vouch.toml", sourceLocation: SourceLocation = #_sourceLocation) -> ConfigError? {
    do {
        let config = try ConfigLoader.parse(text, file: file)
        Issue.record("expected config errors, got \(config)", sourceLocation: sourceLocation)
        return nil
    } catch {
        return error
    }
}

func configDiagnostics(_ text: String, file: String = "vouch.toml", sourceLocation: SourceLocation = #_sourceLocation) -> [ConfigDiagnostic] {
    configError(text, file: file, sourceLocation: sourceLocation)?.diagnostics ?? []
}

/// SHA-256 (hex) of `text` by the system's `sha256sum`: independent of the code under test.
func systemSHA256(_ text: String) throws -> String {
    let file = FileManager.default.temporaryDirectory.appendingPathComponent("vouch-sha-\(UUID().uuidString)")
    try Data(text.utf8).write(to: file)
    defer { try? FileManager.default.removeItem(at: file) }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/sha256sum")
    process.arguments = [file.path]
    let pipe = Pipe()
    process.standardOutput = pipe
    try process.run()
    let output = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return String(decoding: output, as: UTF8.self).split(separator: " ").first.map(String.init) ?? ""
}

@Suite struct CoreTestSupportTests {
    @Test func systemSHA256MatchesFIPSVector() throws {
        #expect(try systemSHA256("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

    @Test func positionHelperCountsLinesAndColumns() {
        let text = "ab\n  cd = 1\ncd"
        #expect(position(of: "cd", in: text) == SourcePosition(line: 2, column: 3))
        #expect(position(of: "cd", in: text, occurrence: 2) == SourcePosition(line: 3, column: 1))
        #expect(position(of: "cd = ", in: text, plus: 5) == SourcePosition(line: 2, column: 8))
    }
}
