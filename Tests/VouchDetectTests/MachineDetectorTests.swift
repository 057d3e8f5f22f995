import Testing
import VouchCore
@testable import VouchDetect

/// A press judged by three run-state sources at once: its power (W), its stroke counter and its run
/// signal's duty (‰), through the engine as the agent and the replay build it from a config.
struct MachineDetectorTests {
    static let head = """
        [device]
        id = "press-site"
        data_dir = "/var/lib/vouch"

        [bank]
        url = "https://bank.example:8443"

        [shift]
        timezone = "UTC"
        start = "06:00"
        end = "22:00"

        [[modbus.device]]
        name = "press"
        url = "tcp://192.168.1.20:502"
        unit_id = 1
        poll_interval = "10s"

        [[modbus.device.channel]]
        name = "power"
        register = "input"
        address = 0
        type = "u32"
        unit = "W"

        [[modbus.device.channel]]
        name = "strokes"
        register = "holding"
        address = 10
        type = "u32"

        [[detect]]
        id = "press-power"
        kind = "run_state"
        channel = "press.power"
        running_at_or_above = 1000
        stopped_below = 300
        min_stop = "5m"
        offline_after = "2m"
        severity = "record"

        [[detect]]
        id = "press-strokes"
        kind = "run_state"
        channel = "press.strokes"
        input = "counter"
        running_at_or_above = 5
        stopped_below = 1
        min_stop = "5m"
        offline_after = "2m"
        severity = "record"

        """

    static func config(_ machine: String) throws -> AgentConfig {
        try ConfigLoader.parse(head + machine, file: "vouch.toml")
    }

    static let machine = """
        [[detect]]
        id = "press"
        kind = "machine"
        sources = ["press-power", "press-strokes"]
        min_stop = "5m"
        min_run = "1m"

        """

    /// Every 10 s from 10:00 UTC (in the shift): the power (nil: a failed poll) and the stroke count.
    struct Press {
        var engine: DetectionEngine
        var strokes: Int64 = 1_000
        var second: Int64 = 0
        var findings: [(second: Int64, finding: Finding)] = []

        init(_ config: AgentConfig) throws { engine = try DetectorFactory.engine(for: config) }

        /// `minutes` of samples: power `watts` (nil: failed), `perMinute` strokes a minute (nil: failed poll).
        mutating func run(_ minutes: Int64, watts: Int64?, perMinute: Int64?, wallBase: Int64 = HealthFixture.tuesdayMidnightWall + 10 * 3_600_000) {
            for _ in 0..<(minutes * 6) {
                let t = DetectorSample(monoMs: 1_000_000 + second * 1000, wallMs: wallBase + second * 1000, value: nil)
                var power = t
                power.value = watts
                for f in engine.feed(channel: "press.power", power).findings where f.rule.kind == "machine" { findings.append((second, f)) }
                var count = t
                if let perMinute {
                    strokes += perMinute / 6
                    count.value = strokes
                }
                for f in engine.feed(channel: "press.strokes", count).findings where f.rule.kind == "machine" { findings.append((second, f)) }
                second += 10
            }
        }
    }

    @Test("any: the press runs while its counter counts, whatever its power meter says; it stops when both say so")
    func anyRunningSourceKeepsTheMachineRunning() throws {
        var press = try Press(try Self.config(Self.machine))
        press.run(10, watts: 5_000, perMinute: 30)
        press.run(20, watts: 100, perMinute: 30)  // the meter reads low (a blown CT), the press strokes on
        #expect(press.findings.isEmpty, "\(press.findings.map(\.finding.explanation))")
        #expect(press.engine.machines[0].state == .running)
        press.run(20, watts: 100, perMinute: 0)  // now it has really stopped
        try #require(press.findings.count == 1)
        let start = press.findings[0].finding
        #expect(start.phase == .start && start.severity == .alarm && start.rule.id == "press" && start.rule.channel == "press.power+press.strokes")
        // Stopped once the counter's rate fell below 1/min (about 1 min without a stroke), confirmed 5 min later.
        let stoppedAt = press.findings[0].second - 300
        #expect((30 * 60 + 60...30 * 60 + 80).contains(stoppedAt), "\(stoppedAt)")
        #expect(start.explanation.hasPrefix("press stopped for 5 min (any source running counts: press-power stopped (reading 100 W), press-strokes stopped (rate 0/min)) during the shift: production stopped"), "\(start.explanation)")
        #expect(start.params["sources"] == .text("press-power,press-strokes") && start.params["combine"] == .text("any") && start.window.isEmpty)
        press.run(5, watts: 5_000, perMinute: 30)
        try #require(press.findings.count == 2)
        let end = press.findings[1].finding
        #expect(end.phase == .end && end.end.map { $0.monoMs - start.start.monoMs }.map { (17 * 60_000...19 * 60_000).contains($0) } == true)
        #expect(end.explanation.hasPrefix("running again (any source running counts) for 1 min"), "\(end.explanation)")
    }

    @Test("all: the press is stopped when any fresh source says so")
    func allSourcesMustRun() throws {
        var press = try Press(try Self.config(Self.machine.replacingOccurrences(of: "min_run", with: "combine = \"all\"\nmin_run")))
        press.run(10, watts: 5_000, perMinute: 30)
        press.run(10, watts: 100, perMinute: 30)
        #expect(press.findings.map(\.finding.phase) == [.start])
        #expect(press.findings.first?.finding.explanation.contains("every source must run") == true)
    }

    @Test("a source that stops answering is left out: the others decide; none answering ends the stop as offline")
    func offlineSources() throws {
        var press = try Press(try Self.config(Self.machine))
        press.run(10, watts: 5_000, perMinute: 30)
        press.run(10, watts: nil, perMinute: 0)  // the meter is unplugged, and the press stops
        try #require(press.findings.count == 1)
        #expect(press.findings[0].finding.explanation.contains("press-power offline, press-strokes stopped"), "\(press.findings[0].finding.explanation)")
        press.run(5, watts: nil, perMinute: nil)  // and now nothing answers
        try #require(press.findings.count == 2)
        #expect(press.findings[1].finding.phase == .end && press.findings[1].finding.explanation.hasPrefix("no source has a valid reading"))
        #expect(press.engine.machines[0].state == .offline)
    }

    @Test("outside the shift a stop is recorded; still stopped when the shift starts, it is alarmed min_stop later")
    func outsideTheShift() throws {
        var press = try Press(try Self.config(Self.machine))
        let evening = HealthFixture.tuesdayMidnightWall + 22 * 3_600_000 + 10 * 60_000  // 22:10
        press.run(10, watts: 5_000, perMinute: 30, wallBase: evening)
        press.run(30, watts: 100, perMinute: 0, wallBase: evening)
        #expect(press.findings.map(\.finding.severity) == [.record])
        // Overnight to 06:10 the next morning (the wall base moves the clock on; monotonic time keeps counting).
        press.run(600, watts: 100, perMinute: 0, wallBase: evening)
        let phases = press.findings.map { "\($0.finding.phase)-\($0.finding.severity)" }
        #expect(phases == ["start-record", "end-record", "start-alarm"], "\(phases)")
    }

    @Test func stateIsSmallAndTheSameSamplesGiveTheSameFindings() throws {
        var a = try Press(try Self.config(Self.machine)), b = try Press(try Self.config(Self.machine))
        for p in [0, 1] {
            var press = p == 0 ? a : b
            press.run(10, watts: 5_000, perMinute: 30)
            press.run(10, watts: 100, perMinute: 0)
            press.run(5, watts: 5_000, perMinute: 30)
            if p == 0 { a = press } else { b = press }
        }
        #expect(a.findings.map(\.finding) == b.findings.map(\.finding) && a.findings.count == 2)
        HealthFixture.expectStateBytes(a.engine.machines[0].stateBytes, documented: 344)
    }
}
