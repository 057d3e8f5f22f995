#if canImport(Glibc)
import Glibc
#endif
import CVouchSys
import Synchronization
import VouchEvidence

/// The three times every record carries. Ordering and durations use `monoNs`; `wallNs` is for
/// people and comes with its quality.
public struct ClockReading: Sendable, Equatable {
    public var bootCount: Int64
    /// Nanoseconds since the machine booted (CLOCK_BOOTTIME: keeps counting through suspend).
    public var monoNs: Int64
    /// Nanoseconds since the Unix epoch, UTC.
    public var wallNs: Int64
    public var quality: TimeQuality

    public init(bootCount: Int64, monoNs: Int64, wallNs: Int64, quality: TimeQuality) {
        self.bootCount = bootCount
        self.monoNs = monoNs
        self.wallNs = wallNs
        self.quality = quality
    }

    public var monoMs: Int64 { monoNs / 1_000_000 }
    public var wallMs: Int64 { wallNs / 1_000_000 }
}

/// Injectable so detectors and tests can run on a scripted clock.
public protocol AgentClock: Sendable {
    func now() -> ClockReading
}

/// The machine's clocks. Time quality comes from the kernel's NTP state (`adjtimex`): a clock that
/// no daemon has disciplined reports TIME_ERROR / STA_UNSYNC.
public struct SystemClock: AgentClock {
    public let bootCount: Int64
    public init(bootCount: Int64) { self.bootCount = bootCount }

    public func now() -> ClockReading {
        var mono = timespec()
        var wall = timespec()
        clock_gettime(CLOCK_BOOTTIME, &mono)
        clock_gettime(CLOCK_REALTIME, &wall)
        return ClockReading(
            bootCount: bootCount, monoNs: Int64(mono.tv_sec) * 1_000_000_000 + Int64(mono.tv_nsec),
            wallNs: Int64(wall.tv_sec) * 1_000_000_000 + Int64(wall.tv_nsec), quality: Self.cachedTimeQuality(atMonoNs: Int64(mono.tv_sec) * 1_000_000_000 + Int64(mono.tv_nsec)))
    }

    /// The kernel's NTP state, asked at most every 250 ms: `adjtimex` is a real system call, and a poll
    /// loop stamps thousands of readings a second. A step is still caught at once (the pipeline compares
    /// wall and monotonic time at every reading); only the synchronised flag may be 250 ms old.
    static func cachedTimeQuality(atMonoNs now: Int64) -> TimeQuality {
        if let hit = qualityCache.withLock({ c in now - c.atNs < 250_000_000 && c.atNs != 0 ? c.quality : nil }) { return hit }
        let quality = kernelTimeQuality()
        qualityCache.withLock { $0 = (now, quality) }
        return quality
    }

    private static let qualityCache = Mutex<(atNs: Int64, quality: TimeQuality)>((0, .unsynchronized))

    public static func kernelTimeQuality() -> TimeQuality {
        vouch_clock_synchronised() == 1 ? .synchronized : .unsynchronized
    }

    /// The kernel's random id of this boot (changes at every boot), or "unknown".
    public static func bootID() -> String {
        guard let f = fopen("/proc/sys/kernel/random/boot_id", "r") else { return "unknown" }
        defer { fclose(f) }
        var buffer = [CChar](repeating: 0, count: 64)
        guard fgets(&buffer, 64, f) != nil else { return "unknown" }
        let id = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return id.trimmingTrailingNewline
    }
}

extension String {
    var trimmingTrailingNewline: String {
        var s = self
        while s.last == "\n" || s.last == "\r" { s.removeLast() }
        return s
    }
}
