import Foundation
import Testing

@testable import VouchCore

#if canImport(Glibc)
import Glibc
#endif

/// A datagram socket standing in for systemd's notify socket.
final class FakeNotifySocket {
    let fd: Int32
    let name: String

    /// `abstract`: in the abstract namespace (`@name`), as systemd itself often uses.
    init(abstract: Bool) throws {
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        name = abstract ? "@vouch-notify-test-\(UUID().uuidString.prefix(8))" : NSTemporaryDirectory() + "vouch-notify-\(UUID().uuidString.prefix(8)).sock"
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var path = Array(name.utf8)
        if abstract { path[0] = 0 }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in for (i, b) in path.enumerated() { raw[i] = b } }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + path.count + (abstract ? 0 : 1))
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        guard bound == 0 else { throw SystemdNotifyError(.socket, "bind \(name): \(String(cString: strerror(errno)))") }
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    func receive() -> String? {
        var buffer = [UInt8](repeating: 0, count: 4096)
        let n = recv(fd, &buffer, buffer.count, 0)
        return n < 0 ? nil : String(decoding: buffer[..<n], as: UTF8.self)
    }

    deinit {
        close(fd)
        if !name.hasPrefix("@") { unlink(name) }
    }
}

struct SystemdNotifyTests {
    @Test func withoutNotifySocketThereIsNothingToTell() throws {
        #expect(try SystemdNotifier.fromEnvironment([:]) == nil)
        #expect(try SystemdNotifier.fromEnvironment(["NOTIFY_SOCKET": ""]) == nil)
    }

    @Test func theWatchdogIsFedAtHalfItsInterval() throws {
        let n = try SystemdNotifier.fromEnvironment(["NOTIFY_SOCKET": "/run/systemd/notify", "WATCHDOG_USEC": "30000000"], pid: 42)
        #expect(n?.watchdogInterval == .seconds(15))
        #expect(try SystemdNotifier.fromEnvironment(["NOTIFY_SOCKET": "/run/systemd/notify"], pid: 42)?.watchdogInterval == nil)
        // Another process's watchdog is not ours to feed.
        let other = try SystemdNotifier.fromEnvironment(["NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "7"], pid: 42)
        #expect(other?.watchdogInterval == nil)
        let ours = try SystemdNotifier.fromEnvironment(["NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "42"], pid: 42)
        #expect(ours?.watchdogInterval == .seconds(15))
    }

    @Test(arguments: [
        (["NOTIFY_SOCKET": "run/notify"], SystemdNotifyError.Code.socket, "neither a path nor @abstract"),
        (["NOTIFY_SOCKET": "/" + String(repeating: "x", count: 120)], .socket, "longer than a Unix socket address"),
        (["NOTIFY_SOCKET": "/run/notify", "WATCHDOG_USEC": "30s"], .watchdog, "WATCHDOG_USEC=30s"),
        (["NOTIFY_SOCKET": "/run/notify", "WATCHDOG_USEC": "0"], .watchdog, "WATCHDOG_USEC=0"),
    ])
    func aBadSettingSaysWhich(environment: [String: String], code: SystemdNotifyError.Code, expected: String) {
        do throws(SystemdNotifyError) {
            _ = try SystemdNotifier.fromEnvironment(environment)
            Issue.record("\(environment) was accepted")
        } catch {
            #expect(error.code == code)
            #expect(error.message.contains(expected), "\(error.message)")
        }
    }

    @Test(arguments: [false, true])
    func sendsKeyValueLinesInOneDatagram(abstract: Bool) throws {
        let systemd = try FakeNotifySocket(abstract: abstract)
        let notifier = try #require(try SystemdNotifier.fromEnvironment(["NOTIFY_SOCKET": systemd.name]))
        try notifier.send([("READY", "1"), ("STATUS", "press-1 recording;\nnothing queued")])
        #expect(systemd.receive() == "READY=1\nSTATUS=press-1 recording; nothing queued")
        try notifier.send([("WATCHDOG", "1")])
        #expect(systemd.receive() == "WATCHDOG=1")
    }

    @Test func aSocketNobodyListensOnIsAnErrorThatNamesIt() throws {
        let notifier = SystemdNotifier(socketPath: NSTemporaryDirectory() + "vouch-nobody-\(UUID().uuidString.prefix(8)).sock", watchdogInterval: nil)
        do throws(SystemdNotifyError) {
            try notifier.send([("READY", "1")])
            Issue.record("a send to nowhere succeeded")
        } catch {
            #expect(error.code == .send && error.message.contains(notifier.socketPath))
        }
    }
}
