import AsyncHTTPClient
import Foundation
import NIOCore
import NIOSSL
import VouchCore

/// HTTPS to the bank with a pinned CA and an optional client certificate (`[bank] ca_file`, `client_cert`,
/// `client_key`).
///
/// Invariants:
/// - The bank's certificate is always verified in full, hostname (or IP address) included.
/// - With `ca_file` set, only its certificates are trust roots: the system trust store is not used.
/// - A TLS failure is an ``UplinkError`` with code `E_UPLINK_TLS` that names the file to look at; it is
///   transient for delivery (backoff, never a quarantine), since the cause is on a gateway or bank, never in
///   the batch.
public enum UplinkTLS {
    /// The client TLS configuration for `tls`, every file parsed and the key checked against its certificate.
    public static func configuration(_ tls: BankTLSSettings) throws(UplinkError) -> TLSConfiguration {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.certificateVerification = .fullVerification
        if let caFile = tls.caFile {
            let roots: [NIOSSLCertificate]
            do { roots = try NIOSSLCertificate.fromPEMFile(caFile) } catch {
                throw UplinkError(.tls, "[bank] ca_file \(caFile) does not load as PEM CA certificate(s): \(error)")
            }
            guard !roots.isEmpty else { throw UplinkError(.tls, "[bank] ca_file \(caFile) holds no certificate") }
            configuration.trustRoots = .certificates(roots)
        }
        switch (tls.clientCertificate, tls.clientKey) {
        case (nil, nil):
            break
        case (let certFile?, let keyFile?):
            let chain: [NIOSSLCertificate]
            do { chain = try NIOSSLCertificate.fromPEMFile(certFile) } catch {
                throw UplinkError(.tls, "[bank] client_cert \(certFile) does not load as a PEM certificate chain: \(error)")
            }
            guard !chain.isEmpty else { throw UplinkError(.tls, "[bank] client_cert \(certFile) holds no certificate") }
            let key: NIOSSLPrivateKey
            do { key = try NIOSSLPrivateKey(file: keyFile, format: .pem) } catch {
                throw UplinkError(.tls, "[bank] client_key \(keyFile) does not load as an unencrypted PEM private key: \(error)")
            }
            configuration.certificateChain = chain.map { .certificate($0) }
            configuration.privateKey = .privateKey(key)
            // BoringSSL checks the key against the first certificate of the chain when the context is made.
            do { _ = try NIOSSLContext(configuration: configuration) } catch {
                throw UplinkError(.tls, "[bank] client_key \(keyFile) is not the private key of the first certificate in client_cert \(certFile) (\(error))")
            }
        default:
            throw UplinkError(.tls, "[bank] client_cert and client_key go together: set both or neither")
        }
        do { _ = try NIOSSLContext(configuration: configuration) } catch {
            if tls.caFile == nil {
                throw UplinkError(
                    .tls, "the system's trusted CA certificates could not be loaded for the bank's https:// url (is a CA bundle installed in /etc/ssl/certs?); set [bank] ca_file to the bank's CA certificate (\(error))")
            }
            throw UplinkError(.tls, "the TLS settings in [bank] do not make a TLS context: \(error)")
        }
        return configuration
    }

    /// An HTTP client of its own for `tls`; whoever makes it shuts it down (``Uplink`` does, for the client it
    /// makes in ``Uplink/withOwnHTTPClient(outbox:key:rotation:settings:clock:logger:)``).
    ///
    /// Connection attempts are not retried inside the client: the uplink retries with its own backoff, and each
    /// attempt then reports its own TLS error at once instead of after the request timeout.
    public static func makeHTTPClient(_ tls: BankTLSSettings, bankURL: String) throws(UplinkError) -> HTTPClient {
        HTTPClient(eventLoopGroupProvider: .singleton, configuration: try clientConfiguration(tls, bankURL: bankURL))
    }

    /// What ``makeHTTPClient(_:bankURL:)`` configures: TLS only for an https:// bank (a plain http:// one
    /// needs no trust store, and a gateway without one must still run).
    public static func clientConfiguration(_ tls: BankTLSSettings, bankURL: String) throws(UplinkError) -> HTTPClient.Configuration {
        var pool = HTTPClient.Configuration.ConnectionPool()
        pool.retryConnectionEstablishment = false
        let https = bankURL.lowercased().hasPrefix("https://")
        return HTTPClient.Configuration(tlsConfiguration: https ? try self.configuration(tls) : nil, connectionPool: pool)
    }

    /// The technician's reading of a TLS failure, or nil when `error` is not one.
    static func explain(_ error: any Error, bankURL: String, tls: BankTLSSettings) -> String? {
        guard error is NIOSSLError || error is BoringSSLError || error is NIOSSLExtraError else { return nil }
        // A connection closed without TLS's close_notify is a network matter (a reset, a proxy), not a certificate.
        if let e = error as? NIOSSLError, e == .uncleanShutdown { return nil }
        let detail = reasons(error)
        let host = URL(string: bankURL)?.host ?? bankURL
        if let extra = error as? NIOSSLExtraError, extra == .failedToValidateHostname {
            return "the bank's certificate does not name \(host), the host in [bank] url \(bankURL): its subjectAltName must list that DNS name or IP address (\(detail))"
        }
        if detail.contains("CERTIFICATE_VERIFY_FAILED") {
            let trust =
                tls.caFile.map { "is not signed by a CA in [bank] ca_file \($0) (pinned: the system trust store is not used)" }
                ?? "is not trusted by the system trust store (set [bank] ca_file to the CA that signs it)"
            return "the bank's certificate \(trust), or it is expired or not yet valid (check the gateway's clock) (\(detail))"
        }
        if detail.contains("WRONG_VERSION_NUMBER") || detail.contains("HTTP_REQUEST") {
            return "the bank at \(bankURL) does not answer with TLS on that port (is it an http:// address?) (\(detail))"
        }
        let refusals = ["CERTIFICATE_REQUIRED", "UNKNOWN_CA", "BAD_CERTIFICATE", "CERTIFICATE_UNKNOWN", "UNSUPPORTED_CERTIFICATE", "CERTIFICATE_EXPIRED", "CERTIFICATE_REVOKED", "ACCESS_DENIED", "HANDSHAKE_FAILURE", "DECRYPT_ERROR"]
        if refusals.contains(where: detail.contains) {
            if let cert = tls.clientCertificate {
                return "the bank refused the client certificate in [bank] client_cert \(cert): it is not signed by a CA the bank trusts for clients, or it is expired (\(detail))"
            }
            return "the bank requires a client certificate and none is configured: set [bank] client_cert and client_key (\(detail))"
        }
        return "TLS with the bank at \(bankURL) failed (\(detail))"
    }

    /// BoringSSL's reason names (e.g. `CERTIFICATE_VERIFY_FAILED`, `TLSV1_ALERT_UNKNOWN_CA`) without the error
    /// numbers and source paths around them; the whole description for anything else.
    static func reasons(_ error: any Error) -> String {
        let text = "\(error)"
        var names: [String] = []
        var rest = text[...]
        while let marker = rest.range(of: "OPENSSL_internal:") {
            let name = rest[marker.upperBound...].prefix { $0.isLetter || $0.isNumber || $0 == "_" }
            if !name.isEmpty && !names.contains(String(name)) { names.append(String(name)) }
            rest = rest[marker.upperBound...]
        }
        return names.isEmpty ? text : "TLS: " + names.joined(separator: ", ")
    }
}
