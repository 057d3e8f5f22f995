import CompressNIO
import Foundation
import Hummingbird
import NIOCore
import Testing
import VouchBank
import VouchEvidence

/// Uploads gzipped on the wire (what the uplink sends): accepted, and bounded after decompression.
@Suite struct GzipUploadTests {
    static func gzip(_ bytes: [UInt8]) throws -> ByteBuffer {
        var buffer = ByteBuffer(bytes: bytes)
        return try buffer.compress(with: .gzip())
    }

    @Test("a gzip-encoded batch file is accepted as the same batch; a resend plain is a duplicate")
    func gzipAccepted() async throws {
        try await TestBank.with { bank in
            let device = TestDevice()
            try bank.enroll(device)
            let chain = ChainBuilder.chain(device, batches: 1, perBatch: 40)
            let compressed = try Self.gzip(chain[0].file)
            #expect(compressed.readableBytes * 2 < chain[0].file.count, "the records compress")
            let (zipped, plain) = try await bank.http { client in
                (
                    try await client.post(body: compressed, contentType: BatchFile.mediaType, contentEncoding: "gzip"),
                    try await client.post(chain[0])
                )
            }
            #expect(zipped.status == 200 && zipped.verdict == "accepted", "\(zipped.text)")
            #expect(plain.status == 200 && plain.verdict == "duplicate", "\(plain.text)")
            #expect(try bank.store.batches(device: device.id).first?.file == chain[0].file, "stored as signed, not as sent")
        }
    }

    @Test("a gzip bomb (tiny body, huge inflation) is refused 413 E_TOO_LARGE without inflating it all")
    func gzipBomb() async throws {
        try await TestBank.with(settings: BankServerSettings(maxBodyBytes: 64 * 1024)) { bank in
            let bomb = try Self.gzip([UInt8](repeating: 0x5B, count: 50 * 1024 * 1024))
            #expect(bomb.readableBytes < 64 * 1024, "the compressed bomb passes the body limit")
            let reply = try await bank.http { client in try await client.post(body: bomb, contentType: BatchFile.mediaType, contentEncoding: "gzip") }
            #expect(reply.status == 413, "\(reply.text)")
            #expect(reply.errorCode == "E_TOO_LARGE")
        }
    }

    @Test("a body that is not gzip, or an unknown encoding, is refused with its code")
    func badEncodings() async throws {
        try await TestBank.with { bank in
            let device = TestDevice()
            try bank.enroll(device)
            let chain = ChainBuilder.chain(device, batches: 1)
            let (notGzip, brotli) = try await bank.http { client in
                (
                    try await client.post(body: ByteBuffer(bytes: chain[0].file), contentType: BatchFile.mediaType, contentEncoding: "gzip"),
                    try await client.post(body: ByteBuffer(bytes: chain[0].file), contentType: BatchFile.mediaType, contentEncoding: "br")
                )
            }
            #expect(notGzip.status == 400 && notGzip.errorCode == "E_BATCH_MALFORMED", "\(notGzip.text)")
            #expect(brotli.status == 415 && brotli.errorCode == "E_CONTENT_ENCODING", "\(brotli.text)")
            #expect(try bank.store.batches(device: device.id).isEmpty)
        }
    }

    /// Pins the bug where the limit after decompression was only as exact as zlib's output buffers,
    /// which round up: 2,001 bytes inflated from gzip got through a 2,000-byte limit.
    @Test("the decompressed limit is exact: one byte over is 413, at the limit it is read")
    func decompressedLimitIsExact() async throws {
        try await TestBank.with(settings: BankServerSettings(maxBodyBytes: 2_000)) { bank in
            let (over, at) = try await bank.http { client in
                (
                    try await client.post(body: try Self.gzip(Array(repeating: UInt8(ascii: "x"), count: 2_001)), contentType: BatchFile.mediaType, contentEncoding: "gzip"),
                    try await client.post(body: try Self.gzip(Array(repeating: UInt8(ascii: "x"), count: 2_000)), contentType: BatchFile.mediaType, contentEncoding: "gzip")
                )
            }
            #expect(over.status == 413 && over.errorCode == "E_TOO_LARGE", "\(over.text)")
            #expect(at.status == 400, "read, then refused as what it is (not a batch file): \(at.text)")
        }
    }
}
