import Foundation
import VouchEvidence

/// One thing wrong with a config file, located as precisely as the file allows.
public struct ConfigDiagnostic: Sendable, Equatable, CustomStringConvertible {
    public var file: String
    public var position: SourcePosition
    public var message: String

    /// `file:line:column: error: message`, the form editors and terminals link to.
    public var description: String { "\(file):\(position.line):\(position.column): error: \(message)" }
}

public struct ConfigError: Error, Sendable, CustomStringConvertible {
    public static let code = "E_CONFIG"
    public var diagnostics: [ConfigDiagnostic]
    public var description: String { diagnostics.map(\.description).joined(separator: "\n") }
}

/// Reads and validates `vouch.toml`. Reports every problem it can find in one pass.
public enum ConfigLoader {
    public static func load(path: String) throws(ConfigError) -> AgentConfig {
        let (text, sha256) = try read(path: path)
        return try parse(text, file: path, sourceHash: sha256)
    }

    /// The file's text and the SHA-256 of its bytes.
    static func read(path: String) throws(ConfigError) -> (text: String, sha256: String) {
        guard let data = FileManager.default.contents(atPath: path) else {
            let reason = FileManager.default.fileExists(atPath: path) ? "cannot be read (check its permissions)" : "does not exist"
            throw ConfigError(diagnostics: [ConfigDiagnostic(file: path, position: .init(line: 1, column: 1), message: "config file \(reason)")])
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ConfigError(diagnostics: [ConfigDiagnostic(file: path, position: .init(line: 1, column: 1), message: "config file is not UTF-8 text")])
        }
        return (text, Digest256.sha256Hex(Array(data)))
    }

    public static func parse(_ text: String, file: String, sourceHash: String? = nil) throws(ConfigError) -> AgentConfig {
        try decodeRecordingDefaults(text, file: file, sourceHash: sourceHash).config
    }

    /// Decodes `text` and also returns its TOML tree and the defaults the decoder filled in.
    static func decodeRecordingDefaults(_ text: String, file: String, sourceHash: String?) throws(ConfigError) -> (config: AgentConfig, table: TOMLTable, filledIn: FilledIn) {
        let table: TOMLTable
        do { table = try TOML.parse(text) } catch {
            throw ConfigError(diagnostics: [ConfigDiagnostic(file: file, position: error.position, message: error.message)])
        }
        var decoder = ConfigDecoder(file: file)
        let config = decoder.decode(table, sourceHash: sourceHash ?? Digest256.sha256Hex(Array(text.utf8)))
        if let config, decoder.diagnostics.isEmpty { return (config, table, decoder.filledIn) }
        // The config file's own problems first, in file order, then those inside templates it uses.
        throw ConfigError(diagnostics: decoder.diagnostics.sorted { ($0.file != file ? 1 : 0, $0.file, $0.position) < ($1.file != file ? 1 : 0, $1.file, $1.position) })
    }
}

/// Walks the TOML tree against the schema, collecting diagnostics instead of stopping at the first.
struct ConfigDecoder {
    let file: String
    var diagnostics: [ConfigDiagnostic] = []
    /// Modbus templates read so far, by name, with the SHA-256 of their bytes (they are part of the config).
    var templatesUsed: [(name: String, sha256: String)] = []
    var templateCache: [String: ModbusTemplate] = [:]
    /// What the file left out and the decoder filled in, table by table, for `vouch config show --effective`.
    var filledIn = FilledIn()

    mutating func report(_ position: SourcePosition, _ message: String) {
        diagnostics.append(ConfigDiagnostic(file: file, position: position, message: message))
    }

    /// Reads one table; remembers which keys were consumed so unknown ones can be reported.
    struct Section {
        let table: TOMLTable
        let name: String
        let position: SourcePosition
        let known: [String]
    }

    /// A table the file may leave out: when it is absent, an empty stand-in whose every key takes its default
    /// (and is recorded as filled in). Nil when present but not a table (reported).
    mutating func optionalSection(_ root: TOMLTable, _ key: String, known: [String], at parentPosition: SourcePosition) -> Section? {
        guard root[key] != nil else {
            filledIn.absentTables.append(key)
            let standIn = Section(table: TOMLTable(), name: key, position: FilledIn.absent, known: known)
            filledIn.visit(standIn)
            return standIn
        }
        return section(root, key, name: key, known: known, at: parentPosition)
    }

    /// Records the value `key` of `s` took because the file left it out.
    mutating func filled(_ s: Section, _ key: String, _ value: TOMLValue) {
        guard s.table[key] == nil else { return }
        filledIn.values[FilledIn.TableID(name: s.name, position: s.position), default: []].append((key, value))
    }

    /// Takes back what ``filled(_:_:_:)`` recorded for `keys` of `s`: defaults that turn out not to apply.
    mutating func unfill(_ s: Section, _ keys: [String]) {
        filledIn.values[FilledIn.TableID(name: s.name, position: s.position)]?.removeAll { keys.contains($0.key) }
    }

    /// A comment shown above table `s` in the effective config (what a template adds, for instance).
    mutating func note(_ s: Section, _ text: String) {
        filledIn.notes[FilledIn.TableID(name: s.name, position: s.position), default: []].append(text)
    }

    mutating func section(_ parent: TOMLTable, _ key: String, name: String, known: [String], at parentPosition: SourcePosition) -> Section? {
        guard let node = parent[key] else {
            report(parentPosition, "missing table [\(name)]")
            return nil
        }
        guard case .table(let t) = node.value else {
            report(node.keyPosition, "\"\(key)\" must be a table [\(name)], found \(node.value.typeName)")
            return nil
        }
        let s = Section(table: t, name: name, position: node.position, known: known)
        checkUnknown(s)
        return s
    }

    mutating func tableArray(_ parent: TOMLTable, _ key: String, name: String, known: [String]) -> [Section] {
        guard let node = parent[key] else { return [] }
        guard case .array(let items) = node.value else {
            report(node.keyPosition, "\"\(key)\" must be written as [[\(name)]] tables, found \(node.value.typeName)")
            return []
        }
        var out: [Section] = []
        for item in items {
            guard case .table(let t) = item.value else {
                report(item.position, "each entry of \(name) must be a table, found \(item.value.typeName)")
                continue
            }
            let s = Section(table: t, name: name, position: item.position, known: known)
            checkUnknown(s)
            out.append(s)
        }
        return out
    }

    mutating func checkUnknown(_ s: Section) {
        filledIn.visit(s)
        for key in s.table.keys where !s.known.contains(key) {
            let at = s.table[key]?.keyPosition ?? s.position
            if let guess = Self.closest(key, in: s.known) {
                report(at, "unknown key \"\(key)\" in [\(s.name)]; did you mean \"\(guess)\"?")
            } else {
                report(at, "unknown key \"\(key)\" in [\(s.name)] (known keys: \(s.known.joined(separator: ", ")))")
            }
        }
    }

    static func closest(_ key: String, in candidates: [String]) -> String? {
        let scored = candidates.map { ($0, editDistance(key.lowercased(), $0)) }.min { $0.1 < $1.1 }
        guard let (best, distance) = scored, distance <= max(2, best.count / 3) else { return nil }
        return best
    }

    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        var row = Array(0...b.count)
        for i in 1...max(a.count, 1) where !a.isEmpty {
            var previous = row[0]
            row[0] = i
            for j in stride(from: 1, through: b.count, by: 1) {
                let current = row[j]
                row[j] = min(row[j] + 1, row[j - 1] + 1, previous + (a[i - 1] == b[j - 1] ? 0 : 1))
                previous = current
            }
        }
        return a.isEmpty ? b.count : row[b.count]
    }

    // MARK: typed values

    mutating func node(_ s: Section, _ key: String, required: Bool, expected: String) -> TOMLNode? {
        guard let n = s.table[key] else {
            // A misspelt key already has its own "did you mean" diagnostic; do not report it twice.
            let misspelt = s.table.keys.contains { !s.known.contains($0) && Self.closest($0, in: s.known) == key }
            if required && !misspelt { report(s.position, "missing key \"\(key)\" in [\(s.name)] (expected \(expected))") }
            return nil
        }
        return n
    }

    mutating func string(_ s: Section, _ key: String, required: Bool = true, expected: String = "a string", default value: String? = nil) -> String? {
        guard let n = node(s, key, required: required && value == nil, expected: expected) else {
            if let value { filled(s, key, .string(value)) }
            return value
        }
        guard case .string(let v) = n.value else {
            report(n.position, "\"\(key)\" in [\(s.name)] must be \(expected), found \(n.value.typeName)")
            return nil
        }
        return v
    }

    mutating func integer(_ s: Section, _ key: String, range: ClosedRange<Int64>, required: Bool = true, default value: Int? = nil) -> Int? {
        let expected = "an integer from \(range.lowerBound) to \(range.upperBound)"
        guard let n = node(s, key, required: required && value == nil, expected: expected) else {
            if let value { filled(s, key, .integer(Int64(value))) }
            return value
        }
        guard case .integer(let v) = n.value else {
            report(n.position, "\"\(key)\" in [\(s.name)] must be \(expected), found \(n.value.typeName)")
            return nil
        }
        guard range.contains(v) else {
            report(n.position, "\"\(key)\" in [\(s.name)] is \(v), out of range (expected \(expected))")
            return nil
        }
        return Int(v)
    }

    mutating func number(_ s: Section, _ key: String, required: Bool = true, default value: Double? = nil) -> Double? {
        guard let n = node(s, key, required: required && value == nil, expected: "a number") else {
            if let value { filled(s, key, .float(value)) }
            return value
        }
        switch n.value {
        case .integer(let v): return Double(v)
        case .float(let v) where v.isFinite: return v
        case .float: report(n.position, "\"\(key)\" in [\(s.name)] must be a finite number")
        default: report(n.position, "\"\(key)\" in [\(s.name)] must be a number, found \(n.value.typeName)")
        }
        return nil
    }

    mutating func boolean(_ s: Section, _ key: String, default value: Bool) -> Bool? {
        guard let n = node(s, key, required: false, expected: "true or false") else {
            filled(s, key, .boolean(value))
            return value
        }
        guard case .boolean(let v) = n.value else {
            report(n.position, "\"\(key)\" in [\(s.name)] must be true or false, found \(n.value.typeName)")
            return nil
        }
        return v
    }

    mutating func byteSize(_ s: Section, _ key: String, min: Int64, default value: Int64) -> Int64? {
        quantity(
            s, key, expected: "a size such as \"64MB\", \"512MiB\" or \"2GB\"", units: " (units: B, kB, MB, GB, KiB, MiB, GiB)", required: false,
            default: value, parse: Self.parseByteSize, text: FilledIn.byteSizeText, atLeast: min, tooSmall: "below the minimum of \(min / 1_000_000) MB")
    }

    /// A string value with a unit ("15s", "64MB"): parsed, then checked against a minimum, every failure
    /// reported at the value's position with what was expected.
    private mutating func quantity<T: Comparable>(
        _ s: Section, _ key: String, expected: String, units: String = "", required: Bool, default value: T?, parse: (String) -> T?,
        text: (T) -> String, atLeast min: T, tooSmall: String
    ) -> T? {
        guard let n = node(s, key, required: required && value == nil, expected: expected) else {
            if let value { filled(s, key, .string(text(value))) }
            return value
        }
        guard case .string(let text) = n.value else {
            report(n.position, "\"\(key)\" in [\(s.name)] must be \(expected), found \(n.value.typeName)")
            return nil
        }
        guard let parsed = parse(text) else {
            report(n.position, "\"\(key)\" in [\(s.name)] is \"\(text)\", not \(expected)\(units)")
            return nil
        }
        guard parsed >= min else {
            report(n.position, "\"\(key)\" in [\(s.name)] is \(text), \(tooSmall)")
            return nil
        }
        return parsed
    }

    /// "64MB" (decimal), "512MiB" (binary), "1048576" or "1048576B". Case-insensitive; no sign, no fractions.
    static func parseByteSize(_ text: String) -> Int64? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let digits = trimmed.prefix { $0.isASCII && $0.isNumber }
        guard !digits.isEmpty, let number = Int64(digits) else { return nil }
        let unit = trimmed.dropFirst(digits.count).trimmingCharacters(in: .whitespaces).lowercased()
        let factors: [String: Int64] = [
            "": 1, "b": 1, "kb": 1_000, "mb": 1_000_000, "gb": 1_000_000_000, "tb": 1_000_000_000_000,
            "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40,
        ]
        guard let factor = factors[unit] else { return nil }
        let (bytes, overflow) = number.multipliedReportingOverflow(by: factor)
        return overflow ? nil : bytes
    }

    mutating func duration(_ s: Section, _ key: String, min: Duration, required: Bool = true, default value: Duration? = nil) -> Duration? {
        quantity(
            s, key, expected: "a duration such as \"500ms\", \"15s\", \"2m\", \"1h\" or \"30d\"", required: required, default: value,
            parse: Self.parseDuration, text: FilledIn.durationText, atLeast: min, tooSmall: "shorter than the minimum of \(FilledIn.durationText(min))")
    }

    /// Reads a JWK file: the `{"kid":…,"jwk":{…}}` that `vouch-bank key` prints, or a bare JWK.
    static func readPublicKey(_ path: String) -> Result<PublicJWK, KeyFileProblem> {
        guard let data = FileManager.default.contents(atPath: path) else {
            return .failure(KeyFileProblem(FileManager.default.fileExists(atPath: path) ? "cannot be read" : "does not exist"))
        }
        do {
            let json = try CanonicalJSON.decode(Array(data))
            let key = try PublicJWK(json: json.objectValue?["jwk"] ?? json)
            if let kid = json.objectValue?["kid"]?.stringValue, kid != key.thumbprint {
                return .failure(KeyFileProblem("names kid \(kid), which is not its key's thumbprint"))
            }
            return .success(key)
        } catch {
            return .failure(KeyFileProblem("is not a P-256 public key as `vouch-bank key` prints it (\(error.message))"))
        }
    }

    struct KeyFileProblem: Error, CustomStringConvertible {
        let description: String
        init(_ d: String) { description = d }
    }

    /// `ca_file`, `client_cert`, `client_key` of [bank]; nil after reporting a problem. Each file is checked
    /// here only as far as VouchCore can without a TLS library: it exists, is readable, holds PEM blocks of the
    /// expected kind whose base64 decodes, and the key is not accessible by others. The uplink parses them.
    mutating func bankTLS(_ s: Section, url: String?) -> BankTLSSettings? {
        var ok = true
        let plainHTTP = url?.hasPrefix("http://") == true
        func path(_ key: String, expected: String) -> String? {
            guard let value = string(s, key, required: false, expected: expected) else {
                if s.table[key] != nil { ok = false }  // present but not a string: already reported
                return nil
            }
            return value
        }
        let caFile = path("ca_file", expected: "the path of a PEM file with the CA certificate(s) that sign the bank's certificate")
        let clientCert = path("client_cert", expected: "the path of a PEM file with this gateway's client certificate (chain)")
        let clientKey = path("client_key", expected: "the path of a PEM file with the private key of client_cert")

        func check(_ key: String, _ file: String, _ kind: PEMKind) {
            if let problem = PEMCheck.problem(file: file, kind: kind) {
                report(s.table[key]?.position ?? s.position, "\"\(key)\" in [bank]: \(file) \(problem)")
                ok = false
            }
        }
        if let caFile {
            if plainHTTP {
                report(
                    s.table["ca_file"]?.position ?? s.position,
                    "\"ca_file\" in [bank] needs an https:// url, but [bank] url is \"\(url ?? "")\": plain HTTP has no certificate to pin")
                ok = false
            }
            check("ca_file", caFile, .certificate)
        }
        if let clientCert {
            if plainHTTP {
                report(
                    s.table["client_cert"]?.position ?? s.position,
                    "\"client_cert\" in [bank] needs an https:// url, but [bank] url is \"\(url ?? "")\": a client certificate is only presented over TLS")
                ok = false
            }
            check("client_cert", clientCert, .certificate)
            if clientKey == nil && s.table["client_key"] == nil {
                report(s.table["client_cert"]?.position ?? s.position, "\"client_cert\" in [bank] needs \"client_key\" too: the PEM private key of that certificate")
                ok = false
            }
        }
        if let clientKey {
            check("client_key", clientKey, .privateKey)
            if clientCert == nil && s.table["client_cert"] == nil {
                report(s.table["client_key"]?.position ?? s.position, "\"client_key\" in [bank] needs \"client_cert\" too: the PEM certificate that goes with this key")
                ok = false
            }
        }
        return ok ? BankTLSSettings(caFile: caFile, clientCertificate: clientCert, clientKey: clientKey) : nil
    }

    static func parseDuration(_ text: String) -> Duration? {
        let units: [(String, Int64)] = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000)]
        for (suffix, ms) in units where text.hasSuffix(suffix) {
            let digits = text.dropLast(suffix.count)
            guard !digits.isEmpty, digits.allSatisfy(\.isASCII), digits.allSatisfy(\.isNumber), let n = Int64(digits), n < Int64.max / ms else { continue }
            return .milliseconds(n * ms)
        }
        return nil
    }

    mutating func choice<E: RawRepresentable & CaseIterable>(_ s: Section, _ key: String, _: E.Type, default value: E? = nil, parse: (String) -> E?) -> E? where E.RawValue == String {
        let names = E.allCases.map(\.rawValue).joined(separator: ", ")
        guard let text = string(s, key, required: value == nil, expected: "one of \(names)") else {
            guard s.table[key] == nil else { return nil }
            if let value { filled(s, key, .string(value.rawValue)) }
            return value
        }
        guard let v = parse(text) else {
            report(s.table[key]?.position ?? s.position, "\"\(key)\" in [\(s.name)] is \"\(text)\"; expected one of \(names)")
            return nil
        }
        return v
    }

    mutating func identifier(_ s: Section, _ key: String) -> String? {
        guard let v = string(s, key, expected: "a name of letters, digits, '-', '_' or '.'") else { return nil }
        let ok = !v.isEmpty && v.count <= 64 && v.unicodeScalars.allSatisfy { CharacterSet.alphanumerics.contains($0) && $0.isASCII || "-_.".unicodeScalars.contains($0) }
        if !ok {
            report(s.table[key]?.position ?? s.position, "\"\(key)\" in [\(s.name)] is \"\(v)\"; use 1 to 64 ASCII letters, digits, '-', '_' or '.'")
            return nil
        }
        return v
    }

    mutating func timeOfDay(_ s: Section, _ key: String) -> Int? {
        guard let text = string(s, key, expected: "a time of day \"HH:MM\"") else { return nil }
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        if parts.count == 2, parts[0].count == 2, parts[1].count == 2, text.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ":") }),
            let h = Int(parts[0]), let m = Int(parts[1]),
            (0...24).contains(h), (0...59).contains(m), h * 60 + m <= 24 * 60
        {
            return h * 60 + m
        }
        report(s.table[key]?.position ?? s.position, "\"\(key)\" in [\(s.name)] is \"\(text)\"; expected a time of day \"HH:MM\" from 00:00 to 24:00")
        return nil
    }

    // MARK: the schema

    mutating func decode(_ root: TOMLTable, sourceHash: String) -> AgentConfig? {
        let top = Section(table: root, name: "top level", position: SourcePosition(line: 1, column: 1), known: ["device", "bank", "shift", "calendar", "evidence", "modbus", "gpio", "stoppage", "detect", "release", "metrics"])
        checkUnknown(top)
        let start = top.position

        var device: DeviceSettings?
        if let s = section(root, "device", name: "device", known: ["id", "key_file", "data_dir"], at: start) {
            let id = identifier(s, "id")
            let dataDir = string(s, "data_dir", default: "/var/lib/vouch")
            let keyFile = string(s, "key_file", default: dataDir.map { "\($0)/device.key" })
            if let id, let dataDir, let keyFile { device = DeviceSettings(id: id, keyFile: keyFile, dataDir: dataDir) }
        }

        var bank: BankSettings?
        if let s = section(root, "bank", name: "bank", known: ["url", "timeout", "receipt_key", "ca_file", "client_cert", "client_key"], at: start) {
            let url = string(s, "url", expected: "a URL such as \"https://bank.example:8443\"")
            if let url, !(url.hasPrefix("http://") || url.hasPrefix("https://")) || URL(string: url)?.host == nil {
                report(s.table["url"]?.position ?? s.position, "\"url\" in [bank] is \"\(url)\"; expected an http:// or https:// URL with a host")
            }
            let timeout = duration(s, "timeout", min: .milliseconds(100), default: .seconds(10))
            var receiptKey: PublicJWK?
            var receiptKeyOK = true
            if let keyPath = string(s, "receipt_key", required: false, expected: "the path of the bank's public key file (from `vouch-bank key`)") {
                let at = s.table["receipt_key"]?.position ?? s.position
                switch Self.readPublicKey(keyPath) {
                case .success(let key): receiptKey = key
                case .failure(let why):
                    report(at, "\"receipt_key\" in [bank]: \(keyPath) \(why)")
                    receiptKeyOK = false
                }
            }
            let tls = bankTLS(s, url: url)
            if let url, let timeout, receiptKeyOK, let tls, URL(string: url)?.host != nil {
                bank = BankSettings(url: url.hasSuffix("/") ? String(url.dropLast()) : url, requestTimeout: timeout, receiptKey: receiptKey, tls: tls)
            }
        }

        var shift: ShiftCalendar?
        if let s = section(root, "shift", name: "shift", known: ["timezone", "days", "start", "end"], at: start) {
            let zone = string(s, "timezone", expected: "an IANA time zone such as \"Europe/Berlin\" or \"UTC\"", default: "UTC")
            if let zone, TimeZone(identifier: zone) == nil {
                report(s.table["timezone"]?.position ?? s.position, "\"timezone\" in [shift] is \"\(zone)\", not a known IANA time zone (e.g. \"Europe/Berlin\", \"UTC\")")
            }
            var days: Set<Weekday>? = Set(Weekday.allCases)
            if s.table["days"] == nil { filled(s, "days", FilledIn.weekdays(Weekday.allCases)) }
            if let n = s.table["days"] {
                if case .array(let items) = n.value {
                    var set = Set<Weekday>()
                    for item in items {
                        if case .string(let d) = item.value, let w = Weekday(configName: d) {
                            set.insert(w)
                        } else {
                            report(item.position, "each of \"days\" in [shift] must be a weekday name such as \"mon\" or \"friday\"")
                            days = nil
                        }
                    }
                    if items.isEmpty {
                        report(n.position, "\"days\" in [shift] is empty: no stoppage would ever be alarmed; list the working days or leave \"days\" out for every day")
                        days = nil
                    }
                    if days != nil { days = set }
                } else {
                    report(n.position, "\"days\" in [shift] must be an array of weekday names such as [\"mon\", \"tue\"], found \(n.value.typeName)")
                    days = nil
                }
            }
            let startMinute = timeOfDay(s, "start")
            let endMinute = timeOfDay(s, "end")
            if let zone, TimeZone(identifier: zone) != nil, let days, let startMinute, let endMinute {
                shift = ShiftCalendar(timeZoneID: zone, days: days, startMinute: startMinute, endMinute: endMinute)
            }
        }

        var evidence: EvidenceSettings?
        if let s = optionalSection(root, "evidence", known: ["summary_interval", "batch_interval", "max_batch_records", "heartbeat_interval", "retention", "disk_budget", "raw_samples"], at: start) {
            let si = duration(s, "summary_interval", min: .seconds(1), default: .seconds(60))
            let bi = duration(s, "batch_interval", min: .seconds(1), default: .seconds(60))
            let mr = integer(s, "max_batch_records", range: 1...10_000, default: 500)
            let hb = duration(s, "heartbeat_interval", min: .seconds(10), default: .seconds(300))
            let keep = duration(s, "retention", min: .seconds(3_600), default: EvidenceSettings.defaultRetention)
            let budget = byteSize(s, "disk_budget", min: EvidenceSettings.minimumDiskBudget, default: EvidenceSettings.defaultDiskBudget)
            let raw = boolean(s, "raw_samples", default: false)
            if let si, let bi, let mr, let hb, let keep, let budget, let raw {
                evidence = EvidenceSettings(
                    summaryInterval: si, batchInterval: bi, maxBatchRecords: mr, heartbeatInterval: hb, retention: keep, diskBudgetBytes: budget, rawSamples: raw)
            }
        }

        var channelIDs: [String: SourcePosition] = [:]
        let devices = decodeModbus(root, start: start, channelIDs: &channelIDs)
        let gpio = decodeGPIO(root, channelIDs: &channelIDs)
        if devices.isEmpty && gpio.inputs.isEmpty && diagnostics.isEmpty {
            report(start, "no [[modbus.device]] and no [[gpio.input]] configured: the agent would have nothing to read")
        }

        var rules: [StoppageRuleSettings] = []
        var ruleIDs = Set<String>()
        for r in tableArray(root, "stoppage", name: "stoppage", known: ["id", "channel", "below", "for", "severity", "window_samples"]) {
            let id = identifier(r, "id")
            if let id, !ruleIDs.insert(id).inserted { report(r.table["id"]?.position ?? r.position, "stoppage rule id \"\(id)\" is used twice") }
            let channel = string(r, "channel", expected: "a channel id \"device.channel\"")
            if let channel, channelIDs[channel] == nil {
                let hint = Self.closest(channel, in: Array(channelIDs.keys)).map { "; did you mean \"\($0)\"?" } ?? " (channels: \(channelIDs.keys.sorted().joined(separator: ", ")))"
                report(r.table["channel"]?.position ?? r.position, "stoppage rule channel \"\(channel)\" is not a configured channel\(hint)")
            }
            let below = number(r, "below")
            let minimum = duration(r, "for", min: .seconds(1))
            let severity = string(r, "severity", default: "high")
            let window = integer(r, "window_samples", range: 0...600, default: 10)
            if let id, let channel, channelIDs[channel] != nil, let below, let minimum, let severity, let window {
                rules.append(StoppageRuleSettings(id: id, channel: channel, below: below, minDuration: minimum, severity: severity, windowSamples: window))
            }
        }

        let calendar = decodeCalendar(root, zone: shift?.timeZoneID)
        var release = ReleaseSettings()
        if let s = optionalSection(root, "release", known: ["max_duration"], at: start) {
            let range = ReleaseSettings.maxDurationRange
            if let longest = duration(s, "max_duration", min: range.lowerBound, default: ReleaseSettings.defaultMaxDuration) {
                if longest > range.upperBound {
                    report(s.table["max_duration"]?.position ?? s.position, "\"max_duration\" in [release] is longer than the limit of 7 days (\"7d\"): a release window that long would hide a theft for a week")
                } else {
                    release.maxDuration = longest
                }
            }
        }
        let detectRules = decodeDetect(root, channelIDs: channelIDs, ruleIDs: &ruleIDs)
        var metrics: MetricsSettings?
        if root["metrics"] != nil, let s = section(root, "metrics", name: "metrics", known: ["listen"], at: start),
            let listen = string(s, "listen", expected: "HOST:PORT such as \"127.0.0.1:9464\"")
        {
            let at = s.table["listen"]?.position ?? s.position
            if let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]), (1...65535).contains(port),
                case let host = String(listen[..<colon]), !host.isEmpty, host.split(separator: ".").count == 4, host.split(separator: ".").allSatisfy({ UInt8($0) != nil })
            {
                metrics = MetricsSettings(host: host, port: port)
            } else {
                report(at, "\"listen\" in [metrics] is \"\(listen)\"; expected an IPv4 address and a port such as \"127.0.0.1:9464\" (127.0.0.1 keeps the metrics on the gateway)")
            }
        }

        guard let device, let bank, let shift, let evidence else { return nil }
        var config = AgentConfig(
            device: device, bank: bank, shift: shift, calendar: calendar, evidence: evidence, modbusDevices: devices, gpio: gpio, stoppageRules: rules,
            detectRules: detectRules, release: release, sourceHash: Self.effectiveHash(sourceHash, templates: templatesUsed), sourceFile: file)
        config.metrics = metrics
        return config
    }
}
