import AsyncHTTPClient
import NIOCore
import VouchCore
import VouchEvidence

/// One `GET /healthz` to the bank with the uplink's own TLS settings (pinned CA, client certificate):
/// what `vouch doctor` asks to tell "the bank is reachable and trusted" from each way it is not.
public enum BankProbe {
    /// The bank's answer (`{"status":"ok","devices":N}`), or why there was none, in the uplink's terms.
    public static func health(bankURL: String, tls: BankTLSSettings, timeout: Duration = .seconds(10)) async -> Result<String, UplinkError> {
        let client: HTTPClient
        do { client = try UplinkTLS.makeHTTPClient(tls, bankURL: bankURL) } catch { return .failure(error) }
        let result: Result<String, UplinkError>
        do {
            var request = HTTPClientRequest(url: bankURL + "/healthz")
            request.headers.add(name: "User-Agent", value: "vouch/\(VouchCoreInfo.agentVersion) doctor")
            let response = try await client.execute(request, timeout: .seconds(Int64(timeout.components.seconds)))
            let body = String(buffer: try await response.body.collect(upTo: 64 * 1024))
            if response.status.code == 200 {
                result = .success(body)
            } else {
                result = .failure(UplinkError(.unreachable, "\(bankURL)/healthz answered \(response.status.code): \(body.prefix(200))"))
            }
        } catch {
            if let why = UplinkTLS.explain(error, bankURL: bankURL, tls: tls) {
                result = .failure(UplinkError(.tls, "TLS with the bank failed: \(why)"))
            } else {
                result = .failure(UplinkError(.unreachable, "bank at \(bankURL) unreachable: \(error)"))
            }
        }
        try? await client.shutdown()
        return result
    }
}
