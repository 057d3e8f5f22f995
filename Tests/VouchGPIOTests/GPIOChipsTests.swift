import Foundation
import Testing
import VouchGPIO

/// Real-kernel GPIO tests (gpio-sim in a VM) come with the GPIO issue; these check the libgpiod binding.
struct GPIOChipsTests {
    @Test func linkedLibgpiodIsVersionOne() {
        // The agent's GPIO layer is written for the v1 API (Debian 12); a v2 library must be noticed.
        #expect(GPIOLibrary.version.hasPrefix("1."), "linked libgpiod \(GPIOLibrary.version)")
    }

    @Test func directoryWithoutChipsGivesAnEmptyList() throws {
        let empty = FileManager.default.temporaryDirectory.appendingPathComponent("vouch-nochips-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: empty) }
        #expect(try GPIOChips.list(deviceDirectory: empty.path) == [])
    }

    @Test func aFileThatIsNotAChipIsAnErrorNamingIt() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vouch-fakechip-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        FileManager.default.createFile(atPath: dir.appendingPathComponent("gpiochip0").path, contents: Data("x".utf8))
        let error = #expect(throws: GPIOError.self) { try GPIOChips.list(deviceDirectory: dir.path) }
        #expect(error?.message.contains("gpiochip0") == true)
    }
}
