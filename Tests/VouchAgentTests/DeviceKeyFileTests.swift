import Foundation
import Testing
import VouchEvidence
@testable import VouchAgent

struct DeviceKeyFileTests {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("vouch-key-\(UUID().uuidString)")
    var path: String { directory.appendingPathComponent("keys/device.key").path }

    func mode(_ path: String) throws -> Int {
        try #require(FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int)
    }

    @Test func newKeyIsWrittenWithMode0600AndLoadsBack() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let key = try DeviceKeyFile.create(path: path, force: false)
        #expect(try mode(path) == 0o600)
        #expect(try DeviceKeyFile.load(path: path).kid == key.kid)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: (path as NSString).deletingLastPathComponent)
        #expect(leftovers == ["device.key"], "no temporary file may be left beside the key")
    }

    @Test func existingKeyIsNotReplacedWithoutForce() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let first = try DeviceKeyFile.create(path: path, force: false)
        let error = #expect(throws: AgentError.self) { _ = try DeviceKeyFile.create(path: path, force: false) }
        #expect(error?.message.contains("--force") == true)
        #expect(try DeviceKeyFile.load(path: path).kid == first.kid, "the refused call must leave the old key in place")
        let second = try DeviceKeyFile.create(path: path, force: true)
        #expect(second.kid != first.kid)
        #expect(try DeviceKeyFile.load(path: path).kid == second.kid)
    }

    @Test func keyReadableByOthersIsRefusedWithTheFix() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        _ = try DeviceKeyFile.create(path: path, force: false)
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: path)
        let error = #expect(throws: AgentError.self) { _ = try DeviceKeyFile.load(path: path) }
        #expect(error?.message.contains("chmod 600") == true)
    }

    @Test func missingKeySaysHowToCreateOne() {
        let error = #expect(throws: AgentError.self) { _ = try DeviceKeyFile.load(path: path) }
        #expect(error?.message.contains("vouch enroll") == true)
    }

    @Test func enrollmentDocumentCarriesTheKeyTheBankWillCheck() throws {
        let key = SigningKey.generate()
        let doc = DeviceKeyFile.enrollmentDocument(deviceID: "site-1", key: key, nowMs: 5)
        let o = try #require(doc.objectValue)
        #expect(o["device"] == "site-1")
        #expect(o["kid"]?.stringValue == key.kid)
        let jwk = try PublicJWK(json: try #require(o["jwk"]))
        #expect(jwk.thumbprint == key.kid)
    }
}
