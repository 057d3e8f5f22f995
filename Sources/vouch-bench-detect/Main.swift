import Foundation
import VouchCore
import VouchDetect

/// Detector throughput and state size (scripts/bench-detect): every kind of `[[detect]]` rule fed a
/// realistic sample stream on one core, then the standard site's whole rule set, each against a
/// baseline loop over the same samples in the same process. Prints figures; not shipped.
///
/// Usage: vouch-bench-detect [--samples N] [--rounds R]
@main
struct DetectBench {
    static func main() {
        let args = CommandLine.arguments
        func option(_ name: String, _ fallback: Int) -> Int {
            guard let i = args.firstIndex(of: name), i + 1 < args.count, let v = Int(args[i + 1]), v > 0 else { return fallback }
            return v
        }
        let samples = option("--samples", 20_000_000)
        let rounds = option("--rounds", 3)
        #if DEBUG
        print("bench-detect: WARNING: a debug build; figures are meaningless (build with -c release)")
        #endif
        let stream = SampleStream(count: 1 << 16)
        // The baseline: a detector that only keeps the last value, fed by the same loop, so the ratio is
        // what each detector's own logic costs over the call and the sample stream.
        let baseline = median((0..<rounds).map { _ in
            var d: any Detector = NullDetector()
            return measure(samples) { stream.feed(&d, count: $0) }
        })
        print("bench-detect: baseline (a detector that only keeps the last value, same loop): \(format(baseline)) samples/s")
        var failures: [String] = []
        for kind in DetectKind.allCases where kind != .machine {
            let rule = Standard.rule(kind, channel: "site.x")
            let channel = ChannelDescriptor(id: "site.x", unit: "W", scaleExponent: -1, isNumeric: true, period: .seconds(1))
            let detector: any Detector
            do { detector = try DetectorFactory.make(rule, channel: channel) } catch {
                print("bench-detect: \(kind.rawValue): not built (\(error))")
                failures.append(kind.rawValue)
                continue
            }
            // The detector alone, each sample with its context (computed once per sample time for all of a
            // site's detectors: the engine's cost, measured with the whole site below).
            let rate = median((0..<rounds).map { _ in
                var d = detector
                return measure(samples) { stream.feed(&d, count: $0) }
            })
            let bytes = detector.stateBytes
            print(
                "bench-detect: \(kind.rawValue.padding(toLength: 11, withPad: " ", startingAt: 0)) \(format(rate)) samples/s/core "
                    + "(\(String(format: "%.2f", rate / baseline)) of baseline), \(bytes) B of state per channel  "
                    + "goals: >= 10 M/s \(rate >= 10e6 ? "met" : "NOT met"), <= 512 B \(bytes <= 512 ? "met" : "NOT met")")
        }
        // A machine rule over three run_state sources (power, counter, run signal on three channels): the
        // engine with the machine against the same engine without it; each sample goes to one source.
        do {
            let channels = ["press.power", "press.strokes", "press.run"]
            var with = try Standard.machine(channels: channels, combined: true)
            var without = try Standard.machine(channels: channels, combined: false)
            let rateWith = median((0..<rounds).map { _ in measure(samples) { stream.feedRoundRobin(&with, channels: channels, count: $0) } })
            let rateWithout = median((0..<rounds).map { _ in measure(samples) { stream.feedRoundRobin(&without, channels: channels, count: $0) } })
            let bytes = with.machines.first?.stateBytes ?? 0
            // The machine's own cost per sample: the difference of the two engines' times per sample
            // (the engine's calendar lookup and the sources are in both).
            let ownNs = max(1e-3, 1e9 / rateWith - 1e9 / rateWithout)
            let own = 1e9 / ownNs
            print(
                "bench-detect: machine     \(format(own)) samples/s/core of its own (\(String(format: "%.0f", ownNs)) ns a sample: the engine with it "
                    + "\(format(rateWith)), with its 3 run_state sources alone \(format(rateWithout))), \(bytes) B of state  "
                    + "goals: >= 10 M/s \(own >= 10e6 ? "met" : "NOT met"), <= 512 B \(bytes <= 512 ? "met" : "NOT met")")
        } catch {
            print("bench-detect: machine: not built (\(error))")
            failures.append("machine")
        }
        // The standard site: 32 Modbus channels and 8 GPIO lines, each with the rules a site would give it.
        do {
            var engine = try Standard.site()
            let channels = Array(engine.channels).sorted()
            let rate = median((0..<rounds).map { _ in measure(samples) { stream.feedRoundRobin(&engine, channels: channels, count: $0) } })
            let perChannel = Array(engine.stateBytesByChannel.values)
            print(
                "bench-detect: standard site (\(engine.detectors.count) rules on \(channels.count) channels, each sample given its calendar "
                    + "context and its channel's rules): \(format(rate)) samples/s/core; state per channel (all its rules) max \(perChannel.max() ?? 0) B, "
                    + "median \(perChannel.sorted()[perChannel.count / 2]) B, total \(perChannel.reduce(0, +)) B")
        } catch {
            print("bench-detect: standard site: not built (\(error))")
        }
        if !failures.isEmpty { print("bench-detect: kinds not built yet: \(failures.joined(separator: ", "))") }
    }

    /// Samples per second of `body` over `count` samples.
    static func measure(_ count: Int, _ body: (Int) -> Int) -> Double {
        let start = ContinuousClock.now
        let sink = body(count)
        let elapsed = ContinuousClock.now - start
        if sink == 42 { print("") }  // keep the work observable
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        return Double(count) / max(seconds, 1e-9)
    }

    static func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }

    static func format(_ rate: Double) -> String { String(format: "%.1f M", rate / 1e6) }
}

/// Keeps the last value and finds nothing: the feed loop's own cost.
struct NullDetector: Detector {
    let rule = RuleIdentity(id: "null", version: 1, kind: "null", channel: "site.x", unit: "", scaleExponent: 0)
    var last: Int64 = 0
    var score: Double { 0 }
    var stateBytes: Int { MemoryLayout<Self>.size }
    mutating func feed(_ sample: DetectorSample, _ context: SiteContext) -> Finding? {
        if let v = sample.value { last = v }
        return nil
    }
}

/// A precomputed stream: a machine's power cycling between running and idle with ±3 % noise, one
/// sample a second; the same samples every run.
struct SampleStream {
    let values: [Int64]

    init(count: Int) {
        var seed: UInt64 = 0x9E37_79B9_7F4A_7C15
        var out: [Int64] = []
        out.reserveCapacity(count)
        for i in 0..<count {
            seed = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            let noise = Double(Int64(bitPattern: seed >> 11) % 600 - 300) / 10_000  // ±3 %
            let running = (i / 3_600) % 3 != 2  // two hours running, one idle
            let level = running ? 52_000.0 : 4_000.0
            out.append(Int64(level * (1 + noise)))
        }
        values = out
        var calendar = Standard.calendar
        contexts = (0..<count).map { calendar.context(wallMs: Self.start + Int64($0) * 1000) }
    }

    /// The calendar's context of each sample time of one pass over `values` (a sample a second).
    let contexts: [SiteContext]
    static let start: Int64 = 1_764_547_200_000  // 2026-12-01T00:00Z

    func feed(_ detector: inout some Detector, count: Int) -> Int {
        var findings = 0
        let mask = values.count - 1
        for i in 0..<count {
            let t = Int64(i) * 1000
            if detector.feed(DetectorSample(monoMs: t, wallMs: Self.start + t, value: values[i & mask]), contexts[i & mask]) != nil { findings &+= 1 }
        }
        return findings
    }

    func feedRoundRobin(_ engine: inout DetectionEngine, channels: [String], count: Int) -> Int {
        var findings = 0
        let mask = values.count - 1
        let start = Self.start
        for i in 0..<count {
            let t = Int64(i / channels.count) * 1000
            findings &+= engine.feed(channel: channels[i % channels.count], DetectorSample(monoMs: t, wallMs: start + t, value: values[i & mask])).findings.count
        }
        return findings
    }
}

enum Standard {
    static let calendar = SiteCalendar(timeZoneID: "Europe/Berlin", shift: .init(days: [.mon, .tue, .wed, .thu, .fri], startMinute: 360, endMinute: 1320))

    /// A rule of `kind` with parameters a site would use on the stream above.
    static func rule(_ kind: DetectKind, channel: String) -> DetectRuleSettings {
        var r = DetectRuleSettings(id: "\(kind.rawValue)-\(channel)", kind: kind, channel: channel, severity: kind.defaultSeverity)
        for key in DetectSchema.keys(kind) {
            if let d = key.defaultDuration { r.durations[key.name] = d }
            if let n = key.defaultNumber { r.numbers[key.name] = n }
            if let f = key.defaultFlag { r.flags[key.name] = f }
            if let c = key.defaultChoice { r.choices[key.name] = c }
        }
        switch kind {
        case .runState:
            r.numbers["running_at_or_above"] = 3_000
            r.numbers["stopped_below"] = 100
        case .weightDrop: r.numbers["tolerance_percent"] = 5
        case .threshold: r.numbers["above"] = 6_000
        case .countDrop: r.numbers["drop"] = 10
        case .flatline: r.durations["duration"] = .seconds(3_600)
        case .commLoss: r.durations["duration"] = .seconds(600)
        case .contact, .baseline: break
        case .machine: break
        }
        return r
    }

    /// Run_state rules on `channels` and, when `combined`, a machine rule over them.
    static func machine(channels: [String], combined: Bool) throws(DetectorFactory.Unavailable) -> DetectionEngine {
        var detectors: [any Detector] = []
        for channel in channels {
            let descriptor = ChannelDescriptor(id: channel, unit: "W", scaleExponent: -1, isNumeric: true, period: .seconds(1))
            detectors.append(try DetectorFactory.make(rule(.runState, channel: channel), channel: descriptor))
        }
        guard combined else { return DetectionEngine(detectors: detectors, calendar: calendar) }
        var m = rule(.machine, channel: channels.joined(separator: "+"))
        m.sources = channels.map { "run_state-\($0)" }
        return DetectionEngine(detectors: detectors, calendar: calendar, machines: [(DetectorFactory.machine(m), Array(detectors.indices))])
    }

    /// 32 Modbus channels (energy meters: run state, comm loss, flatline, baseline on power; weights:
    /// weight drop) and 8 GPIO lines (contacts).
    static func site() throws(DetectorFactory.Unavailable) -> DetectionEngine {
        var detectors: [any Detector] = []
        func add(_ kind: DetectKind, _ channel: String) throws(DetectorFactory.Unavailable) {
            let descriptor = ChannelDescriptor(id: channel, unit: "W", scaleExponent: -1, isNumeric: true, period: .seconds(1))
            detectors.append(try DetectorFactory.make(rule(kind, channel: channel), channel: descriptor))
        }
        for m in 0..<28 {
            let channel = "meter\(m / 4).ch\(m % 4)"
            try add(.commLoss, channel)
            if m % 4 == 0 {
                try add(.runState, channel)
                try add(.baseline, channel)
                try add(.flatline, channel)
            }
        }
        for s in 0..<4 { try add(.weightDrop, "scale\(s).weight") }
        for g in 0..<8 { try add(g < 6 ? .contact : .threshold, "gpio.line\(g)") }
        return DetectionEngine(detectors: detectors, calendar: calendar)
    }
}
