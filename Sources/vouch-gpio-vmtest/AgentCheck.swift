import Foundation
import VouchCore
import VouchEvidence
import VouchGPIO

/// The whole agent with GPIO, on the real kernel: `vouch enroll`, `vouch run` with three inputs
/// (door: level, active-low, debounced; pulse: counter; run: duty) and a status LED, the lines driven
/// through gpio-sim while it runs, SIGTERM, then `vouch evidence export` checked record by record.
///
/// What the evidence can show and what it cannot: with `raw_samples`, a `raw` record holds each
/// channel's readings of one summary interval in arrival order, in slots of the sample period, so
/// the door's 0/1 sequence (samples and every debounced change) survives, but not the kernel
/// timestamp of each change (the slot is the only time a value has). The order of the door's values
/// is checked; their times are not.
extension Checks {
    static let agentDir = "/tmp/agent-gpio"
    static let agentConfig = "/tmp/agent-gpio.toml"
    static let agentLog = "/tmp/agent-gpio.log"
    static let agentDevice = "vmtest-gpio"
    static let agentMaxBatchRecords = 20
    static let agentDoorCycles = 4
    static let agentPulses = 30
    static let agentPulsesBeforeStop = 5
    static let agentDebounceMs = 50

    // batch_interval 1h: no seal-and-send round during the run, so the shutdown round seals
    // everything at once (the bank at port 9 never answers: without receipts the uplink seals at
    // most 4 batches ahead, and only the shutdown round must do it). max_batch_records 20 splits the
    // records (about 3 per second of sampling: a summary and a raw record per channel every 2 s) into 2–4 batches, so the chain has links to check; a run longer
    // than about 25 s of sampling would leave records unsealed, which the export check reports.
    static var agentConfigText: String {
        """
        [device]
        id = "\(agentDevice)"
        data_dir = "\(agentDir)"
        key_file = "\(agentDir)/device.key"

        [bank]
        url = "http://127.0.0.1:9"

        [shift]
        timezone = "UTC"
        start = "00:00"
        end = "24:00"

        [evidence]
        summary_interval = "2s"
        batch_interval = "1h"
        max_batch_records = \(agentMaxBatchRecords)
        raw_samples = true

        [[gpio.input]]
        name = "door"
        line = "door"
        chip = "vouch-sim"
        active_low = true
        debounce = "\(agentDebounceMs)ms"
        signal = "level"
        sample_interval = "1s"

        [[gpio.input]]
        name = "pulse"
        line = "pulse"
        signal = "counter"
        sample_interval = "1s"

        [[gpio.input]]
        name = "run"
        line = "run"
        signal = "duty"
        sample_interval = "1s"

        [[gpio.output]]
        name = "status"
        line = "status_led"
        role = "running"

        """
    }

    /// Polls `done` every 20 ms until it holds or `timeout` seconds pass (false then): for conditions
    /// nothing notifies this program of (another process's log, a line's holder, a simulated output).
    static func waitUntil(timeout: Double, _ done: () -> Bool) -> Bool {
        let deadline = nowNs() + Int64(timeout * 1e9)
        while !done() {
            if nowNs() >= deadline { return false }
            usleep(20_000)
        }
        return true
    }

    static func agentLogText() -> String { (try? String(contentsOfFile: agentLog, encoding: .utf8)) ?? "" }

    /// The agent's last log lines on the console, for a failure's post-mortem.
    static func printAgentLogTail(_ count: Int = 20) {
        for line in agentLogText().split(separator: "\n").suffix(count) { print("VMINFO agent-log \(line)") }
    }

    /// Which of the agent's lines are held, and by whom: [name: consumer] for the used ones.
    func heldLines() -> [String: String] {
        var held: [String: String] = [:]
        for info in (try? gpio.lines(chip: chip)) ?? [] where info.isUsed && ["door", "pulse", "run", "status_led"].contains(info.name) {
            held[info.name] = info.consumer ?? ""
        }
        return held
    }

    mutating func agentRecordsGPIO() {
        let vouch = ProcessInfo.processInfo.environment["VOUCH_CLI"] ?? "/bin/vouch"
        guard FileManager.default.isExecutableFile(atPath: vouch) else { return check("agent", false, "\(vouch) is not in the image") }
        try? FileManager.default.removeItem(atPath: Self.agentDir)
        // The site at rest: door contact open (pulled up: inactive, 0 with active_low), no pulse, machine stopped.
        pull("door", up: true)
        pull("pulse", up: false)
        pull("run", up: false)
        // Read back before the agent starts, so that the LED's "1" later is the agent's doing.
        let ledBefore = simValue("status_led")
        guard FileManager.default.createFile(atPath: Self.agentConfig, contents: Data(Self.agentConfigText.utf8)) else {
            return check("agent-config", false, "cannot write \(Self.agentConfig)")
        }

        // The device key, as a technician makes it; the enrollment document's key verifies the batches below.
        let enroll = Self.runProgram(vouch, ["enroll", "--config", Self.agentConfig])
        let document = try? CanonicalJSON.decode(Array(enroll.out.trimmingCharacters(in: .whitespacesAndNewlines).utf8))
        let jwk = document?.objectValue?["jwk"].flatMap { try? PublicJWK(json: $0) }
        let mode = (try? FileManager.default.attributesOfItem(atPath: Self.agentDir + "/device.key"))?[.posixPermissions] as? Int
        guard enroll.status == 0, let key = jwk, document?.objectValue?["kid"]?.stringValue == key.thumbprint,
            document?.objectValue?["device"]?.stringValue == Self.agentDevice, mode == 0o600
        else {
            return check("agent-enroll", false, "exit \(enroll.status), key file mode \(mode.map { String($0, radix: 8) } ?? "none"): \(enroll.out) \(enroll.err)")
        }
        check("agent-enroll", true, "kid \(key.thumbprint), key file mode 600")

        guard FileManager.default.createFile(atPath: Self.agentLog, contents: nil), let log = FileHandle(forWritingAtPath: Self.agentLog) else {
            return check("agent-started", false, "cannot create \(Self.agentLog)")
        }
        defer { try? log.close() }
        let agent = Process()
        agent.executableURL = URL(fileURLWithPath: vouch)
        agent.arguments = ["run", "--config", Self.agentConfig]
        // A file, not a pipe: nobody reads the agent's log while it runs, and a full pipe would block it.
        agent.standardOutput = log
        agent.standardError = log
        let launched = Self.nowNs()
        do { try agent.run() } catch { return check("agent-started", false, "cannot start \(vouch) run: \(error)") }
        // Whatever happens below, the agent does not outlive this check holding lines the CLI checks need.
        defer {
            if agent.isRunning {
                kill(agent.processIdentifier, SIGKILL)
                agent.waitUntilExit()
            }
        }

        // Running: LED on, the three inputs and the LED held by the agent ("vouch").
        let running = Self.waitUntil(timeout: 90) {
            !agent.isRunning || simValue("status_led") == "1" && heldLines() == ["door": "vouch", "pulse": "vouch", "run": "vouch", "status_led": "vouch"]
        }
        let startS = Double(Self.nowNs() - launched) / 1e9
        guard running, agent.isRunning else {
            Self.printAgentLogTail()
            let state = "LED before \(ledBefore), now \(simValue("status_led")), held \(heldLines())"
            return check("agent-started", false, "\(agent.isRunning ? "not running after 90 s" : "exited with \(agent.terminationStatus)"): \(state)")
        }
        check("agent-started", ledBefore == "0", "LED \(ledBefore) before, 1 once running; door, pulse, run and status_led held by \"vouch\" \(String(format: "%.1f", startS)) s after start")
        figure("agent-start-to-lines-held", startS, "s (debug build, TCG)")

        // Sampling: a first reading of each input reached the pipeline (the agent logs the first reading
        // of every channel; inputs are sampled every second). Any door value is accepted here: the sequence
        // check below says whether it was the right one. Without them the lines are driven all the same,
        // so that the evidence checks show what is missing.
        let sampling = Self.waitUntil(timeout: 20) {
            let log = Self.agentLogText()
            return !agent.isRunning || ["door", "pulse", "run"].allSatisfy { log.contains("first reading from gpio.\($0):") }
        }
        let firstS = Double(Self.nowNs() - launched) / 1e9
        if !sampling { Self.printAgentLogTail() }
        check("agent-first-samples", sampling && agent.isRunning, "first reading of gpio.door, gpio.pulse and gpio.run in the agent's log \(sampling ? String(format: "%.1f s after start", firstS) : "missing 20 s after the lines were held")")
        if sampling { figure("agent-start-to-first-samples", firstS, "s (debug build, TCG)") }

        // The same, as a technician sees it.
        let list = Self.runProgram(vouch, ["gpio", "list", "--json"])
        var listed: [String: (consumer: String, direction: String)] = [:]
        if let doc = try? JSONSerialization.jsonObject(with: Data(list.out.utf8)) as? [String: Any], let chips = doc["chips"] as? [[String: Any]] {
            for c in chips where c["label"] as? String == chip {
                for line in (c["lines"] as? [[String: Any]]) ?? [] where line["used"] as? Bool == true {
                    if let name = line["name"] as? String { listed[name] = ((line["consumer"] as? String) ?? "", (line["direction"] as? String) ?? "") }
                }
            }
        }
        let listOK =
            list.status == 0 && ["door", "pulse", "run"].allSatisfy { listed[$0]?.consumer == "vouch" && listed[$0]?.direction == "input" }
            && listed["status_led"]?.consumer == "vouch" && listed["status_led"]?.direction == "output"
        check("agent-holds-lines", listOK, "vouch gpio list --json: exit \(list.status), used \(listed.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value.consumer)/\($0.value.direction)" })")

        // Drive. run on for the whole time (the machine runs while the door moves and parts are counted).
        let runOnNs = timedPull("run", up: true)
        // The door closes (pull-down: active) with one bounce, each bounce far shorter than the debounce,
        // stays closed, opens; each level is held well past the debounce.
        var longestBurstNs: Int64 = 0
        for _ in 0..<Self.agentDoorCycles {
            let burst = Self.nowNs()
            pull("door", up: false)
            pull("door", up: true)
            pull("door", up: false)
            longestBurstNs = max(longestBurstNs, Self.nowNs() - burst)
            Thread.sleep(forTimeInterval: 0.2)
            pull("door", up: true)
            Thread.sleep(forTimeInterval: 0.2)
        }
        // Parts: pulses at 20 Hz (25 ms high, 25 ms low).
        for _ in 0..<Self.agentPulses {
            pull("pulse", up: true)
            Thread.sleep(forTimeInterval: 0.025)
            pull("pulse", up: false)
            Thread.sleep(forTimeInterval: 0.025)
        }
        let runOffNs = timedPull("run", up: false)
        let onMs = Double(runOffNs - runOnNs) / 1e6

        // The duty check below counts each duty value over a whole 1 s period; the agent's last sample,
        // at stop, covers only part of one. So let it sample well after the run line went off before
        // stopping: a summary of gpio.run is logged when a sample closes its 2 s interval; the second one
        // logged from now on closes on a sample at least 2 s after the first one's, so (unless the
        // agent's delivery lags by 2 s) after every edge above.
        // (Skipped when no reading reached the pipeline: no summary can come.)
        func runSummaries() -> Int { Self.agentLogText().split(separator: "\n").filter { $0.contains("gpio.run: ") && $0.contains(" readings in ") }.count }
        let summariesAtEnd = runSummaries()
        let sampledAfter = !sampling || Self.waitUntil(timeout: 30) { !agent.isRunning || runSummaries() >= summariesAtEnd + 2 }
        guard sampledAfter, agent.isRunning else {
            Self.printAgentLogTail()
            return check("agent-stops-cleanly", false, agent.isRunning ? "no new summary of gpio.run within 30 s" : "the agent exited on its own with \(agent.terminationStatus)")
        }

        // A last few parts just before the stop, with no sample after them: the agent must sample once
        // more as it stops, or these pulses never reach the evidence.
        for _ in 0..<Self.agentPulsesBeforeStop {
            pull("pulse", up: true)
            Thread.sleep(forTimeInterval: 0.025)
            pull("pulse", up: false)
            Thread.sleep(forTimeInterval: 0.025)
        }

        // Stop as systemd does.
        let stopping = Self.nowNs()
        kill(agent.processIdentifier, SIGTERM)
        let stopped = Self.waitUntil(timeout: 60) { !agent.isRunning }
        let stopS = Double(Self.nowNs() - stopping) / 1e9
        let ledAfter = simValue("status_led")
        let heldAfter = heldLines()
        let exitedCleanly = stopped && agent.terminationReason == .exit && agent.terminationStatus == 0
        if !exitedCleanly { Self.printAgentLogTail() }
        check(
            "agent-stops-cleanly", exitedCleanly && ledAfter == "0" && heldAfter.isEmpty,
            "\(stopped ? "exit \(agent.terminationStatus) (\(agent.terminationReason == .exit ? "exit" : "signal")) \(String(format: "%.1f", stopS)) s after SIGTERM" : "still running 60 s after SIGTERM"); LED \(ledAfter); lines still held \(heldAfter)")
        figure("agent-sigterm-to-exit", stopS, "s (debug build, TCG)")
        guard stopped else { return }

        // The evidence, as the bank would get it.
        let export = Self.runProgram(vouch, ["evidence", "export", "--config", Self.agentConfig])
        let records: [EvidenceRecord]
        switch Self.verifyExport(export.out, key: key) {
        case .failure(let problem):
            return check("agent-evidence-verifies", false, "export exit \(export.status): \(problem) \(export.err)")
        case .success(let (batches, verified)):
            records = verified
            check("agent-evidence-verifies", export.status == 0, "\(batches) batch(es), \(records.count) records: each batch's ES256 signature by the enrolled key, manifest, canonical records and Merkle root; bseq 1…\(batches) each linking to its predecessor's signing input; rseq 1…\(records.count) gap-free; nothing left unsealed")
        }
        checkRecordedGPIO(records, runOnMs: onMs, longestBurstNs: longestBurstNs)
    }

    /// Drives an input; returns the moment of the write (midway through it: the kernel stamps the edge
    /// during the write, which takes well under a millisecond).
    func timedPull(_ line: String, up: Bool) -> Int64 {
        let before = Self.nowNs()
        pull(line, up: up)
        return before + (Self.nowNs() - before) / 2
    }

    /// Splits an export stream, verifies every batch against the enrolled key and the chain rule from
    /// the first batch, and checks that the records are gap-free and that none were left unsealed.
    /// Returns (batches, records in rseq order) or what is wrong.
    static func verifyExport(_ text: String, key: PublicJWK) -> Result<(Int, [EvidenceRecord]), VerifyProblem> {
        let entries: [BatchFile.Entry]
        do { entries = try BatchFile.decodeStream(Array(text.utf8)) } catch { return .failure(VerifyProblem("not a batch stream: \(error.message)")) }
        guard !entries.isEmpty else { return .failure(VerifyProblem("no sealed batch")) }
        var head: ChainHead?
        var records: [EvidenceRecord] = []
        var lastCount = 0
        for entry in entries {
            do {
                let batch = try VerifiedBatch.verify(token: entry.token, records: entry.records, key: key)
                let verdict = ChainRule.classify(bseq: batch.payload.bseq, prev: batch.payload.prev, signingInputHash: batch.signingInputHash, head: head, acceptedHash: nil)
                guard verdict == .extends else { return .failure(VerifyProblem("batch at line \(entry.line) (bseq \(batch.payload.bseq)) does not extend the chain: \(verdict)")) }
                guard batch.payload.device == agentDevice else { return .failure(VerifyProblem("batch \(batch.payload.bseq) names device \(batch.payload.device)")) }
                head = ChainHead(bseq: batch.payload.bseq, signingInputHash: batch.signingInputHash)
                records += try batch.typedRecords()
                lastCount = entry.records.count
            } catch {
                return .failure(VerifyProblem("batch at line \(entry.line): \(error.code.rawValue): \(error.message)"))
            }
        }
        let rseqs = records.map(\.stamp.rseq)
        guard rseqs == Array(1...Int64(max(1, rseqs.count))) else { return .failure(VerifyProblem("rseq not 1…\(rseqs.count) in order: \(rseqs.prefix(40))")) }
        // Without receipts the uplink seals at most 4 batches: 4 full ones may hide records left unsealed.
        if entries.count >= 4 && lastCount == agentMaxBatchRecords {
            return .failure(VerifyProblem("4 full batches: records may be left unsealed (the run was longer than this config allows)"))
        }
        return .success((entries.count, records))
    }

    struct VerifyProblem: Error, CustomStringConvertible {
        let description: String
        init(_ d: String) { description = d }
    }

    /// The GPIO channels' records against what was driven.
    mutating func checkRecordedGPIO(_ records: [EvidenceRecord], runOnMs: Double, longestBurstNs: Int64) {
        func raw(_ channel: String) -> [RawSamples] { records.compactMap { if case .raw(let r) = $0, r.channel == channel { r } else { nil } } }
        func summaries(_ channel: String) -> [ReadingSummary] { records.compactMap { if case .summary(let s) = $0, s.channel == channel { s } else { nil } } }

        // Door: every value in arrival order (samples and changes), repeats collapsed: the first sample
        // (open, 0), then closed/open per cycle; a bounce that got through shows as an extra 0/1 pair.
        let door = raw("gpio.door").flatMap(\.values).compactMap { $0 }
        var doorChanges: [Int64] = []
        for v in door where doorChanges.last != v { doorChanges.append(v) }
        let expectedDoor: [Int64] = [0] + Array(repeating: [1, 0], count: Self.agentDoorCycles).flatMap { $0 }
        let burstMs = Double(longestBurstNs) / 1e6
        check(
            "agent-door-sequence", doorChanges == expectedDoor && burstMs < Double(Self.agentDebounceMs),
            "\(door.count) values, changes \(doorChanges), expected \(expectedDoor) (\(Self.agentDoorCycles) closings each with a bounce of \(String(format: "%.1f", burstMs)) ms at most, debounce \(Self.agentDebounceMs) ms)")

        // Pulse: the running total, sampled every second, starts at 0, never goes down and ends at the count.
        let pulse = raw("gpio.pulse").flatMap(\.values).compactMap { $0 }
        let monotonic = zip(pulse, pulse.dropFirst()).allSatisfy { $0 <= $1 }
        check(
            "agent-pulse-count", pulse.first == 0 && pulse.last == Int64(Self.agentPulses + Self.agentPulsesBeforeStop) && monotonic,
            "totals \(pulse), expected 0 … \(Self.agentPulses + Self.agentPulsesBeforeStop) never decreasing (the last \(Self.agentPulsesBeforeStop) pulses just before SIGTERM)")

        // Run: duty per sample (‰ of the sample's interval). On for a measured span; the first and last
        // samples (before and after it) read 0, at least one sample wholly inside it reads 1000, and the
        // samples' active time adds up to the span. The sum takes each value over the nominal 1 s period,
        // but a value covers its sample's real interval, which differs from 1 s by how late the watcher
        // woke for the samples either side; over a 0 → 1000 → 0 run of values that error is at most twice
        // the worst lateness. Tolerance: 100 ms (a 50 ms lateness, three times the worst poll wake-up
        // latency measured in this VM), plus 1 ms per sample for the per-mille truncation.
        let runRaw = raw("gpio.run")
        let duty = runRaw.flatMap { r in r.values.compactMap { $0 }.map { (value: $0, periodMs: r.periodMs) } }
        let activeMs = duty.reduce(0.0) { $0 + Double($1.value * $1.periodMs) / 1000 }
        let tolerance = 100.0 + Double(duty.count)
        let inRange = duty.allSatisfy { (0...1000).contains($0.value) }
        let full = duty.filter { $0.value == 1000 }.count
        check(
            "agent-run-duty", inRange && full >= 1 && duty.first?.value == 0 && duty.last?.value == 0 && abs(activeMs - runOnMs) <= tolerance,
            "values \(duty.map(\.value)) ‰; active \(Int(activeMs)) ms by the records, driven on \(Int(runOnMs)) ms (tolerance ±\(Int(tolerance)) ms); \(full) sample(s) wholly on")
        figure("agent-duty-active-time-error", activeMs - runOnMs, "ms (records minus driven)")

        // No lost edges, no unreadable line: every summary of the three channels counts no failed reading
        // (E_GPIO_EDGES_LOST would be one), and no gap names them.
        let sums = ["gpio.door", "gpio.pulse", "gpio.run"].flatMap(summaries)
        let failing = sums.filter { $0.errors > 0 || $0.lastError != nil }
        let gaps = records.compactMap { if case .gap(let g) = $0, g.channel?.hasPrefix("gpio.") == true { g.detail } else { nil } }
        let allChannels = ["gpio.door", "gpio.pulse", "gpio.run"].allSatisfy { !summaries($0).isEmpty && !raw($0).isEmpty }
        check(
            "agent-no-lost-edges", failing.isEmpty && gaps.isEmpty && allChannels,
            "\(sums.count) summaries of gpio.door/pulse/run, \(failing.count) with failed readings \(failing.map { "\($0.channel): \($0.errors) \($0.lastError ?? "")" }), \(gaps.count) gaps \(gaps)")
    }
}
