import Foundation
import Logging
import VouchCore
import VouchGPIO
import VouchModbus
import VouchUplink

#if canImport(Glibc)
import Glibc
#endif

/// One line of `vouch doctor`'s checklist: what was checked, how it went, and what to do about it.
public struct DoctorCheck: Codable, Sendable, Equatable {
    public enum Outcome: String, Codable, Sendable {
        /// Fine.
        case ok
        /// Works, but will bite (an unsynchronised clock, a disk that will fill).
        case warn
        /// Broken: the agent cannot do its job until it is fixed.
        case fail
        /// Not applicable to this config (no GPIO lines, no serial port).
        case skip
    }

    public var id: String
    public var outcome: Outcome
    public var detail: String
    /// What to do (nil when nothing needs doing).
    public var fix: String?

    public init(_ id: String, _ outcome: Outcome, _ detail: String, fix: String? = nil) {
        self.id = id
        self.outcome = outcome
        self.detail = detail
        self.fix = fix
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(outcome, forKey: .outcome)
        try c.encode(detail, forKey: .detail)
        try c.encode(fix, forKey: .fix)  // null, not absent: one shape for scripts
    }
}

/// The technician's checklist for a gateway: every check runs, in the order a site is wired, whatever
/// failed before it; each failure says what to do. Nothing here changes the gateway: Modbus devices are
/// asked through the running agent when there is one (a second master on a bus would garble both).
public enum Doctor {
    /// What the checks may touch; tests point these elsewhere.
    public struct Context: Sendable {
        public var deviceDirectory = "/dev"
        public var bankTimeout: Duration = .seconds(10)
        public var clock: any AgentClock = SystemClock(bootCount: 0)
        public init() {}
    }

    public static func checks(_ config: AgentConfig, context: Context = Context()) async -> [DoctorCheck] {
        var out: [DoctorCheck] = []
        out.append(keyFile(config.device.keyFile))
        out += dataDirectory(config)
        out.append(clock(context.clock))
        let socket = ControlSocket.path(dataDir: config.device.dataDir)
        let status = ControlSocket.status(socketPath: socket)
        out.append(
            status.map { DoctorCheck("agent", .ok, "running for \(Int($0.uptimeMs / 1000)) s (boot \($0.bootCount)); \($0.outbox?.undeliveredBatches ?? 0) batch(es) not yet at the bank") }
                ?? DoctorCheck(
                    "agent", .warn, "not running (nothing answers at \(socket)); the checks below open the devices themselves",
                    fix: "systemctl start vouch (or: vouch run --config …)"))
        out += serialPorts(config, deviceDirectory: context.deviceDirectory)
        out += await modbus(config, agent: status)
        out.append(gpio(config, deviceDirectory: context.deviceDirectory))
        out.append(await bank(config.bank, timeout: context.bankTimeout))
        return out
    }

    static func keyFile(_ path: String) -> DoctorCheck {
        var info = stat()
        guard stat(path, &info) == 0 else {
            return DoctorCheck("key", .fail, "no device key at \(path)", fix: "vouch enroll --config … (creates the key, mode 0600, and prints what the bank needs)")
        }
        let mode = info.st_mode & 0o777
        if mode & 0o077 != 0 {
            return DoctorCheck(
                "key", .fail, "the device key \(path) is readable by others (mode \(String(mode, radix: 8))): whoever reads it can sign evidence as this gateway",
                fix: "chmod 600 \(path) (then enroll a new key if it may have been copied: vouch enroll --rotate)")
        }
        guard access(path, R_OK) == 0 else {
            return DoctorCheck("key", .fail, "the device key \(path) cannot be read by this user (uid \(getuid()))", fix: "run as the agent's user (sudo -u vouch vouch doctor) or as root")
        }
        return DoctorCheck("key", .ok, "\(path), mode 600")
    }

    static func dataDirectory(_ config: AgentConfig) -> [DoctorCheck] {
        let dir = config.device.dataDir
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDirectory), isDirectory.boolValue else {
            return [DoctorCheck("data_dir", .fail, "\(dir) does not exist", fix: "mkdir -p \(dir) && chown vouch:vouch \(dir) (the package creates /var/lib/vouch)")]
        }
        var out: [DoctorCheck] = []
        if access(dir, W_OK) == 0 {
            out.append(DoctorCheck("data_dir", .ok, "\(dir) is writable"))
        } else {
            out.append(DoctorCheck("data_dir", .fail, "\(dir) is not writable by this user (uid \(getuid()))", fix: "chown -R vouch:vouch \(dir)"))
        }
        var fs = statvfs()
        guard statvfs(dir, &fs) == 0 else {
            out.append(DoctorCheck("disk", .warn, "cannot read the free space of \(dir): \(String(cString: strerror(errno)))"))
            return out
        }
        let free = Int64(fs.f_bavail) * Int64(fs.f_frsize)
        let budget = config.evidence.diskBudgetBytes
        let outbox = (try? FileManager.default.attributesOfItem(atPath: dir + "/outbox.sqlite")[.size] as? Int64) ?? 0
        let room = budget - outbox
        let text = "\(mb(free)) free on \(dir); the outbox uses \(mb(outbox)) of its \(mb(budget)) budget ([evidence] disk_budget)"
        if free < room {
            out.append(
                DoctorCheck("disk", .fail, text + ": the disk fills before the budget does, and then records wait in memory", fix: "free space on \(dir), or lower [evidence] disk_budget"))
        } else if free < 2 * room {
            out.append(DoctorCheck("disk", .warn, text + ": little room beyond the budget", fix: "free space on \(dir)"))
        } else {
            out.append(DoctorCheck("disk", .ok, text))
        }
        return out
    }

    static func clock(_ clock: any AgentClock) -> DoctorCheck {
        let now = clock.now()
        let iso = ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: Double(now.wallMs) / 1000))
        switch now.quality {
        case .synchronized:
            return DoctorCheck("clock", .ok, "\(iso), synchronised")
        default:
            return DoctorCheck(
                "clock", .warn, "\(iso), not synchronised: records are marked so, and the bank cannot place them in time",
                fix: "enable time sync (timedatectl set-ntp true, or install chrony) and check the gateway reaches an NTP server")
        }
    }

    static func serialPorts(_ config: AgentConfig, deviceDirectory: String) -> [DoctorCheck] {
        var seen = Set<String>()
        var out: [DoctorCheck] = []
        for device in config.modbusDevices {
            guard case .rtu(let path) = device.endpoint, seen.insert(path).inserted else { continue }
            if access(path, F_OK) != 0 {
                out.append(
                    DoctorCheck(
                        "serial \(path)", .fail, "\(path) does not exist (device \(device.name))",
                        fix: "plug the RS-485 adapter in; name it by /dev/serial/by-id/… (ls /dev/serial/by-id), which survives replugging"))
            } else if access(path, R_OK | W_OK) != 0 {
                out.append(
                    DoctorCheck(
                        "serial \(path)", .fail, "\(path) is not readable and writable by this user (uid \(getuid()))",
                        fix: "add the agent's user to group dialout: usermod -aG dialout vouch (then restart it)"))
            } else {
                out.append(DoctorCheck("serial \(path)", .ok, "\(path) can be opened (\(device.serial?.summary ?? "default line settings"))"))
            }
        }
        return out
    }

    /// Each Modbus device: through the running agent's latest readings, or one direct poll of every
    /// channel when no agent runs.
    static func modbus(_ config: AgentConfig, agent: AgentStatus?) async -> [DoctorCheck] {
        guard !config.modbusDevices.isEmpty else { return [] }
        var readings: [String: (ok: Bool, text: String)] = [:]
        var via = "polled once now"
        if let agent {
            via = "as the agent reads it"
            for c in agent.channels {
                switch c.quality {
                case "ok": readings[c.id] = (true, c.value.map { IntegerScaling.text($0, exponent: c.scale, unit: c.unit) } ?? c.text ?? "?")
                case "failing": readings[c.id] = (false, c.lastError ?? "failing")
                default: break
                }
            }
        } else {
            var logger = Logger(label: "vouch-doctor")
            logger.logLevel = .critical
            for r in await ModbusBusPoller.pollOnce(config.modbusDevices, clock: SystemClock(bootCount: 0), logger: logger) {
                if case .commError(let code, let message) = r.quality {
                    readings[r.channel] = (false, "\(code): \(message)")
                } else {
                    readings[r.channel] = (true, r.text ?? r.value.map { IntegerScaling.text($0, exponent: r.scaleExponent, unit: r.unit) } ?? "?")
                }
            }
        }
        return config.modbusDevices.map { device in
            let channels = device.channels.map(\.id)
            let failed = channels.filter { readings[$0]?.ok == false }
            let answered = channels.filter { readings[$0]?.ok == true }
            let place = "\(device.endpoint) unit \(device.unitId)"
            if !failed.isEmpty {
                let first = failed[0]
                return DoctorCheck(
                    "modbus \(device.name)", .fail, "\(device.name) at \(place): \(failed.count) of \(channels.count) channel(s) unreadable (\(via)); \(first): \(readings[first]?.text ?? "")",
                    fix: {
                        if case .tcp = device.endpoint {
                            return "check the device is powered and on the network (ping its address), its Modbus TCP port and unit id; `vouch modbus read --url \(device.endpoint)` tries one register"
                        }
                        return "check power and wiring (A/B, termination), the unit id and the line settings against the device's menu; `vouch modbus scan` finds units on a line"
                    }())
            }
            if answered.count < channels.count {
                return DoctorCheck("modbus \(device.name)", .warn, "\(device.name) at \(place): no reading yet from \(channels.count - answered.count) channel(s) (\(via))")
            }
            let sample = answered.prefix(3).map { "\($0) \(readings[$0]?.text ?? "")" }.joined(separator: ", ")
            return DoctorCheck("modbus \(device.name)", .ok, "\(device.name) at \(place) answers (\(via)): \(sample)\(answered.count > 3 ? ", …" : "")")
        }
    }

    static func gpio(_ config: AgentConfig, deviceDirectory: String) -> DoctorCheck {
        let lines = config.gpio.inputs.count + config.gpio.outputs.count
        guard lines > 0 else { return DoctorCheck("gpio", .skip, "no GPIO lines in the config") }
        let chips: [GPIOChipInfo]
        do { chips = try GPIOChips.list(deviceDirectory: deviceDirectory) } catch {
            return DoctorCheck(
                "gpio", .fail, "\(error.message)",
                fix: "add the agent's user to group gpio (usermod -aG gpio vouch; the package's udev rule gives /dev/gpiochip* to that group), then restart it")
        }
        guard !chips.isEmpty else {
            return DoctorCheck("gpio", .fail, "the config uses \(lines) GPIO line(s) but the kernel shows no GPIO chip in \(deviceDirectory)", fix: "check the board's device tree enables its GPIO controller")
        }
        let labels = Set(chips.map(\.label))
        let wanted = Set((config.gpio.inputs.compactMap(\.chip) + config.gpio.outputs.compactMap(\.chip)))
        let missing = wanted.subtracting(labels).sorted()
        guard missing.isEmpty else {
            return DoctorCheck(
                "gpio", .fail, "no chip labelled \(missing.joined(separator: ", ")); this board has \(chips.map { "\($0.name) (\($0.label))" }.joined(separator: ", "))",
                fix: "vouch gpio list shows the chips and lines; correct chip = in the config")
        }
        return DoctorCheck("gpio", .ok, "\(chips.count) chip(s) open: \(chips.map { "\($0.name) \"\($0.label)\" \($0.lineCount) lines" }.joined(separator: ", "))")
    }

    static func bank(_ bank: BankSettings, timeout: Duration) async -> DoctorCheck {
        switch await BankProbe.health(bankURL: bank.url, tls: bank.tls, timeout: timeout) {
        case .success(let body):
            let trust = bank.url.hasPrefix("https://") ? (bank.tls.caFile.map { ", TLS verified against \($0)" } ?? ", TLS verified against the system trust store") : ""
            let receipts = bank.receiptKey == nil ? "; no [bank] receipt_key: receipts are stored unverified" : ""
            return DoctorCheck(
                "bank", bank.receiptKey == nil ? .warn : .ok, "\(bank.url) answers\(trust): \(body.prefix(120))\(receipts)",
                fix: bank.receiptKey == nil ? "set [bank] receipt_key to the bank's key (vouch-bank key > bank.jwk)" : nil)
        case .failure(let error):
            let fix =
                error.code == .tls
                ? "check [bank] ca_file is the CA that signed the bank's certificate, the URL's host name is in it, and client_cert/client_key if the bank asks for one"
                : "check [bank] url, the network route and firewall to the bank, and that vouch-bank serve runs there"
            return DoctorCheck("bank", .fail, error.message, fix: fix)
        }
    }

    static func mb(_ bytes: Int64) -> String {
        bytes >= 1 << 30 ? String(format: "%.1f GB", Double(bytes) / Double(1 << 30)) : "\(bytes / (1 << 20)) MB"
    }
}
