import Foundation
import Testing
@testable import VouchBank
import VouchEvidence

/// The pieces of the query and admin API that need no HTTP: revocation and chain status in the store,
/// the upload limiter, the token check. (The API over HTTP against its OpenAPI document is
/// Tests/EndToEnd/test_bank_api.py.)
struct BankAPITests {
    @Test func revocationTakesEffectFromItsTimeAndKeepsTheFirstTime() async throws {
        try await TestBank.with { bank in
            let device = TestDevice()
            try bank.enroll(device)
            var chain = ChainBuilder(device)
            #expect(bank.refusal(chain.next(), nowMs: Fixture.t0) == nil)
            let revoked = try bank.store.revoke(device: device.id, atMs: Fixture.t0 + 1_000)
            #expect(revoked.revokedAtMs == Fixture.t0 + 1_000)
            #expect(try bank.store.revoke(device: device.id, atMs: Fixture.t0 + 9_000).revokedAtMs == Fixture.t0 + 1_000)
            #expect(bank.refusal(chain.next(), nowMs: Fixture.t0 + 1_000)?.code == BankError.revokedDevice)
            #expect(throws: BankError.self) { try bank.store.revoke(device: "nobody", atMs: 0) }
            let status = try bank.store.chainStatus(device: device.id, nowMs: Fixture.t0 + 2_000)
            #expect(status.batches == 1 && status.lastBseq == 1 && status.records == 3 && status.incidents == 0)
        }
    }

    @Test func aNewDeviceHasAnEmptyChain() async throws {
        try await TestBank.with { bank in
            let device = TestDevice()
            try bank.enroll(device)
            #expect(try bank.store.chainStatus(device: device.id, nowMs: Fixture.t0) == ChainStatus())
            #expect(try bank.store.device(id: device.id)?.kid == device.key.kid)
            #expect(try bank.store.device(id: "nobody") == nil)
        }
    }

    @Test func theLimiterAllowsItsBurstThenItsRatePerDevice() {
        let limiter = UploadRateLimiter(perSecond: 2, burst: 3)
        #expect((0..<3).map { _ in limiter.take("a", nowMs: 0) } == [nil, nil, nil])
        #expect(limiter.take("a", nowMs: 0) == 1, "retry in a second")
        #expect(limiter.take("b", nowMs: 0) == nil, "another device has its own bucket")
        #expect(limiter.take("a", nowMs: 500) == nil, "half a second at 2/s is one upload")
        #expect(limiter.take("a", nowMs: 500) != nil)
        #expect((0..<3).map { _ in limiter.take("a", nowMs: 60_000) } == [nil, nil, nil], "refilled to the burst, not beyond")
        #expect(limiter.take("a", nowMs: 60_000) != nil)
    }

    @Test func theTokenIsComparedWholeAndExactly() {
        let token = APIToken(String(repeating: "ab", count: 32))
        #expect(token.matches(String(repeating: "ab", count: 32)))
        #expect(!token.matches(String(repeating: "ab", count: 31)))
        #expect(!token.matches(String(repeating: "ab", count: 32) + " "))
        #expect(!token.matches(""))
    }

    @Test func everyServedPathIsFoundWithItsMethods() {
        #expect(BankAPI.methods(path: "/v1/devices") == ["GET", "POST"])
        #expect(BankAPI.methods(path: "/v1/devices/acme-1/proof") == ["GET"])
        #expect(BankAPI.methods(path: "/v1/devices/acme-1/nothing") == nil)
        #expect(BankAPI.methods(path: "/nothing") == nil)
        // The table lists exactly the paths of openapi.yaml.
        let yaml = String(decoding: PackageResources.openapi_yaml, as: UTF8.self)
        let documented = yaml.split(separator: "\n").filter { $0.hasPrefix("  /") }.map { String($0.dropFirst(2).dropLast()) }
        #expect(Set(documented) == Set(BankAPI.paths.map { "/" + $0.template.joined(separator: "/") }))
    }
}
