import Foundation
import Testing
import VouchBank
import VouchEvidence

@Suite("Enrollment")
struct EnrollmentTests {
    static func parse(_ document: JSONValue) throws(BankError) -> EnrolledDevice {
        try EnrollmentDocument.parse(CanonicalJSON.encode(document), nowMs: Fixture.t0)
    }

    static func refusal(_ body: () throws -> Void) -> BankError? {
        do {
            try body()
            return nil
        } catch let e as BankError { return e } catch { return BankError("not a BankError: \(error)", status: 0, "") }
    }

    @Test("the document `vouch enroll` prints parses to the device id and key")
    func parsesDocument() throws {
        let device = TestDevice()
        let enrolled = try Self.parse(device.enrollmentDocument)
        #expect(enrolled.id == device.id)
        #expect(enrolled.key == device.key.publicJWK)
        #expect(enrolled.kid == device.key.kid)
        #expect(enrolled.enrolledAtMs == Fixture.t0)
        #expect(enrolled.revokedAtMs == nil)
        // kid is optional: without it the thumbprint is computed.
        let withoutKid = try Self.parse(["device": .string(device.id), "jwk": device.key.publicJWK.json])
        #expect(withoutKid.kid == device.key.kid)
    }

    @Test("a kid that is not the JWK's thumbprint is refused")
    func kidMismatch() {
        let device = TestDevice()
        let other = SigningKey.generate()
        guard case .object(var doc) = device.enrollmentDocument else { Issue.record("document shape"); return }
        doc["kid"] = .string(other.kid)
        let error = Self.refusal { _ = try Self.parse(.object(doc)) }
        #expect(error?.code == "E_ENROLLMENT")
        #expect(error?.status == 400)
        // The other way round: the kid of the device, the JWK of someone else.
        doc["kid"] = .string(device.key.kid)
        doc["jwk"] = other.publicJWK.json
        let swapped = Self.refusal { _ = try Self.parse(.object(doc)) }
        #expect(swapped?.code == "E_ENROLLMENT")
        #expect(swapped?.status == 400)
    }

    @Test("a JWK that is not a P-256 EC key is refused", arguments: ["P-384", "RSA", "point", "short"])
    func notP256(_ variant: String) {
        let device = TestDevice()
        let jwk = device.key.publicJWK
        let bad: JSONValue =
            switch variant {
            case "P-384": ["kty": "EC", "crv": "P-384", "x": .string(jwk.x), "y": .string(jwk.y)]
            case "RSA": ["kty": "RSA", "n": "sXch", "e": "AQAB"]
            // 32-byte coordinates that are not a point on the curve.
            case "point": ["kty": "EC", "crv": "P-256", "x": .string(jwk.x), "y": .string(Base64URL.encode([UInt8](repeating: 7, count: 32)))]
            default: ["kty": "EC", "crv": "P-256", "x": .string(Base64URL.encode([UInt8](repeating: 1, count: 16))), "y": .string(jwk.y)]
            }
        let error = Self.refusal { _ = try Self.parse(["device": .string(device.id), "jwk": bad]) }
        #expect(error?.code == "E_ENROLLMENT")
        #expect(error?.status == 400)
    }

    @Test("a document without device or jwk, or not JSON at all, is refused")
    func missingFields() {
        let device = TestDevice()
        let documents: [JSONValue] = [
            ["jwk": device.key.publicJWK.json, "kid": .string(device.key.kid)],
            ["device": .string(device.id), "kid": .string(device.key.kid)],
            ["device": "", "jwk": device.key.publicJWK.json],
            ["device": 42, "jwk": device.key.publicJWK.json],
            ["device": .string(device.id), "jwk": "not an object"],
            [],
            "just a string",
        ]
        for document in documents {
            let error = Self.refusal { _ = try Self.parse(document) }
            #expect(error?.code == "E_ENROLLMENT", "\(CanonicalJSON.string(document))")
            #expect(error?.status == 400)
        }
        let notJSON = Self.refusal { _ = try EnrollmentDocument.parse(Array("device: x".utf8), nowMs: 0) }
        #expect(notJSON?.code == "E_ENROLLMENT")
    }

    @Test("enrolling the same device with the same key twice is idempotent")
    func enrollTwice() async throws {
        try await TestBank.with { bank in
            let device = TestDevice()
            try bank.store.enroll(try Self.parse(device.enrollmentDocument))
            try bank.store.enroll(EnrolledDevice(id: device.id, key: device.key.publicJWK, enrolledAtMs: Fixture.t0 + 1_000))
            let devices = try bank.store.devices()
            #expect(devices.map(\.id) == [device.id])
            #expect(devices.first?.key == device.key.publicJWK)
            #expect(devices.first?.enrolledAtMs == Fixture.t0)  // the first enrollment stands
            #expect(try bank.store.device(kid: device.key.kid)?.id == device.id)
        }
    }

    @Test("the same id with another key is refused: E_ENROLLMENT")
    func sameIdOtherKey() async throws {
        try await TestBank.with { bank in
            let device = TestDevice()
            try bank.enroll(device)
            let rekeyed = TestDevice(id: device.id)
            let error = Self.refusal { try bank.store.enroll(rekeyed.enrollment()) }
            #expect(error?.code == "E_ENROLLMENT")
            #expect(error?.status == 409)
            #expect(try bank.store.devices().map(\.kid) == [device.key.kid])
            #expect(try bank.store.device(kid: rekeyed.key.kid) == nil)
        }
    }

    @Test("the same key for another id is refused: E_ENROLLMENT")
    func sameKeyOtherId() async throws {
        try await TestBank.with { bank in
            let device = TestDevice()
            try bank.enroll(device)
            let clone = TestDevice(id: device.id + "-clone", key: device.key)
            let error = Self.refusal { try bank.store.enroll(clone.enrollment()) }
            #expect(error?.code == "E_ENROLLMENT")
            #expect(error?.status == 409)
            #expect(try bank.store.devices().map(\.id) == [device.id])
            #expect(try bank.store.device(kid: device.key.kid)?.id == device.id)
        }
    }

    @Test("an enrollment survives reopening the SQLite file")
    func enrollmentIsDurable() async throws {
        try await TestBank.with { bank in
            let device = TestDevice()
            try bank.enroll(device)
            let reopened = try SQLiteBankStore(path: bank.path)
            #expect(try reopened.device(kid: device.key.kid) == device.enrollment())
        }
    }
}
