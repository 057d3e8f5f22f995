import CGPIOD
import Foundation
import Synchronization
import VouchCore

#if canImport(Glibc)
import Glibc
#endif

/// GPIO through libgpiod v1 (Debian 12's 1.6). This file is the only place that calls libgpiod.
public enum GPIOLibrary {
    /// The libgpiod version the agent is linked against, e.g. "1.6.3".
    public static var version: String { String(cString: gpiod_version_string()) }
}

public struct LibgpiodV1: GPIOBackend {
    public let deviceDirectory: String

    public init(deviceDirectory: String = "/dev") {
        self.deviceDirectory = deviceDirectory
    }

    public func chips() throws(GPIOError) -> [GPIOChipInfo] {
        try GPIOChips.list(deviceDirectory: deviceDirectory)
    }

    public func lines(chip label: String) throws(GPIOError) -> [GPIOLineInfo] {
        let chip = try open(label)
        defer { gpiod_chip_close(chip) }
        return (0..<Int(gpiod_chip_num_lines(chip))).compactMap { offset in
            gpiod_chip_get_line(chip, UInt32(offset)).map { Self.info($0, offset: offset) }
        }
    }

    public func requestInputs(chip label: String, lines: [GPIOInputSettings], consumer: String) throws(GPIOError) -> any GPIOInputs {
        let chip = try open(label)
        var requested: [OpaquePointer] = []
        func fail(_ error: GPIOError) -> GPIOError {
            for line in requested { gpiod_line_release(line) }
            gpiod_chip_close(chip)
            return error
        }
        for settings in lines {
            guard let line = gpiod_chip_find_line(chip, settings.line) else { throw fail(lineNotFound(settings.line, chip: chip, label: label)) }
            var flags: Int32 = 0
            if settings.activeLow { flags |= Int32(GPIOD_LINE_REQUEST_FLAG_ACTIVE_LOW) }
            switch settings.bias {
            case .asIs: break
            case .disabled: flags |= Int32(GPIOD_LINE_REQUEST_FLAG_BIAS_DISABLE)
            case .pullUp: flags |= Int32(GPIOD_LINE_REQUEST_FLAG_BIAS_PULL_UP)
            case .pullDown: flags |= Int32(GPIOD_LINE_REQUEST_FLAG_BIAS_PULL_DOWN)
            }
            let result = consumer.withCString { name -> Int32 in
                var config = gpiod_line_request_config(consumer: name, request_type: Int32(GPIOD_LINE_REQUEST_EVENT_BOTH_EDGES), flags: flags)
                return gpiod_line_request(line, &config, 0)
            }
            if result != 0 { throw fail(requestError(line, name: settings.line, label: label, errno: errno)) }
            requested.append(line)
        }
        return LibgpiodV1Inputs(chip: chip, lines: requested, names: lines.map(\.line))
    }

    public func requestOutput(chip label: String, line name: String, activeLow: Bool, initial: Bool, consumer: String) throws(GPIOError) -> any GPIOOutput {
        let chip = try open(label)
        guard let line = gpiod_chip_find_line(chip, name) else {
            let error = lineNotFound(name, chip: chip, label: label)
            gpiod_chip_close(chip)
            throw error
        }
        let flags = activeLow ? Int32(GPIOD_LINE_REQUEST_FLAG_ACTIVE_LOW) : 0
        let result = consumer.withCString { c -> Int32 in
            var config = gpiod_line_request_config(consumer: c, request_type: Int32(GPIOD_LINE_REQUEST_DIRECTION_OUTPUT), flags: flags)
            return gpiod_line_request(line, &config, initial ? 1 : 0)
        }
        if result != 0 {
            let error = requestError(line, name: name, label: label, errno: errno)
            gpiod_chip_close(chip)
            throw error
        }
        return LibgpiodV1Output(chip: chip, line: line, name: name)
    }

    // MARK: lookup, with errors that say what exists

    func open(_ label: String) throws(GPIOError) -> OpaquePointer {
        let all = try chips()
        guard let info = all.first(where: { $0.label == label }) else {
            let present = all.isEmpty ? "no GPIO chips at all in \(deviceDirectory)" : "chips here: " + all.map { "\($0.name) \"\($0.label)\" (\($0.lineCount) lines)" }.joined(separator: ", ")
            throw GPIOError(code: GPIOError.chipNotFound, message: "no GPIO chip labelled \"\(label)\"; \(present)")
        }
        guard let chip = gpiod_chip_open(info.path) else { throw Self.openError(info.path, errno) }
        return chip
    }

    func lineNotFound(_ name: String, chip: OpaquePointer, label: String) -> GPIOError {
        let names = (0..<Int(gpiod_chip_num_lines(chip))).compactMap { offset -> String? in
            guard let line = gpiod_chip_get_line(chip, UInt32(offset)), let n = gpiod_line_name(line) else { return nil }
            return String(cString: n)
        }
        let listing = names.isEmpty ? "its lines have no names (the board's device tree names none)" : "its lines: " + names.joined(separator: ", ")
        return GPIOError(code: GPIOError.lineNotFound, message: "chip \"\(label)\" has no line named \"\(name)\"; \(listing)")
    }

    func requestError(_ line: OpaquePointer, name: String, label: String, errno code: Int32) -> GPIOError {
        switch code {
        case EBUSY:
            _ = gpiod_line_update(line)
            let holder = gpiod_line_consumer(line).map { "\"\(String(cString: $0))\"" } ?? "another program or a kernel driver"
            return GPIOError(code: GPIOError.busy, message: "line \"\(name)\" on \"\(label)\" is busy: held by \(holder); stop it, or pick another line")
        case EACCES, EPERM:
            return GPIOError(code: GPIOError.permission, message: "permission denied on line \"\(name)\" of \"\(label)\": this user needs group gpio (or read-write access to the chip's /dev node)")
        default:
            return GPIOError(code: GPIOError.io, message: "cannot request line \"\(name)\" on \"\(label)\": \(String(cString: strerror(code)))")
        }
    }

    static func openError(_ path: String, _ code: Int32) -> GPIOError {
        if code == EACCES || code == EPERM {
            return GPIOError(code: GPIOError.permission, message: "cannot open \(path): permission denied: this user needs group gpio (usermod -aG gpio USER, then log in again)")
        }
        return GPIOError(code: "E_GPIO_OPEN", message: "cannot open \(path): \(String(cString: strerror(code)))")
    }

    static func info(_ line: OpaquePointer, offset: Int) -> GPIOLineInfo {
        let bias: GPIOBias =
            switch Int(gpiod_line_bias(line)) {
            case Int(GPIOD_LINE_BIAS_PULL_UP): .pullUp
            case Int(GPIOD_LINE_BIAS_PULL_DOWN): .pullDown
            case Int(GPIOD_LINE_BIAS_DISABLE): .disabled
            default: .asIs
            }
        return GPIOLineInfo(
            offset: offset, name: gpiod_line_name(line).map { String(cString: $0) } ?? "",
            isOutput: gpiod_line_direction(line) == Int32(GPIOD_LINE_DIRECTION_OUTPUT), activeLow: gpiod_line_active_state(line) == Int32(GPIOD_LINE_ACTIVE_STATE_LOW),
            bias: bias, consumer: gpiod_line_consumer(line).map { String(cString: $0) }, isUsed: gpiod_line_is_used(line))
    }

    /// Add to a CLOCK_MONOTONIC time (what v1 events carry) to get CLOCK_BOOTTIME (what Vouch's records
    /// use): the two differ by the time the machine spent suspended.
    static func bootOffsetNs() -> Int64 {
        var mono = timespec(), boot = timespec()
        clock_gettime(CLOCK_MONOTONIC, &mono)
        clock_gettime(CLOCK_BOOTTIME, &boot)
        return (Int64(boot.tv_sec) - Int64(mono.tv_sec)) * 1_000_000_000 + Int64(boot.tv_nsec) - Int64(mono.tv_nsec)
    }
}

public enum GPIOChips {
    /// Opens every `/dev/gpiochip*` and reports it. An empty list means the kernel exposes no GPIO
    /// chip (a VM or a board without GPIO); a chip that cannot be opened is an error naming it.
    public static func list(deviceDirectory: String = "/dev") throws(GPIOError) -> [GPIOChipInfo] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: deviceDirectory)) ?? []
        let chips = entries.filter { $0.hasPrefix("gpiochip") }.sorted {
            (Int($0.dropFirst(8)) ?? 0) < (Int($1.dropFirst(8)) ?? 0)
        }
        var out: [GPIOChipInfo] = []
        for name in chips {
            let path = deviceDirectory + "/" + name
            guard let chip = gpiod_chip_open(path) else {
                throw LibgpiodV1.openError(path, errno)
            }
            defer { gpiod_chip_close(chip) }
            out.append(
                GPIOChipInfo(
                    path: path, name: gpiod_chip_name(chip).map { String(cString: $0) } ?? name,
                    label: gpiod_chip_label(chip).map { String(cString: $0) } ?? "", lineCount: Int(gpiod_chip_num_lines(chip))))
        }
        return out
    }
}

/// Requested input lines. The C handles are touched only with `state` locked; `close` is idempotent.
final class LibgpiodV1Inputs: GPIOInputs, @unchecked Sendable {
    // @unchecked: `chip` and `lines` are read and released only inside `state.withLock`, which
    // serialises every libgpiod call on them; after close they are never touched again.
    let lineNames: [String]
    private let chip: OpaquePointer
    private let lines: [OpaquePointer]
    private let state = Mutex(false)  // closed

    init(chip: OpaquePointer, lines: [OpaquePointer], names: [String]) {
        self.chip = chip
        self.lines = lines
        self.lineNames = names
    }

    deinit { close() }

    func values() throws(GPIOError) -> [Int] {
        try state.withLock { (closed: inout Bool) throws(GPIOError) -> [Int] in
            guard !closed else { throw GPIOError(code: GPIOError.io, message: "the lines were released") }
            var out: [Int] = []
            for (i, line) in lines.enumerated() {
                let v = gpiod_line_get_value(line)
                if v < 0 { throw GPIOError(code: GPIOError.io, message: "cannot read \"\(lineNames[i])\": \(String(cString: strerror(errno)))") }
                out.append(Int(v))
            }
            return out
        }
    }

    func waitForEdges(timeout: Duration) throws(GPIOError) -> [GPIOEdge] {
        // poll() on the event fds outside the lock would race a close; the wait is short and the watcher
        // is the only caller, so holding it costs nothing.
        try state.withLock { (closed: inout Bool) throws(GPIOError) -> [GPIOEdge] in
            guard !closed else { throw GPIOError(code: GPIOError.io, message: "the lines were released") }
            var fds = lines.map { pollfd(fd: gpiod_line_event_get_fd($0), events: Int16(POLLIN), revents: 0) }
            let ms = Int32(clamping: timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000)
            let ready = poll(&fds, nfds_t(fds.count), ms)
            if ready < 0 {
                if errno == EINTR { return [] }
                throw GPIOError(code: GPIOError.io, message: "waiting for edges: \(String(cString: strerror(errno)))")
            }
            guard ready > 0 else { return [] }
            let offset = LibgpiodV1.bootOffsetNs()
            var edges: [GPIOEdge] = []
            var buffer = [gpiod_line_event](repeating: gpiod_line_event(), count: 16)
            for (i, fd) in fds.enumerated() where fd.revents & Int16(POLLIN) != 0 {
                let n = buffer.withUnsafeMutableBufferPointer { gpiod_line_event_read_multiple(lines[i], $0.baseAddress, 16) }
                if n < 0 { throw GPIOError(code: GPIOError.io, message: "reading edges of \"\(lineNames[i])\": \(String(cString: strerror(errno)))") }
                for e in buffer.prefix(Int(n)) {
                    let ns = Int64(e.ts.tv_sec) * 1_000_000_000 + Int64(e.ts.tv_nsec) + offset
                    edges.append(GPIOEdge(line: i, rising: e.event_type == Int32(GPIOD_LINE_EVENT_RISING_EDGE), monoNs: ns))
                }
            }
            return edges
        }
    }

    func close() {
        state.withLock { closed in
            guard !closed else { return }
            closed = true
            for line in lines { gpiod_line_release(line) }
            gpiod_chip_close(chip)
        }
    }
}

final class LibgpiodV1Output: GPIOOutput, @unchecked Sendable {
    // @unchecked: `chip` and `line` are used only inside `state.withLock`; released once, on close.
    let lineName: String
    private let chip: OpaquePointer
    private let line: OpaquePointer
    private let state = Mutex(false)  // closed

    init(chip: OpaquePointer, line: OpaquePointer, name: String) {
        self.chip = chip
        self.line = line
        self.lineName = name
    }

    deinit { close() }

    func set(_ active: Bool) throws(GPIOError) {
        try state.withLock { (closed: inout Bool) throws(GPIOError) in
            guard !closed else { throw GPIOError(code: GPIOError.io, message: "line \"\(lineName)\" was released") }
            if gpiod_line_set_value(line, active ? 1 : 0) != 0 {
                throw GPIOError(code: GPIOError.io, message: "cannot drive \"\(lineName)\": \(String(cString: strerror(errno)))")
            }
        }
    }

    func close() {
        state.withLock { closed in
            guard !closed else { return }
            closed = true
            _ = gpiod_line_set_value(line, 0)
            gpiod_line_release(line)
            gpiod_chip_close(chip)
        }
    }
}
