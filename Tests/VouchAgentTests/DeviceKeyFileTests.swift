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

    /// `sudo vouch enroll` on a gateway installed from the package: /var/lib/vouch belongs to user vouch, and
    /// a key owned by root would stop the agent from starting. Needs root to create the files as another user.
    @Test(.enabled(if: geteuid() == 0, "needs root"))
    func aKeyCreatedByRootInAnotherUsersDirectoryBelongsToThatUser() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let keys = (path as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(atPath: keys, withIntermediateDirectories: true)
        #expect(chown(keys, 65534, 65534) == 0)
        _ = try DeviceKeyFile.create(path: path, force: false)
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        #expect((attributes[.ownerAccountID] as? NSNumber)?.intValue == 65534)
        #expect((attributes[.groupOwnerAccountID] as? NSNumber)?.intValue == 65534)
        #expect(try mode(path) == 0o600)

        // In root's own directory the key stays root's.
        #expect(chown(keys, 0, 0) == 0)
        _ = try DeviceKeyFile.create(path: path, force: true)
        #expect((try FileManager.default.attributesOfItem(atPath: path)[.ownerAccountID] as? NSNumber)?.intValue == 0)
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

    // MARK: key rotation

    @Test func prepareRotationCreatesTheNextKeyBesideTheCurrentOne() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let current = try DeviceKeyFile.create(path: path, force: false)
        let nextPath = DeviceKeyFile.pendingRotationPath(path)
        #expect(nextPath == path + ".next")
        let (loaded, next) = try DeviceKeyFile.prepareRotation(keyPath: path, force: false)
        #expect(loaded.kid == current.kid)
        #expect(next.kid != current.kid)
        #expect(try mode(nextPath) == 0o600)
        #expect(try DeviceKeyFile.load(path: nextPath).kid == next.kid)
        #expect(try DeviceKeyFile.load(path: path).kid == current.kid, "preparing must not touch the current key")
        let files = try FileManager.default.contentsOfDirectory(atPath: (path as NSString).deletingLastPathComponent).sorted()
        #expect(files == ["device.key", "device.key.next"])
    }

    @Test func aSecondPreparationNeedsForce() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        _ = try DeviceKeyFile.create(path: path, force: false)
        let (_, first) = try DeviceKeyFile.prepareRotation(keyPath: path, force: false)
        let error = #expect(throws: AgentError.self) { _ = try DeviceKeyFile.prepareRotation(keyPath: path, force: false) }
        #expect(error?.message.contains("--force") == true)
        #expect(try DeviceKeyFile.load(path: DeviceKeyFile.pendingRotationPath(path)).kid == first.kid, "the refused call keeps the prepared key")
        let (_, second) = try DeviceKeyFile.prepareRotation(keyPath: path, force: true)
        #expect(second.kid != first.kid)
        #expect(try DeviceKeyFile.load(path: DeviceKeyFile.pendingRotationPath(path)).kid == second.kid)
    }

    @Test func completeRotationMakesTheNextKeyCurrent() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let current = try DeviceKeyFile.create(path: path, force: false)
        let (_, next) = try DeviceKeyFile.prepareRotation(keyPath: path, force: false)
        try DeviceKeyFile.completeRotation(keyPath: path)
        #expect(try DeviceKeyFile.load(path: path).kid == next.kid)
        #expect(try DeviceKeyFile.load(path: path).kid != current.kid)
        #expect(!FileManager.default.fileExists(atPath: DeviceKeyFile.pendingRotationPath(path)))
        #expect(try mode(path) == 0o600)
        // Nothing left to complete.
        let error = #expect(throws: AgentError.self) { try DeviceKeyFile.completeRotation(keyPath: path) }
        #expect(error?.code == .key)
    }

    @Test func rotationWithoutAKeySaysHowToCreateOne() {
        let error = #expect(throws: AgentError.self) { _ = try DeviceKeyFile.prepareRotation(keyPath: path, force: false) }
        #expect(error?.message.contains("vouch enroll") == true)
        #expect(!FileManager.default.fileExists(atPath: DeviceKeyFile.pendingRotationPath(path)))
    }
}
