import Foundation
import Logging
import Synchronization
import Testing
import VouchCore
import VouchEvidence
import VouchStore

/// A clock the test sets by hand.
final class ScriptedClock: AgentClock {
    private let current: Mutex<ClockReading>

    init(_ reading: ClockReading) { current = Mutex(reading) }

    func now() -> ClockReading { current.withLock { $0 } }
    func set(_ reading: ClockReading) { current.withLock { $0 = reading } }
}

/// Counts calls from a `@Sendable` callback.
final class Counter: Sendable {
    private let n = Mutex(0)
    func increment() { n.withLock { $0 += 1 } }
    var value: Int { n.withLock { $0 } }
}

enum AgentFixtures {
    /// One Modbus channel ("meter.power", whole watts) polled every second, summaries every minute, a
    /// stoppage rule below 500 W for 15 s, and a shift that covers every minute of every day (UTC).
    static let configText = """
        [device]
        id = "acme-press-1"
        data_dir = "/var/lib/vouch"

        [bank]
        url = "https://bank.example:8443"

        [shift]
        timezone = "UTC"
        start = "00:00"
        end = "24:00"

        [evidence]
        summary_interval = "60s"
        batch_interval = "30s"

        [[modbus.device]]
        name = "meter"
        url = "tcp://192.168.1.20:502"
        unit_id = 1
        poll_interval = "1s"

        [[modbus.device.channel]]
        name = "power"
        register = "input"
        address = 52
        type = "f32"
        unit = "W"

        [[stoppage]]
        id = "press-stop"
        channel = "meter.power"
        below = 500.0
        for = "15s"

        """

    static func config(_ text: String = configText, file: String = "/etc/vouch/vouch.toml") throws -> AgentConfig {
        try ConfigLoader.parse(text, file: file)
    }

    static let quietLogger = Logger(label: "vouch-test", factory: { _ in SwiftLogNoOpLogHandler() })

    /// 2023-11-14T22:13:20Z: a Tuesday.
    static let wall0: Int64 = 1_700_000_000_000
    static let mono0: Int64 = 5_000_000

    /// The clocks `seconds` after the start, with the wall clock offset by `wallOffsetMs` (a step).
    static func time(_ seconds: Int64, wallOffsetMs: Int64 = 0, quality: TimeQuality = .synchronized, boot: Int64 = 2) -> ClockReading {
        ClockReading(
            bootCount: boot, monoNs: (mono0 + seconds * 1000) * 1_000_000, wallNs: (wall0 + seconds * 1000 + wallOffsetMs) * 1_000_000,
            quality: quality)
    }

    static func reading(_ time: ClockReading, value: Int64?) -> Reading {
        Reading(channel: "meter.power", time: time, value: value, scaleExponent: 0, unit: "W", rawWords: [0x43FA, 0x0000], quality: .ok)
    }

    static func failed(_ time: ClockReading, code: String = "E_MODBUS_ETIMEDOUT") -> Reading {
        Reading(channel: "meter.power", time: time, value: nil, scaleExponent: 0, unit: "W", rawWords: [], quality: .commError(code: code, message: "timed out"))
    }
}

/// A fresh outbox in its own temporary directory, removed by `cleanUp()`.
struct TemporaryOutbox {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("vouch-agent-\(UUID().uuidString)")
    let outbox: Outbox

    init() throws {
        outbox = try Outbox(path: directory.appendingPathComponent("outbox.sqlite").path)
    }

    func cleanUp() { try? FileManager.default.removeItem(at: directory) }

    /// Every record stored and not yet sealed, as sealed into one batch that is then verified the way
    /// the bank verifies it: so each record is also checked to be a valid v1 record with its rseq.
    func sealAndVerifyRecords(sourceLocation: SourceLocation = #_sourceLocation) throws -> [EvidenceRecord] {
        let key = SigningKey.generate()
        let sealed = try outbox.sealNext(maxRecords: 10_000) { input in
            let payload = BatchPayload(
                device: "acme-press-1", bseq: input.bseq, prev: input.prev, bootId: "boot", bootCount: 2, sealedWallMs: 0, sealedMonoMs: 0,
                timeQuality: .synchronized, records: input.records, receipt: input.receiptHash)
            return SealedBatch.seal(payload, records: input.records, key: key)
        }
        guard let sealed else { return [] }
        return try VerifiedBatch.verify(file: sealed.file, key: key.publicJWK).typedRecords()
    }
}

extension EvidenceRecord {
    var clockStep: ClockStep? { if case .clockStep(let c) = self { c } else { nil } }
    var gap: GapRecord? { if case .gap(let g) = self { g } else { nil } }
    var summary: ReadingSummary? { if case .summary(let s) = self { s } else { nil } }
    var event: EventRecord? { if case .event(let e) = self { e } else { nil } }
    var configChange: ConfigChange? { if case .configChange(let c) = self { c } else { nil } }
    var attestation: Attestation? { if case .attestation(let a) = self { a } else { nil } }
    var heartbeat: Heartbeat? { if case .heartbeat(let h) = self { h } else { nil } }
}
