import Foundation

/// What a PEM file named in the config must hold.
enum PEMKind: Sendable {
    /// One or more `CERTIFICATE` blocks (a CA bundle, or a certificate chain).
    case certificate
    /// One unencrypted private key: `PRIVATE KEY` (PKCS #8), `EC PRIVATE KEY` or `RSA PRIVATE KEY`.
    case privateKey
}

/// A light check of PEM files at config-load time, without a TLS library (VouchCore has none): the file
/// exists, is a readable regular file, holds `-----BEGIN …-----`/`-----END …-----` blocks of the expected
/// kind whose base64 decodes to DER (a SEQUENCE), and a private key is not accessible by others. Whether a
/// certificate really parses, and whether a key fits its certificate, the uplink finds out when it builds
/// its TLS configuration (`VouchUplink`, with NIOSSL).
enum PEMCheck {
    static let keyLabels: Set<String> = ["PRIVATE KEY", "EC PRIVATE KEY", "RSA PRIVATE KEY"]

    struct Block: Equatable {
        var label: String
        var line: Int
        var der: [UInt8]?
    }

    /// Why `file` is not a usable PEM file of `kind`, as a phrase that follows the path; nil when it is.
    static func problem(file: String, kind: PEMKind) -> String? {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: file, isDirectory: &isDirectory) else { return "does not exist" }
        if isDirectory.boolValue { return "is a directory, not a PEM file" }
        if kind == .privateKey, let mode = (try? FileManager.default.attributesOfItem(atPath: file))?[.posixPermissions] as? Int, mode & 0o007 != 0 {
            return "is accessible by others (mode \(String(mode, radix: 8))): run `chmod 600 \(file)` (or 640 for a group that needs it)"
        }
        guard let data = FileManager.default.contents(atPath: file) else { return "cannot be read (check its owner and permissions)" }
        guard let text = String(data: data, encoding: .utf8) else {
            return kind == .certificate
                ? "is not a PEM certificate file (not text: a DER file? convert it with `openssl x509 -inform der -in FILE -out FILE.pem`)"
                : "is not a PEM private key file (not text: a DER file? convert it with `openssl pkey -inform der -in FILE -out FILE.pem`)"
        }
        let blocks: [Block]
        switch parse(text) {
        case .success(let b): blocks = b
        case .failure(let why): return why.description
        }
        for block in blocks where block.der.map({ $0.first != 0x30 }) ?? true {
            return "has a \(block.label) block at line \(block.line) whose base64 does not decode to DER"
        }
        let labels = blocks.map(\.label)
        switch kind {
        case .certificate:
            guard labels.contains("CERTIFICATE") else {
                if labels.contains(where: { keyLabels.contains($0) || $0 == "ENCRYPTED PRIVATE KEY" }) {
                    return "holds a private key, not a certificate (are client_cert and client_key swapped?)"
                }
                return "is not a PEM certificate file: expected at least one \"-----BEGIN CERTIFICATE-----\" block"
                    + (labels.isEmpty ? "" : " (found \(labels.map { "\"\($0)\"" }.joined(separator: ", ")))")
            }
            return nil
        case .privateKey:
            if labels.contains("ENCRYPTED PRIVATE KEY") {
                return "holds an encrypted private key; the agent has no passphrase: store it unencrypted with mode 0600 (`openssl pkey -in FILE -out KEY.pem`)"
            }
            let keys = labels.filter { keyLabels.contains($0) }
            if keys.isEmpty {
                if labels.contains("CERTIFICATE") { return "holds a certificate, not a private key (are client_cert and client_key swapped?)" }
                return "is not a PEM private key file: expected a \"-----BEGIN PRIVATE KEY-----\" (or EC/RSA PRIVATE KEY) block"
            }
            if keys.count > 1 { return "holds \(keys.count) private keys; it must hold exactly the one of client_cert" }
            return nil
        }
    }

    struct Problem: Error, CustomStringConvertible {
        let description: String
    }

    /// The PEM blocks of `text`, in order (text between blocks is ignored, as OpenSSL does).
    static func parse(_ text: String) -> Result<[Block], Problem> {
        var blocks: [Block] = []
        var open: (label: String, line: Int, body: String, encrypted: Bool)?
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespacesAndNewlines)
            if let label = marker(line, "BEGIN") {
                if let o = open { return .failure(Problem(description: "has a \(o.label) block at line \(o.line) without its END line")) }
                open = (label, index + 1, "", false)
            } else if let label = marker(line, "END") {
                guard let o = open, o.label == label else {
                    return .failure(Problem(description: "has an END \(label) line at line \(index + 1) without its BEGIN line"))
                }
                let der = Data(base64Encoded: o.body).map { Array($0) }
                blocks.append(Block(label: o.encrypted ? "ENCRYPTED PRIVATE KEY" : o.label, line: o.line, der: o.encrypted ? [0x30] : der))
                open = nil
            } else if open != nil {
                // RFC 1421 headers (Proc-Type, DEK-Info) mark a legacy encrypted key.
                if line.contains(":") {
                    open!.encrypted = true
                    continue
                }
                open!.body += line
            }
        }
        if let o = open { return .failure(Problem(description: "has a \(o.label) block at line \(o.line) without its END line")) }
        return .success(blocks)
    }

    /// The label of `-----BEGIN LABEL-----` (or END), or nil.
    static func marker(_ line: String, _ word: String) -> String? {
        let head = "-----\(word) ", tail = "-----"
        guard line.hasPrefix(head), line.hasSuffix(tail), line.count > head.count + tail.count else { return nil }
        return String(line.dropFirst(head.count).dropLast(tail.count))
    }
}
