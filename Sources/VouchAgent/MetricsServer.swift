import Dispatch
import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import VouchCore

#if canImport(Glibc)
import Glibc
#endif

/// `[metrics] listen`: Prometheus text metrics (`GET /metrics`) for a site's own monitoring, from the
/// same figures as `vouch status`. Off unless configured. A plain HTTP/1.0 answer per connection on a
/// thread of its own: no HTTP server library on the gateway for one page.
final class MetricsServer: Service, Sendable {
    let settings: MetricsSettings
    let source: ControlServer.StatusSource
    let pipeline: EvidencePipeline
    let deviceID: String
    let logger: Logger
    private let listener = SocketListener(name: "vouch.metrics")

    init(settings: MetricsSettings, source: ControlServer.StatusSource, pipeline: EvidencePipeline, deviceID: String, logger: Logger) {
        self.settings = settings
        self.source = source
        self.pipeline = pipeline
        self.deviceID = deviceID
        self.logger = logger
    }

    func run() async throws {
        do { try listen() } catch {
            // Monitoring must never cost evidence: the agent runs on without it.
            logger.error("metrics on \(settings.host):\(settings.port) unavailable: \(error); the agent runs without them")
            try? await gracefulShutdown()
            return
        }
        logger.info("Prometheus metrics at http://\(settings.host):\(settings.port)/metrics")
        try? await gracefulShutdown()
        stop()
    }

    func listen() throws(ControlClientError) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw ControlClientError("socket: \(String(cString: strerror(errno)))") }
        var yes: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(settings.port).bigEndian
        address.sin_addr.s_addr = inet_addr(settings.host)
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard bound == 0, Glibc.listen(fd, 16) == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw ControlClientError("bind/listen: \(reason)")
        }
        listener.start(fd) { [self] client in serve(client) }
    }

    func stop() { listener.stop() }

    private func serve(_ fd: Int32) {
        defer { close(fd) }
        var tv = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let requestLine = ControlSocket.readLine(fd, limit: 8192).map { String(decoding: $0, as: UTF8.self) } ?? ""
        let parts = requestLine.split(separator: " ")
        let answer: (status: String, body: String)
        if parts.count >= 2, parts[0] == "GET", parts[1] == "/metrics" || parts[1].hasPrefix("/metrics?") {
            let status = ControlServer.wait { [self] in await source.status(pipeline: pipeline, deviceID: deviceID) }
            answer = ("200 OK", Self.exposition(status))
        } else {
            answer = ("404 Not Found", "only GET /metrics is served here\n")
        }
        let head = "HTTP/1.0 \(answer.status)\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: \(answer.body.utf8.count)\r\nConnection: close\r\n\r\n"
        _ = ControlSocket.writeAll(fd, Data((head + answer.body).utf8))
    }

    /// The Prometheus text format of a status.
    static func exposition(_ s: AgentStatus) -> String {
        var out = ""
        func metric(_ name: String, _ help: String, _ type: String = "gauge", _ samples: [(labels: String, value: String)]) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
            for sample in samples { out += "\(name)\(sample.labels) \(sample.value)\n" }
        }
        func label(_ pairs: [(String, String)]) -> String {
            "{" + pairs.map { "\($0.0)=\"\($0.1.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(of: "\n", with: "\\n"))\"" }.joined(separator: ",") + "}"
        }
        let device = [("device", s.device)]
        metric("vouch_up", "1 while the agent runs.", "gauge", [(label(device + [("version", s.version)]), "1")])
        metric("vouch_uptime_seconds", "Seconds since the agent started.", "gauge", [(label(device), "\(s.uptimeMs / 1000)")])
        metric("vouch_boot_count", "Boots of the gateway the agent has seen.", "gauge", [(label(device), "\(s.bootCount)")])
        metric("vouch_clock_synchronized", "1 when the wall clock is synchronised (NTP).", "gauge", [(label(device), s.clock.quality == "sync" ? "1" : "0")])
        metric(
            "vouch_channel_value", "Last good reading of each channel, in its unit.", "gauge",
            s.channels.compactMap { c in c.value.map { (label(device + [("channel", c.id), ("unit", c.unit)]), IntegerScaling.text($0, exponent: c.scale)) } })
        metric(
            "vouch_channel_failing", "1 while a channel's polls fail.", "gauge",
            s.channels.map { (label(device + [("channel", $0.id)]), $0.quality == "failing" ? "1" : "0") })
        metric(
            "vouch_rule_finding", "1 while a rule has an event open (a stoppage, stock leaving…).", "gauge",
            s.rules.map { (label(device + [("rule", $0.id), ("kind", $0.kind), ("severity", $0.severity ?? "")]), $0.state == "finding" ? "1" : "0") })
        if let o = s.outbox {
            metric("vouch_outbox_records", "Records in the outbox.", "gauge", [(label(device), "\(o.records)")])
            metric("vouch_outbox_unsealed_records", "Records not yet sealed into a batch.", "gauge", [(label(device), "\(o.unsealedRecords)")])
            metric("vouch_outbox_undelivered_batches", "Sealed batches the bank has not acknowledged.", "gauge", [(label(device), "\(o.undeliveredBatches)")])
        }
        metric("vouch_uplink_failures", "Delivery rounds failed in a row.", "gauge", [(label(device), "\(s.uplink.failures)")])
        if let at = s.uplink.lastReceiptWallMs {
            metric("vouch_last_receipt_timestamp_seconds", "When the bank last acknowledged a batch.", "gauge", [(label(device), "\(at / 1000)")])
        }
        return out
    }
}
