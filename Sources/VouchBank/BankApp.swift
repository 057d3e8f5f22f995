import CompressNIO
import Dispatch
import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import Logging
import NIOCore
import NIOSSL
import VouchEvidence

/// Settings of `vouch-bank serve`.
public struct BankServerSettings: Sendable {
    public var host: String
    public var port: Int
    /// Largest accepted upload body.
    public var maxBodyBytes: Int
    /// HTTPS (and mTLS) when set, from ``BankTLSFiles/configuration()``; plain HTTP when nil.
    public var tls: TLSConfiguration?
    /// The query and admin API's token (`--api-token-file`); nil: that API is off. Never a default.
    public var apiToken: String?

    public init(host: String = "127.0.0.1", port: Int = 8080, maxBodyBytes: Int = 4 << 20, tls: TLSConfiguration? = nil, apiToken: String? = nil) {
        self.host = host
        self.port = port
        self.maxBodyBytes = maxBodyBytes
        self.tls = tls
        self.apiToken = apiToken
    }
}

/// The files of `vouch-bank serve --tls-cert --tls-key [--client-ca]`.
public struct BankTLSFiles: Sendable, Equatable {
    /// PEM certificate chain the bank presents (its own certificate first).
    public var certificate: String
    /// PEM private key of that certificate.
    public var privateKey: String
    /// PEM CA certificate(s): when set, every client must present a certificate signed by one of them (mTLS).
    public var clientCA: String?

    public init(certificate: String, privateKey: String, clientCA: String? = nil) {
        self.certificate = certificate
        self.privateKey = privateKey
        self.clientCA = clientCA
    }

    public static let errorCode = "E_BANK_TLS"

    /// The server TLS configuration, every file loaded and the key checked against the certificate, so a bad
    /// file stops `serve` at start with the file's name rather than failing each handshake later.
    public func configuration() throws(BankError) -> TLSConfiguration {
        let chain = try Self.certificates(certificate, flag: "--tls-cert", what: "certificate chain")
        try Self.mustBeFile(privateKey, flag: "--tls-key")
        let key: NIOSSLPrivateKey
        do { key = try NIOSSLPrivateKey(file: privateKey, format: .pem) } catch {
            throw BankError(Self.errorCode, status: 500, "--tls-key \(privateKey) does not load as an unencrypted PEM private key: \(error)")
        }
        var configuration = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        do { _ = try NIOSSLContext(configuration: configuration) } catch {
            throw BankError(Self.errorCode, status: 500, "--tls-key \(privateKey) is not the private key of the first certificate in --tls-cert \(certificate) (\(error))")
        }
        if let clientCA {
            let roots = try Self.certificates(clientCA, flag: "--client-ca", what: "CA certificate(s)")
            // Verify the client's chain against these roots only; a client has no hostname to check.
            configuration.certificateVerification = .noHostnameVerification
            configuration.trustRoots = .certificates(roots)
            configuration.sendCANameList = true
        }
        return configuration
    }

    static func mustBeFile(_ path: String, flag: String) throws(BankError) {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw BankError(errorCode, status: 500, "\(flag) \(path) does not exist")
        }
        guard !isDirectory.boolValue else { throw BankError(errorCode, status: 500, "\(flag) \(path) is a directory, not a PEM file") }
        guard FileManager.default.isReadableFile(atPath: path) else {
            throw BankError(errorCode, status: 500, "\(flag) \(path) cannot be read (check its owner and permissions)")
        }
    }

    static func certificates(_ path: String, flag: String, what: String) throws(BankError) -> [NIOSSLCertificate] {
        try mustBeFile(path, flag: flag)
        let certificates: [NIOSSLCertificate]
        do { certificates = try NIOSSLCertificate.fromPEMFile(path) } catch {
            throw BankError(errorCode, status: 500, "\(flag) \(path) does not load as a PEM \(what): \(error)")
        }
        guard !certificates.isEmpty else {
            throw BankError(errorCode, status: 500, "\(flag) \(path) holds no \"-----BEGIN CERTIFICATE-----\" block")
        }
        return certificates
    }
}

/// The bank's HTTP router. Tests call this too, so what they exercise is what `serve` runs.
public func buildBankRouter(ingest: BankIngest, settings: BankServerSettings, metrics: BankMetrics = BankMetrics()) -> Router<BasicRequestContext> {
    let router = Router()
    router.add(middleware: UnknownRouteMiddleware())
    router.get("/healthz") { _, _ in
        do throws(BankError) {
            let devices = try await ingest.store.devices().count
            return jsonResponse(.ok, ["status": "ok", "devices": .int(Int64(devices))])
        } catch {
            return errorResponse(error)
        }
    }
    BankAPI.register(on: router, ingest: ingest, settings: settings, metrics: metrics)
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
            // Verified here; stored by the store's writer thread, grouped with the uploads beside it.
            let result = try await ingest.ingestAsync(file: Array(body.readableBytesView))
            metrics.upload(verdict: result.verdict.rawValue)
            return jsonResponse(.ok, ["verdict": .string(result.verdict.rawValue), "bseq": .int(result.bseq), "device": .string(result.device), "receipt": .string(result.receipt)])
        } catch let error as BankError {
            metrics.upload(verdict: "refused", code: error.code)
            if error.status >= 500 { ingest.logger.error("\(error)") } else if error.status != 429 { ingest.logger.warning("refused an upload: \(error)") }
            return errorResponse(error)
        }
    }
    return router
}

/// The whole bank application, as `vouch-bank serve` runs it: HTTPS when `settings.tls` is set.
public func buildBankApplication(ingest: BankIngest, settings: BankServerSettings, logger: Logger) throws(BankError) -> some ApplicationProtocol {
    var server = HTTPServerBuilder.http1()
    if let tls = settings.tls {
        do { server = try .tls(.http1(), tlsConfiguration: tls) } catch {
            throw BankError(BankTLSFiles.errorCode, status: 500, "the TLS configuration does not make a server: \(error)")
        }
    }
    return Application(
        router: buildBankRouter(ingest: ingest, settings: settings),
        server: server,
        configuration: .init(address: .hostname(settings.host, port: settings.port), serverName: "vouch-bank"),
        logger: logger)
}

/// A path no route serves, or a method a path does not take: the bank's JSON error, not an empty 404.
struct UnknownRouteMiddleware: RouterMiddleware {
    typealias Context = BasicRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as HTTPError where error.status == .notFound || error.status == .methodNotAllowed {
            if let allowed = BankAPI.methods(path: request.uri.path), !allowed.contains(request.method.rawValue) {
                var response = errorResponse(
                    BankError(BankError.noRoute, status: 405, "\(request.uri.path) takes \(allowed.joined(separator: ", ")), not \(request.method); see /openapi.yaml"))
                response.headers[.allow] = allowed.joined(separator: ", ")
                return response
            }
            return errorResponse(BankError(BankError.noRoute, status: 404, "no endpoint \(request.uri.path); see /openapi.yaml"))
        }
    }
}

func jsonResponse(_ status: HTTPResponse.Status, _ value: JSONValue) -> Response {
    Response(
        status: status, headers: [.contentType: "application/json"],
        body: .init(byteBuffer: ByteBuffer(bytes: CanonicalJSON.encode(value))))
}
