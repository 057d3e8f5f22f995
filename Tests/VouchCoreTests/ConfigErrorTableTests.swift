import Foundation
import Testing
import VouchCore

/// The golden table of broken configs (`ConfigErrorTable/*.toml`, described in its README): each file's
/// `# expect:` lines are the exact diagnostics `vouch config check` gives for it.
struct ConfigErrorTableTests {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("ConfigErrorTable")
    static let expectPrefix = "# expect: "

    static var cases: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []).filter { $0.hasSuffix(".toml") }.sorted()
    }

    @Test func theTableHasAtLeast25Cases() {
        #expect(Self.cases.count >= 25, "\(Self.cases.count) cases in \(Self.directory.path)")
    }

    @Test(arguments: cases)
    func brokenConfigGivesExactlyItsExpectedDiagnostics(name: String) throws {
        let path = Self.directory.appendingPathComponent(name).path
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let expected = text.split(separator: "\n").filter { $0.hasPrefix(Self.expectPrefix) }.map { String($0.dropFirst(Self.expectPrefix.count)) }
        var actual: [String] = []
        do {
            let config = try ConfigLoader.load(path: path)
            Issue.record("\(name) loaded without an error: \(config.device.id)")
        } catch {
            actual = error.diagnostics.map { d in
                (d.file == path ? "" : "\(d.file):") + "\(d.position.line):\(d.position.column): \(d.message)"
            }
        }
        if ProcessInfo.processInfo.environment["VOUCH_UPDATE_GOLDEN"] == "1" {
            let kept = text.split(separator: "\n", omittingEmptySubsequences: false).filter { !$0.hasPrefix(Self.expectPrefix) }
            var body = kept.joined(separator: "\n")
            while body.hasSuffix("\n") { body.removeLast() }
            try (body + "\n" + actual.map { Self.expectPrefix + $0 + "\n" }.joined()).write(toFile: path, atomically: true, encoding: .utf8)
            return
        }
        #expect(!expected.isEmpty, "\(name) has no \(Self.expectPrefix)lines")
        #expect(actual == expected, "\(name)")
    }
}
