import VouchEvidence

/// Generates the evidence of a standard site for size measurements (scripts/bench-evidence-size):
/// 32 Modbus channels and 8 GPIO lines polled at 1 Hz, summarised per minute (or, in `raw` mode,
/// every sample in delta-encoded raw records), a few stoppage events and a heartbeat every 5 minutes,
/// sealed into one batch per minute with the real encoder and signer. Prints the batch stream.
/// Deterministic apart from the ECDSA signatures (fixed-seed values, fixed times).
///
/// Usage: vouch-bench [MINUTES] [summary|raw]
@main
struct VouchBench {
    static func main() {
        let arguments = CommandLine.arguments
        if arguments.count > 1 && arguments[1] == "vectors" {
            // The spec's test vectors, pretty enough to read: one member per line is not needed, the
            // canonical form is what the tests compare.
            print(CanonicalJSON.string(TestVectors.document()))
            return
        }
        let minutes = arguments.count > 1 ? Int(arguments[1]) ?? 60 : 60
        let raw = arguments.count > 2 && arguments[2] == "raw"
        var rng = SplitMix64(seed: 42)
        let key = SigningKey.generate()
        let t0: Int64 = 1_790_000_000_000
        let modbus = (0..<32).map { "meter\($0 / 8).ch\($0 % 8)" }
        let gpio = (0..<8).map { "gpio.line\($0)" }
        var rseq: Int64 = 1
        var prev = Digest256.zeroHex
        for minute in 0..<minutes {
            let wall = t0 + Int64(minute) * 60_000
            let mono = 5_000_000 + Int64(minute) * 60_000
            func stamp() -> RecordStamp {
                defer { rseq += 1 }
                return RecordStamp(rseq: rseq, boot: 3, monoMs: mono, wallMs: wall, timeQuality: .synchronized)
            }
            var records: [EvidenceRecord] = []
            for (i, channel) in modbus.enumerated() {
                let base = Int64(1_000 + i * 397)
                let values = (0..<60).map { _ in base + Int64(rng.next() % 200) - 100 }
                if raw {
                    records.append(.raw(RawSamples(stamp: stamp(), channel: channel, unit: i % 2 == 0 ? "W" : "A", scale: -1, periodMs: 1_000, values: values)))
                    continue
                }
                records.append(.summary(ReadingSummary(
                    stamp: stamp(), channel: channel, intervalMs: 60_000, unit: i % 2 == 0 ? "W" : "A", scale: -1,
                    count: 60, errors: 0, min: values.min(), max: values.max(), mean: values.reduce(0, +) / 60, last: values.last, lastError: nil)))
            }
            for channel in gpio {
                let high = Int64(rng.next() % 61)
                if raw {
                    // A level line: mostly runs of the same value, a few edges a minute.
                    var level: Int64 = 0
                    let values: [Int64?] = (0..<60).map { _ in
                        if rng.next() % 20 == 0 { level = 1 - level }
                        return level
                    }
                    records.append(.raw(RawSamples(stamp: stamp(), channel: channel, unit: "", scale: 0, periodMs: 1_000, values: values)))
                    continue
                }
                records.append(.summary(ReadingSummary(
                    stamp: stamp(), channel: channel, intervalMs: 60_000, unit: "", scale: 0, count: 60, errors: 0,
                    min: high == 0 ? 0 : (high == 60 ? 1 : 0), max: high == 0 ? 0 : 1, mean: high * 100 / 60, last: Int64(rng.next() % 2), lastError: nil)))
            }
            // Two stoppages an hour, each a start and an end record with an evidence window of 10 samples.
            if minute % 30 == 10 || minute % 30 == 15 {
                let starting = minute % 30 == 10
                let window = starting ? (0..<10).map { WindowSample(monoMs: mono - 5_000 + Int64($0) * 1_000, wallMs: wall - 5_000 + Int64($0) * 1_000, value: $0 < 5 ? 120_000 : 0) } : []
                records.append(.event(EventRecord(
                    stamp: stamp(), eventId: "press-stop@\(mono)", phase: starting ? .start : .end, rule: "press-stop", ruleVersion: 1,
                    channel: "meter0.ch0", severity: "high", startMonoMs: mono, startWallMs: wall, endMonoMs: starting ? nil : mono + 300_000,
                    endWallMs: starting ? nil : wall + 300_000, durationMs: starting ? 15_000 : 300_000, unit: "W", scale: -1,
                    params: ["below": 5_000, "min_duration_ms": 15_000, "window_samples": 10], baseline: ["threshold": 5_000], window: window,
                    explanation: starting ? "meter0.ch0 below 500 W for 15 s during the shift: production stopped" : "production resumed after 300 s stopped")))
            }
            if minute % 5 == 0 {
                records.append(.heartbeat(Heartbeat(stamp: stamp(), intervalMs: 300_000, uptimeMs: Int64(minute) * 60_000, backlog: 0)))
            }
            let payload = BatchPayload(
                device: "standard-site-1", bseq: Int64(minute + 1), prev: prev, bootId: "9f0c6c1e-3a1b-4d57-9b43-3c1d2e4f5a6b", bootCount: 3,
                sealedWallMs: wall + 60_000, sealedMonoMs: mono + 60_000, timeQuality: .synchronized, records: records, receipt: nil)
            let sealed = SealedBatch.seal(payload, records: records, key: key)
            prev = sealed.signingInputHash
            print(sealed.fileText, terminator: "")
        }
    }
}

struct SplitMix64 {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
