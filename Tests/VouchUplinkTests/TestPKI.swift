import Foundation

/// Throwaway certificates made at test time with the `openssl` command (P-256 keys, valid for 2 days):
///
/// - `ca`: the bank's CA, the one the gateway pins; `server` (SAN IP:127.0.0.1, DNS:localhost) and
///   `wrongName` (SAN DNS:wrong.example) are signed by it.
/// - `otherCA`: an unrelated CA; `otherServer` (same names as `server`) and `rogueClient` are signed by it.
/// - `clientCA`: the CA the bank trusts for gateways (mTLS); `client` is signed by it.
///
/// Each certificate `name` is `name.pem` with its key in `name.key` (mode 0600) in `directory`.
struct TestPKI: Sendable {
    let directory: String

    func cert(_ name: String) -> String { directory + "/\(name).pem" }
    func key(_ name: String) -> String { directory + "/\(name).key" }

    init(in directory: String) throws {
        self.directory = directory
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try makeCA("ca", subject: "/CN=Vouch Test Bank CA")
        try makeCA("otherCA", subject: "/CN=Unrelated Test CA")
        try makeCA("clientCA", subject: "/CN=Vouch Test Gateway CA")
        let serverNames = "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"
        try makeLeaf("server", subject: "/CN=vouch-bank test", signer: "ca", extensions: serverNames)
        try makeLeaf("otherServer", subject: "/CN=vouch-bank test", signer: "otherCA", extensions: serverNames)
        try makeLeaf("wrongName", subject: "/CN=wrong.example", signer: "ca", extensions: "subjectAltName=DNS:wrong.example\nextendedKeyUsage=serverAuth\n")
        try makeLeaf("client", subject: "/CN=acme-press-1", signer: "clientCA", extensions: "extendedKeyUsage=clientAuth\n")
        try makeLeaf("rogueClient", subject: "/CN=acme-press-1", signer: "otherCA", extensions: "extendedKeyUsage=clientAuth\n")
    }

    private func makeCA(_ name: String, subject: String) throws {
        try Self.openssl([
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key(name), "-out", cert(name),
            "-days", "2", "-subj", subject, "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        ])
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: key(name))
    }

    private func makeLeaf(_ name: String, subject: String, signer: String, extensions: String) throws {
        let request = directory + "/\(name).csr", extFile = directory + "/\(name).ext"
        try Data(("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n" + extensions).utf8).write(to: URL(fileURLWithPath: extFile))
        try Self.openssl([
            "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key(name), "-out", request, "-subj", subject,
        ])
        try Self.openssl([
            "x509", "-req", "-in", request, "-CA", cert(signer), "-CAkey", key(signer), "-CAcreateserial", "-out", cert(name), "-days", "2",
            "-extfile", extFile,
        ])
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: key(name))
    }

    static func openssl(_ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = arguments
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let output = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw TestFailure("openssl \(arguments.joined(separator: " ")) failed: \(String(decoding: output, as: UTF8.self))")
        }
    }
}
