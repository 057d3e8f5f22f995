import Foundation
import VouchCore
import VouchGPIO

/// The real-kernel GPIO checks, run inside the qemu VM by scripts/gpio-vm-test against the kernel's
/// gpio-sim (the layout of boards/sim: chip "vouch-sim" with door, motion, run, pulse, tamper, siren,
/// status_led, spare7…15; chip "vouch-sim-b" with b0…b3). Inputs are driven by writing pull-up /
/// pull-down to the simulator's sysfs files; outputs are read back from them. After the library checks,
/// the whole agent runs on those lines (AgentCheck.swift), then the technician's CLI. Prints the VMTEST
/// protocol: `VMTEST PASS|FAIL name detail`, `VMTEST FIGURE name value unit`, then `VMTEST DONE`.
/// Not shipped.
@main
struct GPIOVMTest {
    static func main() {
        let env = ProcessInfo.processInfo.environment
        guard let simA = env["VOUCH_GPIOSIM_A"] else {
            print("VMTEST FAIL setup VOUCH_GPIOSIM_A is not set (run inside scripts/gpio-vm-test)")
            print("VMTEST DONE")
            exit(1)
        }
        var t = Checks(sim: simA)
        // VOUCH_GPIO_ONLY (from the kernel's vouch.gpio.only=, see scripts/vm/gpio-init): "bench" runs
        // only the benchmark parts, VOUCH_GPIO_ROUNDS times (scripts/bench-gpio); unset runs every check.
        switch env["VOUCH_GPIO_ONLY"] ?? "" {
        case "":
            t.run()
        case "bench":
            let rounds = Int(env["VOUCH_GPIO_ROUNDS"] ?? "1") ?? 0
            guard (1...100).contains(rounds) else {
                t.check("setup", false, "VOUCH_GPIO_ROUNDS is \"\(env["VOUCH_GPIO_ROUNDS"] ?? "")\", expected 1 to 100")
                break
            }
            t.bench(rounds: rounds)
        case let other:
            t.check("setup", false, "VOUCH_GPIO_ONLY is \"\(other)\"; known: bench (or unset for every check)")
        }
        print("VMTEST DONE")
        exit(t.failed ? 1 : 0)
    }
}

struct Checks {
    let sim: String
    let gpio = LibgpiodV1()
    let chip = "vouch-sim"
    var failed = false
    static let offsets = ["door": 0, "motion": 1, "run": 2, "pulse": 3, "tamper": 4, "siren": 5, "status_led": 6, "spare7": 7, "spare8": 8]

    init(sim: String) { self.sim = sim }

    mutating func check(_ name: String, _ ok: Bool, _ detail: @autoclosure () -> String) {
        print("VMTEST \(ok ? "PASS" : "FAIL") \(name) \(detail())")
        if !ok { failed = true }
    }

    func figure(_ name: String, _ value: Double, _ unit: String) {
        print("VMTEST FIGURE \(name) \(String(format: "%.3f", value)) \(unit)")
    }

    /// Drives a simulated input.
    func pull(_ line: String, up: Bool) {
        guard let offset = Self.offsets[line] else { return }
        let path = "\(sim)/sim_gpio\(offset)/pull"
        guard let f = fopen(path, "w") else { return }
        fputs(up ? "pull-up" : "pull-down", f)
        fclose(f)
    }

    /// Reads a simulated output's level.
    func simValue(_ line: String) -> String {
        guard let offset = Self.offsets[line], let text = try? String(contentsOfFile: "\(sim)/sim_gpio\(offset)/value", encoding: .utf8) else { return "?" }
        return text.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    static func nowNs() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_BOOTTIME, &ts)
        return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
    }

    /// Collects edges until `count` arrived or `timeout` passed.
    func collect(_ inputs: any GPIOInputs, count: Int, timeout: Duration = .seconds(5)) -> [GPIOEdge] {
        var edges: [GPIOEdge] = []
        let deadline = ContinuousClock.now + timeout
        while edges.count < count && ContinuousClock.now < deadline {
            edges += (try? inputs.waitForEdges(timeout: .milliseconds(200))) ?? []
        }
        return edges
    }

    /// Runs a program to its end; its standard output and error, read whole (stdout first: the
    /// programs run here write little to stderr, so its pipe cannot fill while stdout is read).
    static func runProgram(_ path: String, _ arguments: [String], whileRunning: (() -> Void)? = nil) -> (status: Int32, out: String, err: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = arguments
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        do { try p.run() } catch { return (-1, "", "\(error)") }
        whileRunning?()
        let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
    }

    mutating func run() {
        chipsAndNames()
        errorsNameWhatExists()
        edgesInOrderWithLatency()
        timestampsAreWhenTheEdgeHappened()
        activeLowAndBias()
        busyLineNamesItsHolder()
        debounceAndHold()
        pulsesAtAKnownRate()
        lostEventsAreDetected()
        outputs()
        sustainedRate(seconds: 2)
        agentRecordsGPIO()
        technicianCLI()
    }

    /// `vouch gpio list | get | watch` as a technician runs them, when /bin/vouch is in the image.
    mutating func technicianCLI() {
        let vouch = ProcessInfo.processInfo.environment["VOUCH_CLI"] ?? "/bin/vouch"
        guard FileManager.default.isExecutableFile(atPath: vouch) else { return check("cli", false, "\(vouch) is not in the image") }
        func run(_ arguments: [String], whileRunning: (() -> Void)? = nil) -> (status: Int32, out: String, err: String) {
            Self.runProgram(vouch, arguments, whileRunning: whileRunning)
        }
        let list = run(["gpio", "list", "--json"])
        check("cli-list", list.status == 0 && list.out.contains("\"label\":\"vouch-sim\"") && list.out.contains("\"name\":\"door\""), "exit \(list.status) \(list.err)")
        pull("door", up: true)
        let get = run(["gpio", "get", "door", "--json"])
        check("cli-get", get.status == 0 && get.out.contains("\"value\":1") && get.out.contains("\"chip\":\"vouch-sim\""), "exit \(get.status) \(get.out) \(get.err)")
        if let held = try? gpio.requestInputs(chip: chip, lines: [GPIOInputSettings(line: "tamper")], consumer: "vouch-agent") {
            let busy = run(["gpio", "get", "tamper"])
            check("cli-busy", busy.status == 69 && busy.err.contains("held by \"vouch-agent\""), "exit \(busy.status) \(busy.err)")
            held.close()
        }
        let missing = run(["gpio", "get", "window"])
        check("cli-missing-line", missing.status == 69 && missing.err.contains("door"), "exit \(missing.status) \(missing.err)")
        boardFitsTheKernel(vouch)
        withoutGroupGPIO(vouch)
        pull("door", up: false)
        let watch = run(["gpio", "watch", "door", "--for", "4s", "--json"]) { [self] in
            Thread.sleep(forTimeInterval: 1.5)  // the CLI starts (debug build, TCG) before the edges
            for up in [true, false, true, false] {
                pull("door", up: up)
                Thread.sleep(forTimeInterval: 0.1)
            }
        }
        let edges = watch.out.split(separator: "\n").filter { $0.contains("\"edge\"") }
        check("cli-watch", watch.status == 0 && edges.count == 4 && edges.first?.contains("rising") == true && watch.out.contains("\"changes\":4"), "exit \(watch.status), \(edges.count) edges: \(watch.out) \(watch.err)")
    }

    /// boards/sim (on the system disk as /vm/boards/sim) against the chips gpio-init made: every chip
    /// and line the board names is there, and the listing carries the board's header pins (none on sim).
    mutating func boardFitsTheKernel(_ vouch: String) {
        let boards = ProcessInfo.processInfo.environment["VOUCH_BOARDS"] ?? "/vm/boards"
        let r = Self.runProgram(vouch, ["gpio", "list", "--board", "sim", "--boards", boards, "--json"])
        guard r.status == 0, let doc = try? JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any], let board = doc["board"] as? [String: Any] else {
            return check("cli-board-sim-fits", false, "exit \(r.status): \(r.out.prefix(300)) \(r.err)")
        }
        let missingChips = board["missing_chips"] as? [Any] ?? ["?"]
        let missingLines = (board["missing_lines"] as? [[String: Any]])?.compactMap { $0["name"] as? String } ?? ["?"]
        let text = Self.runProgram(vouch, ["gpio", "list", "--board", "sim", "--boards", boards])
        check(
            "cli-board-sim-fits", missingChips.isEmpty && missingLines.isEmpty && text.out.contains("board sim: every chip and line of \(boards)/sim/board.toml is here"),
            "missing chips \(missingChips), missing lines \(missingLines); \(text.out.split(separator: "\n").last ?? "")")
    }

    /// A user outside group gpio (the chips' /dev nodes are root's, 0600): `vouch gpio list` exits 77
    /// (EX_NOPERM) and says which group is needed. Root would pass every permission check, so the CLI
    /// runs through busybox `su` as a user the test adds to /etc/passwd.
    mutating func withoutGroupGPIO(_ vouch: String) {
        let user = "fieldtech"
        let passwd = (try? String(contentsOfFile: "/etc/passwd", encoding: .utf8)) ?? ""
        if !passwd.contains("\n\(user):") && !passwd.hasPrefix("\(user):") {
            let entries = (passwd.isEmpty ? "root:x:0:0:root:/root:/bin/sh\n" : "") + "\(user):x:1000:1000:field technician:/tmp:/bin/sh\n"
            guard let f = fopen("/etc/passwd", "a") else { return check("cli-no-permission", false, "cannot write /etc/passwd: \(String(cString: strerror(errno)))") }
            fputs(entries, f)
            fclose(f)
        }
        let r = Self.runProgram("/bin/su", [user, "-s", "/bin/sh", "-c", "\(vouch) gpio list"])
        check(
            "cli-no-permission", r.status == 77 && r.err.contains("permission denied") && r.err.contains("group gpio"),
            "exit \(r.status): \(r.err.trimmingCharacters(in: .whitespacesAndNewlines)) \(r.out.prefix(200))")
    }

    mutating func chipsAndNames() {
        do {
            let chips = try gpio.chips()
            check("chips", chips.contains { $0.label == "vouch-sim" && $0.lineCount == 16 } && chips.contains { $0.label == "vouch-sim-b" && $0.lineCount == 4 }, "\(chips.map { "\($0.label):\($0.lineCount)" })")
            let names = try gpio.lines(chip: chip).map(\.name)
            check("line-names", Array(names.prefix(7)) == ["door", "motion", "run", "pulse", "tamper", "siren", "status_led"], "\(names)")
        } catch {
            check("chips", false, "\(error)")
        }
    }

    mutating func errorsNameWhatExists() {
        do {
            _ = try gpio.requestInputs(chip: "no-such-chip", lines: [GPIOInputSettings(line: "door")], consumer: "vouch-vmtest")
            check("missing-chip", false, "no error")
        } catch {
            check("missing-chip", error.code == GPIOError.chipNotFound && error.message.contains("\"vouch-sim\"") && error.message.contains("\"vouch-sim-b\""), error.message)
        }
        do {
            _ = try gpio.requestInputs(chip: chip, lines: [GPIOInputSettings(line: "window")], consumer: "vouch-vmtest")
            check("missing-line", false, "no error")
        } catch {
            check("missing-line", error.code == GPIOError.lineNotFound && error.message.contains("door, motion, run"), error.message)
        }
    }

    /// One edge at a time on `line` (starting low, so rising first): each written through sysfs and
    /// waited for before the next. Latency is from just before the sysfs write to the edge coming back
    /// from `waitForEdges` in this process: the write, gpio-sim's simulated interrupt, the kernel's
    /// event queue and the poll wake-up (not the agent's pipeline). `toKernel` is from the write to
    /// the kernel's timestamp of the edge.
    func edgeLatencies(line: String, count: Int) -> (edges: [GPIOEdge], latencyMs: [Double], toKernelMs: [Double])? {
        pull(line, up: false)
        guard let inputs = try? gpio.requestInputs(chip: chip, lines: [GPIOInputSettings(line: line)], consumer: "vouch-vmtest") else { return nil }
        defer { inputs.close() }
        var edges: [GPIOEdge] = []
        var latencies: [Double] = []
        var toKernel: [Double] = []
        for i in 0..<count {
            let written = Self.nowNs()
            pull(line, up: i % 2 == 0)
            let got = collect(inputs, count: 1, timeout: .seconds(2))
            if let e = got.first {
                latencies.append(Double(Self.nowNs() - written) / 1e6)
                toKernel.append(Double(e.monoNs - written) / 1e6)
            }
            edges += got
        }
        return (edges, latencies, toKernel)
    }

    /// Nearest-rank percentile (p in 0...1) of a non-empty sorted array.
    static func percentile(_ sorted: [Double], _ p: Double) -> Double {
        guard !sorted.isEmpty else { return .nan }
        let rank = Int((p * Double(sorted.count)).rounded(.up))
        return sorted[min(sorted.count, max(1, rank)) - 1]
    }

    mutating func edgesInOrderWithLatency() {
        guard let (edges, latencies, _) = edgeLatencies(line: "door", count: 10) else {
            return check("edges", false, "cannot request door")
        }
        let alternating = edges.enumerated().allSatisfy { $0.element.rising == ($0.offset % 2 == 0) }
        let ordered = zip(edges, edges.dropFirst()).allSatisfy { $0.monoNs < $1.monoNs }
        check("edges-both-directions", edges.count == 10 && alternating, "\(edges.count) edges, alternating \(alternating)")
        check("edge-timestamps-in-order", ordered, "kernel timestamps strictly increasing")
        let now = Self.nowNs()
        check("edge-timestamps-boottime", edges.allSatisfy { $0.monoNs <= now && now - $0.monoNs < 60_000_000_000 }, "within the last minute on CLOCK_BOOTTIME")
        if !latencies.isEmpty {
            let sorted = latencies.sorted()
            figure("edge-to-reading-latency-median", sorted[sorted.count / 2], "ms (TCG, no KVM)")
            figure("edge-to-reading-latency-max", sorted.last ?? 0, "ms (TCG, no KVM)")
        }
    }

    /// An edge's time is the kernel's timestamp of the edge, not the time it was read: each edge is
    /// read only 150 ms after it was written, and its time must fall within the write (plus 20 ms for
    /// the simulated interrupt, measured at about 0.1 ms here), far from the read. The other edge checks
    /// read each edge at once, so a reader that stamped edges itself would pass them.
    mutating func timestampsAreWhenTheEdgeHappened() {
        pull("motion", up: false)
        guard let inputs = try? gpio.requestInputs(chip: chip, lines: [GPIOInputSettings(line: "motion")], consumer: "vouch-vmtest") else {
            return check("edge-timestamp-is-the-kernels", false, "cannot request motion")
        }
        defer { inputs.close() }
        var offsetsMs: [Double] = []
        var ok = true
        for i in 0..<4 {
            let before = Self.nowNs()
            pull("motion", up: i % 2 == 0)
            let after = Self.nowNs()
            // The delay is the point of the check: it separates when the edge happened from when it is read.
            Thread.sleep(forTimeInterval: 0.15)
            let got = collect(inputs, count: 1, timeout: .seconds(2))
            guard got.count == 1, let e = got.first else {
                ok = false
                offsetsMs.append(.nan)
                continue
            }
            offsetsMs.append(Double(e.monoNs - before) / 1e6)
            if e.monoNs < before || e.monoNs > after + 20_000_000 { ok = false }
        }
        check("edge-timestamp-is-the-kernels", ok, "edges read 150 ms after each write are stamped \(offsetsMs.map { String(format: "%.2f", $0) }) ms after the write began (at most the write + 20 ms allowed)")
    }

    mutating func activeLowAndBias() {
        pull("motion", up: true)
        do {
            let inputs = try gpio.requestInputs(chip: chip, lines: [GPIOInputSettings(line: "motion", activeLow: true)], consumer: "vouch-vmtest")
            defer { inputs.close() }
            let high = try inputs.values()
            pull("motion", up: false)
            let edges = collect(inputs, count: 1)
            let low = try inputs.values()
            check("active-low", high == [0] && low == [1] && edges.first?.rising == true, "high reads \(high), low reads \(low), edge rising \(String(describing: edges.first?.rising))")
        } catch {
            check("active-low", false, "\(error)")
        }
        do {
            let up = try gpio.requestInputs(chip: chip, lines: [GPIOInputSettings(line: "spare7", bias: .pullUp), GPIOInputSettings(line: "spare8", bias: .pullDown)], consumer: "vouch-vmtest")
            defer { up.close() }
            let values = try up.values()
            let info = try gpio.lines(chip: chip)
            check("bias", values == [1, 0] && info[7].bias == .pullUp && info[8].bias == .pullDown, "values \(values), bias \(info[7].bias.rawValue)/\(info[8].bias.rawValue)")
        } catch {
            check("bias", false, "\(error)")
        }
    }

    mutating func busyLineNamesItsHolder() {
        guard let first = try? gpio.requestInputs(chip: chip, lines: [GPIOInputSettings(line: "tamper")], consumer: "vouch-vmtest") else {
            return check("busy", false, "cannot request tamper")
        }
        defer { first.close() }
        do {
            _ = try gpio.requestInputs(chip: chip, lines: [GPIOInputSettings(line: "tamper")], consumer: "second")
            check("busy", false, "the second request succeeded")
        } catch {
            check("busy", error.code == GPIOError.busy && error.message.contains("\"vouch-vmtest\""), error.message)
        }
        first.close()
        let again = try? gpio.requestInputs(chip: chip, lines: [GPIOInputSettings(line: "tamper")], consumer: "third")
        check("released-line-is-free", again != nil, "requested again after release")
        again?.close()
    }

    mutating func debounceAndHold() {
        pull("door", up: false)
        guard let inputs = try? gpio.requestInputs(chip: chip, lines: [GPIOInputSettings(line: "door")], consumer: "vouch-vmtest") else {
            return check("debounce", false, "cannot request door")
        }
        defer { inputs.close() }
        var raw: [GPIOEdge] = []
        // A contact closing with 3 bounces, then held 300 ms, then opening.
        for up in [true, false, true, false, true, false, true] {
            pull("door", up: up)
            raw += collect(inputs, count: 1, timeout: .milliseconds(500))
        }
        Thread.sleep(forTimeInterval: 0.3)
        pull("door", up: false)
        raw += collect(inputs, count: 1)
        var debouncer = Debouncer(stableNs: 100_000_000, initial: false)
        var hold = HoldTimer(holdNs: 200_000_000)
        var changes: [LevelChange] = []
        var held: [HoldTimer.Event] = []
        for e in raw {
            if let c = debouncer.edge(rising: e.rising, atNs: e.monoNs) {
                changes.append(c)
                if let h = hold.advance(toNs: c.sinceNs) { held.append(h) }
                if let h = hold.level(c) { held.append(h) }
            }
        }
        if let c = debouncer.advance(toNs: Self.nowNs() + 1_000_000_000) {
            changes.append(c)
            if let h = hold.advance(toNs: c.sinceNs) { held.append(h) }
            if let h = hold.level(c) { held.append(h) }
        }
        check("debounce", raw.count == 8 && changes.map(\.active) == [true, false], "\(raw.count) raw edges → changes \(changes.map(\.active))")
        let heldOnce = held.filter { if case .held = $0 { true } else { false } }.count == 1
        check("hold-time", heldOnce, "\(held)")
    }

    mutating func pulsesAtAKnownRate() {
        pull("pulse", up: false)
        guard let inputs = try? gpio.requestInputs(chip: chip, lines: [GPIOInputSettings(line: "pulse")], consumer: "vouch-vmtest") else {
            return check("pulses", false, "cannot request pulse")
        }
        defer { inputs.close() }
        var counter = PulseCounter(startNs: Self.nowNs())
        var edges: [GPIOEdge] = []
        for _ in 0..<40 {  // 40 pulses at 10 Hz: 50 ms high, 50 ms low
            pull("pulse", up: true)
            Thread.sleep(forTimeInterval: 0.05)
            pull("pulse", up: false)
            Thread.sleep(forTimeInterval: 0.05)
            edges += (try? inputs.waitForEdges(timeout: .milliseconds(1))) ?? []
        }
        edges += collect(inputs, count: 80 - edges.count, timeout: .seconds(2))
        for e in edges { counter.edge(rising: e.rising) }
        let rising = edges.filter(\.rising)
        let spanNs = (rising.last?.monoNs ?? 0) - (rising.first?.monoNs ?? 0)
        let perMinute = spanNs > 0 ? Double(rising.count - 1) * 60e9 / Double(spanNs) : 0
        check("pulse-count", counter.total == 40 && edges.count == 80, "\(counter.total) pulses, \(edges.count) edges")
        check("pulse-rate", (400...700).contains(perMinute), "\(Int(perMinute))/min from kernel timestamps, driven at 600/min")
        figure("pulse-rate-from-kernel-timestamps", perMinute, "per minute (driven at ~600/min; TCG timing)")
    }

    mutating func lostEventsAreDetected() {
        pull("run", up: false)
        guard let inputs = try? gpio.requestInputs(chip: chip, lines: [GPIOInputSettings(line: "run")], consumer: "vouch-vmtest") else {
            return check("lost-events", false, "cannot request run")
        }
        defer { inputs.close() }
        for i in 0..<201 { pull("run", up: i % 2 == 0) }  // 201 toggles, none read: ends high
        Thread.sleep(forTimeInterval: 0.2)
        var edges: [GPIOEdge] = []
        while true {
            let got = (try? inputs.waitForEdges(timeout: .milliseconds(300))) ?? []
            if got.isEmpty { break }
            edges += got
        }
        var continuity = EdgeContinuity(level: false)
        for e in edges { _ = continuity.edge(rising: e.rising) }
        let current = ((try? inputs.values()) ?? [0]) == [1]
        _ = continuity.check(current: current)  // a disagreement counts on the second quiet read
        let detected = continuity.check(current: ((try? inputs.values()) ?? [0]) == [1])
        figure("kernel-queue-kept-of-201-toggles", Double(edges.count), "events")
        check("lost-events", edges.count < 201 && detected, "\(edges.count) of 201 edges kept; loss detected \(detected) (level now \(current))")
    }

    mutating func outputs() {
        do {
            let siren = try gpio.requestOutput(chip: chip, line: "siren", activeLow: false, initial: false, consumer: "vouch-vmtest")
            let off = simValue("siren")
            try siren.set(true)
            let on = simValue("siren")
            siren.close()
            let released = simValue("siren")
            let free = (try? gpio.lines(chip: chip))?[5].isUsed == false
            check("output", off == "0" && on == "1" && released == "0" && free, "off \(off), on \(on), after release \(released), free \(free)")
        } catch {
            check("output", false, "\(error)")
        }
    }

    /// Edges per second through a write-then-read loop on one line for `seconds`: each edge is
    /// written through sysfs and read back before the next (one thread does both, so this is the rate
    /// the kernel and a reader sustain together, not the rate a faster source could push). Loss shows
    /// as fewer edges read than written.
    mutating func sustainedRate(seconds: Double, name: String = "sustained") {
        pull("spare7", up: false)
        guard let inputs = try? gpio.requestInputs(chip: chip, lines: [GPIOInputSettings(line: "spare7")], consumer: "vouch-vmtest") else {
            return check("\(name)-no-loss", false, "cannot request spare7")
        }
        defer { inputs.close() }
        let start = Self.nowNs()
        var seen = 0, written = 0
        while Self.nowNs() - start < Int64(seconds * 1e9) {
            pull("spare7", up: written % 2 == 0)
            written += 1
            seen += ((try? inputs.waitForEdges(timeout: .milliseconds(100))) ?? []).count
        }
        // Edges written in the last turn may still be on their way: read until the line is quiet.
        while seen < written, let more = try? inputs.waitForEdges(timeout: .milliseconds(300)), !more.isEmpty { seen += more.count }
        let elapsed = Double(Self.nowNs() - start) / 1e9
        figure("\(name)-edges-per-second", Double(seen) / elapsed, "edges/s (sysfs writer and reader in one loop, TCG)")
        check("\(name)-no-loss", seen == written, "\(seen) of \(written) edges read")
    }
}
