import CompressNIO
import Hummingbird
import Logging
import NIOCore
import VouchEvidence

/// Settings of `vouch-bank serve`.
public struct BankServerSettings: Sendable {
    public var host: String
    public var port: Int
    /// Largest accepted upload body.
    public var maxBodyBytes: Int

    public init(host: String = "127.0.0.1", port: Int = 8080, maxBodyBytes: Int = 4 << 20) {
        self.host = host
        self.port = port
        self.maxBodyBytes = maxBodyBytes
    }
}

/// The bank's HTTP router. Tests call this too, so what they exercise is what `serve` runs.
public func buildBankRouter(ingest: BankIngest, settings: BankServerSettings) -> Router<BasicRequestContext> {
    let router = Router()
    router.get("/healthz") { _, _ in
        jsonResponse(.ok, ["status": "ok"])
    }
    router.post("/v1/batches") { request, _ -> Response in
        do {
            let contentType = request.headers[.contentType]?.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
            guard contentType == BatchFile.mediaType else {
                throw BankError(BankError.contentType, status: 415, "upload a batch as Content-Type: \(BatchFile.mediaType) (got \(contentType ?? "none"))")
            }
            var body: ByteBuffer
            do { body = try await request.body.collect(upTo: settings.maxBodyBytes) } catch {
                throw BankError(BankError.tooLarge, status: 413, "batch larger than \(settings.maxBodyBytes) bytes")
            }
            switch request.headers[.contentEncoding]?.lowercased().trimmingCharacters(in: .whitespaces) {
            case nil, "identity":
                break
            case "gzip":
                // Bounded: a small body that inflates without end (a gzip bomb) is refused, not expanded.
                do { body = try body.decompress(with: .gzip(), maxSize: settings.maxBodyBytes) } catch let error as CompressNIOError {
                    if error == .bufferOverflow {
                        throw BankError(BankError.tooLarge, status: 413, "batch larger than \(settings.maxBodyBytes) bytes once decompressed")
                    }
                    throw BankError(EvidenceError.Code.malformedBatch.rawValue, status: 400, "the gzip body does not decompress: \(error)")
                }
                // The decompressor's bound is approximate (buffers round up): the limit itself is exact.
                guard body.readableBytes <= settings.maxBodyBytes else {
                    throw BankError(BankError.tooLarge, status: 413, "batch larger than \(settings.maxBodyBytes) bytes once decompressed")
                }
            case let other?:
                throw BankError(BankError.contentEncoding, status: 415, "Content-Encoding \(other) is not supported (send gzip or none)")
            }
            let result = try ingest.ingest(file: body.readableBytesView)
            return jsonResponse(.ok, ["verdict": .string(result.verdict.rawValue), "bseq": .int(result.bseq), "device": .string(result.device), "receipt": .string(result.receipt)])
        } catch let error as BankError {
            if error.status >= 500 { ingest.logger.error("\(error)") } else { ingest.logger.warning("refused an upload: \(error)") }
            return jsonResponse(HTTPResponse.Status(code: error.status), ["error": ["code": .string(error.code), "message": .string(error.message)]])
        }
    }
    return router
}

/// The whole bank application, as `vouch-bank serve` runs it.
public func buildBankApplication(ingest: BankIngest, settings: BankServerSettings, logger: Logger) -> some ApplicationProtocol {
    Application(
        router: buildBankRouter(ingest: ingest, settings: settings),
        configuration: .init(address: .hostname(settings.host, port: settings.port), serverName: "vouch-bank"),
        logger: logger)
}

func jsonResponse(_ status: HTTPResponse.Status, _ value: JSONValue) -> Response {
    Response(
        status: status, headers: [.contentType: "application/json"],
        body: .init(byteBuffer: ByteBuffer(bytes: CanonicalJSON.encode(value))))
}
