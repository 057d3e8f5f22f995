import Foundation
import Testing
import VouchEvidence

@Suite struct KeyRotationTests {
    static let device = "acme-press-1"
    static let oldKey = TestKeys.device
    static let newKey = SigningKey.generate()

    static func rotation(proof: String, newKey: PublicJWK = newKey.publicJWK) -> KeyRotation {
        KeyRotation(stamp: RecordStamp(rseq: 40, boot: 5, monoMs: 1_000, wallMs: 1_700_010_000_000, timeQuality: .synchronized), newKey: newKey, proof: proof)
    }

    @Test func proofByTheNewKeyVerifies() throws {
        let proof = KeyRotation.proof(device: Self.device, oldKid: Self.oldKey.kid, newKey: Self.newKey)
        try Self.rotation(proof: proof).verifyProof(device: Self.device, oldKid: Self.oldKey.kid)
    }

    @Test func proofIsAJWSOfTheDeviceAndBothKids() throws {
        let proof = KeyRotation.proof(device: Self.device, oldKid: Self.oldKey.kid, newKey: Self.newKey)
        let parts = proof.split(separator: ".", omittingEmptySubsequences: false)
        try #require(parts.count == 3)
        #expect(
            String(decoding: refBase64URLDecode(parts[0]), as: UTF8.self)
                == #"{"alg":"ES256","kid":"\#(Self.newKey.kid)","typ":"vouch-key-proof+jws"}"#)
        #expect(
            String(decoding: refBase64URLDecode(parts[1]), as: UTF8.self)
                == #"{"dev":"acme-press-1","new":"\#(Self.newKey.kid)","old":"\#(Self.oldKey.kid)"}"#)
        #expect(KeyRotation.proofType == "vouch-key-proof+jws")
        // It verifies as an ordinary JWS with the new key.
        _ = try JWS.verify(proof, key: Self.newKey.publicJWK, typ: KeyRotation.proofType)
    }

    @Test func theRotationRecordRoundTripsWithItsProof() throws {
        let record = EvidenceRecord.keyRotation(Self.rotation(proof: KeyRotation.proof(device: Self.device, oldKid: Self.oldKey.kid, newKey: Self.newKey)))
        let back = try EvidenceRecord(json: CanonicalJSON.decode(record.canonicalBytes))
        #expect(back == record)
        guard case .keyRotation(let k) = back else {
            Issue.record("not a key rotation")
            return
        }
        #expect(k.newKey.thumbprint == Self.newKey.kid)
        try k.verifyProof(device: Self.device, oldKid: Self.oldKey.kid)
    }

    func rotationError(_ r: KeyRotation, device: String = KeyRotationTests.device, oldKid: String = KeyRotationTests.oldKey.kid) -> EvidenceError? {
        evidenceError { try r.verifyProof(device: device, oldKid: oldKid) }
    }

    @Test func proofForAnotherDeviceIsRefused() {
        let proof = KeyRotation.proof(device: "acme-press-2", oldKid: Self.oldKey.kid, newKey: Self.newKey)
        let error = rotationError(Self.rotation(proof: proof))
        #expect(error?.code == .keyRotation)
        #expect(error?.message.contains("acme-press-1") == true)
        // And the genuine proof checked against another device.
        let genuine = KeyRotation.proof(device: Self.device, oldKid: Self.oldKey.kid, newKey: Self.newKey)
        #expect(rotationError(Self.rotation(proof: genuine), device: "acme-press-2")?.code == .keyRotation)
    }

    @Test func proofNamingAnotherOldKeyIsRefused() {
        let proof = KeyRotation.proof(device: Self.device, oldKid: TestKeys.other.kid, newKey: Self.newKey)
        #expect(rotationError(Self.rotation(proof: proof))?.code == .keyRotation)
        let genuine = KeyRotation.proof(device: Self.device, oldKid: Self.oldKey.kid, newKey: Self.newKey)
        #expect(rotationError(Self.rotation(proof: genuine), oldKid: TestKeys.other.kid)?.code == .keyRotation)
    }

    @Test func proofSignedByAnotherKeyIsRefused() {
        // The record names the new key, but the proof was made by another (which the device may not hold).
        let proof = KeyRotation.proof(device: Self.device, oldKid: Self.oldKey.kid, newKey: TestKeys.other)
        let error = rotationError(Self.rotation(proof: proof))
        #expect(error?.code == .keyRotation)
        #expect(error?.message.contains(Self.newKey.kid) == true)
        // Signed by the old key itself: the old key cannot vouch for possession of the new one.
        let byOld = KeyRotation.proof(device: Self.device, oldKid: Self.oldKey.kid, newKey: Self.oldKey)
        #expect(rotationError(Self.rotation(proof: byOld))?.code == .keyRotation)
    }

    @Test func proofWithTheNewKeysKidButAnotherKeysSignatureIsRefused() {
        let genuine = KeyRotation.proof(device: Self.device, oldKid: Self.oldKey.kid, newKey: Self.newKey).split(separator: ".").map(String.init)
        let forged = JWS.sign(payload: refBase64URLDecode(genuine[1]), key: TestKeys.other, typ: KeyRotation.proofType).token.split(separator: ".").map(String.init)
        let proof = genuine[0] + "." + genuine[1] + "." + forged[2]
        #expect(rotationError(Self.rotation(proof: proof))?.code == .keyRotation)
    }

    @Test func proofOfAnotherTypeOrNamingAnotherNewKeyIsRefused() {
        let payload: JSONValue = ["dev": .string(Self.device), "old": .string(Self.oldKey.kid), "new": .string(Self.newKey.kid)]
        let asBatch = JWS.sign(payload: CanonicalJSON.encode(payload), key: Self.newKey, typ: BatchPayload.jwsType).token
        #expect(rotationError(Self.rotation(proof: asBatch))?.code == .keyRotation)
        let otherNew: JSONValue = ["dev": .string(Self.device), "old": .string(Self.oldKey.kid), "new": .string(TestKeys.other.kid)]
        let naming = JWS.sign(payload: CanonicalJSON.encode(otherNew), key: Self.newKey, typ: KeyRotation.proofType).token
        #expect(rotationError(Self.rotation(proof: naming))?.code == .keyRotation)
        let missing: JSONValue = ["dev": .string(Self.device), "new": .string(Self.newKey.kid)]
        let incomplete = JWS.sign(payload: CanonicalJSON.encode(missing), key: Self.newKey, typ: KeyRotation.proofType).token
        #expect(rotationError(Self.rotation(proof: incomplete))?.code == .keyRotation)
        #expect(rotationError(Self.rotation(proof: "not a jws"))?.code == .keyRotation)
    }
}

@Suite struct AttestationTests {
    static func claims(bootID: String = Fixtures.bootID) -> [String: JSONValue] {
        Attestation(
            stamp: RecordStamp(rseq: 1, boot: 4, monoMs: 12_345, wallMs: 1, timeQuality: .synchronized), bootCount: 4, bootID: bootID,
            uptimeSeconds: 12, softwareVersion: "1.2.3", binarySha256: Fixtures.hashA, configSha256: Fixtures.hashB, keyProtection: .hardware,
            keyID: "kid-9"
        ).claims
    }

    @Test func claimsUseTheEATNamesAndVouchPrefixedOnes() {
        let c = Self.claims()
        #expect(Set(c.keys) == ["bootcount", "bootseed", "uptime", "swname", "swversion", "vouch.bin_sha256", "vouch.cfg_sha256", "vouch.keyprot", "vouch.kid"])
        #expect(c["bootcount"] == 4)
        #expect(c["uptime"] == 12)
        #expect(c["swname"] == "vouch")
        #expect(c["swversion"] == .array(["1.2.3"]))
        #expect(c["vouch.bin_sha256"] == .string(Fixtures.hashA))
        #expect(c["vouch.cfg_sha256"] == .string(Fixtures.hashB))
        #expect(c["vouch.keyprot"] == "hardware")
        #expect(c["vouch.kid"] == "kid-9")
    }

    /// The 16 bytes of a UUID, parsed here by Foundation rather than by the code under test.
    static func uuidBytes(_ text: String) -> [UInt8] {
        let u = UUID(uuidString: text)!.uuid
        return [u.0, u.1, u.2, u.3, u.4, u.5, u.6, u.7, u.8, u.9, u.10, u.11, u.12, u.13, u.14, u.15]
    }

    @Test(arguments: [Fixtures.bootID, "00000000-0000-0000-0000-000000000000", "FFFFFFFF-FFFF-4FFF-BFFF-FFFFFFFFFFFF", "0b8f6f4e-1a2b-4c3d-8e9f-a0b1c2d3e4f5"])
    func bootseedIsBase64URLOfTheUUIDsSixteenBytes(_ bootID: String) throws {
        let seed = try #require(Self.claims(bootID: bootID)["bootseed"]?.stringValue)
        #expect(seed == refBase64URL(Self.uuidBytes(bootID)))
        #expect(refBase64URLDecode(seed).count == 16)
        #expect(seed.count == 22)
        #expect(!seed.contains("="))
    }

    @Test func bootseedOfTheFixtureIsPinned() {
        #expect(Self.claims()["bootseed"] == .string(Fixtures.bootSeed))
    }

    @Test(arguments: ["unknown", "not-a-uuid", "6f1c2a9e-3b7d-4e21-9c0a-5d8e7f6a1b", ""])
    func aBootIDThatIsNotAUUIDIsCarriedAsItsBytes(_ bootID: String) {
        #expect(Self.claims(bootID: bootID)["bootseed"] == .string(refBase64URL(Array(bootID.utf8))))
    }
}

/// `Digest256.sha256Hex(fileAt:)` hashes the agent's own binary for the attestation record.
/// Pins the bug where `FileHandle.read(upToCount:)`'s nil at end of file was taken for a read error,
/// so every file hashed to nil and the agent attested a binary hash of 64 zeros.
@Suite struct FileDigestTests {
    func withFile<T>(_ bytes: [UInt8], _ body: (String) throws -> T) throws -> T {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("vouch-digest-\(UUID().uuidString)").path
        #expect(FileManager.default.createFile(atPath: path, contents: Data(bytes)))
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(FileManager.default.contents(atPath: path).map(Array.init) == bytes)
        return try body(path)
    }

    @Test(arguments: [0, 1, 55, 56, 64, 1000])
    func smallFilesHashLikeTheirBytes(_ size: Int) throws {
        let bytes = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        let hex = try withFile(bytes) { Digest256.sha256Hex(fileAt: $0) }
        #expect(Digest256.sha256Hex(bytes) == RefSHA256.hex(bytes))
        #expect(hex == RefSHA256.hex(bytes))
    }

    @Test func aFileLongerThanOneChunkHashesWhole() throws {
        // 1 MiB chunks: cross the boundary, with a tail that is not a multiple of the SHA-256 block.
        let bytes = (0..<((1 << 20) + 4_099)).map { UInt8(truncatingIfNeeded: ($0 >> 3) ^ $0) }
        let hex = try withFile(bytes) { Digest256.sha256Hex(fileAt: $0) }
        #expect(hex == RefSHA256.hex(bytes))
    }

    @Test func emptyFileIsTheHashOfNothing() throws {
        let hex = try withFile([]) { Digest256.sha256Hex(fileAt: $0) }
        #expect(hex == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    }

    @Test func aMissingFileIsNil() {
        #expect(Digest256.sha256Hex(fileAt: "/nonexistent/vouch-\(UUID().uuidString)") == nil)
    }
}
