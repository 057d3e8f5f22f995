import Foundation
import Testing
import VouchCore

@testable import VouchAgent

/// What SIGHUP decides about the config file: refuse a broken one (the agent keeps its config), do
/// nothing for the same bytes, apply a checked change.
struct ConfigReloadTests {
    func file(_ text: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("vouch-reload-\(UUID().uuidString).toml").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func theSameFileIsNothingToApply() throws {
        let path = try file(AgentFixtures.configText)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let running = try ConfigLoader.load(path: path)
        guard case .unchanged(let sha) = ConfigReload.decide(running: running, path: path) else {
            Issue.record("an unchanged file was not reported unchanged")
            return
        }
        #expect(sha == running.sourceHash)
    }

    @Test func aBrokenFileIsRefusedWithItsLine() throws {
        let path = try file(AgentFixtures.configText)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let running = try ConfigLoader.load(path: path)
        try (AgentFixtures.configText + "\n[device]\nid = 7\n").write(toFile: path, atomically: true, encoding: .utf8)
        guard case .refused(let why) = ConfigReload.decide(running: running, path: path) else {
            Issue.record("a broken file was accepted")
            return
        }
        #expect(why.contains(path + ":"), "\(why)")
    }

    @Test func aCheckedChangeIsApplied() throws {
        let path = try file(AgentFixtures.configText)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let running = try ConfigLoader.load(path: path)
        try (AgentFixtures.configText + "\n# a comment changes the bytes, so the hash\n").write(toFile: path, atomically: true, encoding: .utf8)
        guard case .apply(let from, let to, _) = ConfigReload.decide(running: running, path: path) else {
            Issue.record("a checked change was not applied")
            return
        }
        #expect(from == running.sourceHash && to != from)
    }
}
