/// The test vectors of the evidence spec (EvidenceFormat.md, `vectors.json`): fixed keys, one record
/// of every kind, three chained batches (the second rotates the device key, the third is signed by
/// the new key), the bank's receipts and an inclusion proof. Everything is deterministic except the
/// ECDSA signatures of tokens (the one signature inside a record, the rotation proof, is fixed), so a
/// test rebuilds the vectors and compares all bytes but those, and checks that the stored signatures
/// verify. `vouch-bench vectors` prints a fresh copy.
public enum TestVectors {
    /// Scalars: SHA-256 of a fixed text (any 32 bytes below the group order will do).
    public static let deviceKey = try! SigningKey(scalar: Digest256.sha256(Array("vouch evidence v1 test vector: device key".utf8)))
    public static let rotatedKey = try! SigningKey(scalar: Digest256.sha256(Array("vouch evidence v1 test vector: rotated device key".utf8)))
    public static let bankKey = try! SigningKey(scalar: Digest256.sha256(Array("vouch evidence v1 test vector: bank key".utf8)))
    public static let device = "vector-site-1"
    /// The key rotation's proof, signed once by the rotated key and kept: an ECDSA signature is
    /// randomised, and this token sits inside a record, so a fresh one would change every hash after it.
    /// `verifyProof` checks it in the tests.
    public static let rotationProof = "eyJhbGciOiJFUzI1NiIsImtpZCI6Im0xWmxzZk5RbXNCbzV5aTY5THhoNG5YSldPZGdFRllaY2RXUi03YUgwa00iLCJ0eXAiOiJ2b3VjaC1rZXktcHJvb2YrandzIn0.eyJkZXYiOiJ2ZWN0b3Itc2l0ZS0xIiwibmV3IjoibTFabHNmTlFtc0JvNXlpNjlMeGg0blhKV09kZ0VGWVpjZFdSLTdhSDBrTSIsIm9sZCI6IkljaVRtLW5UVFo3RjRpUGhkQVc1d2xNQ2QtcHhPdzNCVWNfQlpQZ29DcjQifQ.A4m2teu4q0nSbnfTHOqOI1KuduP_BFtfI3B-I7MBSsTpA1T1EVjy2rWpCZ4DV0O4grX9F2oWvEDYVQt4hM6oUw"
    public static let bootID = "9f0c6c1e-3a1b-4d57-9b43-3c1d2e4f5a6b"

    /// The wall clock was set 30 s forward at mono 5,150,000 (the `clk` record): later stamps carry it.
    static func wall(_ mono: Int64) -> Int64 { 1_790_000_000_000 + mono - 5_000_000 + (mono >= 5_150_000 ? 30_000 : 0) }

    static func stamp(_ rseq: Int64, _ mono: Int64, tq: TimeQuality = .synchronized) -> RecordStamp {
        RecordStamp(rseq: rseq, boot: 3, monoMs: mono, wallMs: wall(mono), timeQuality: tq)
    }

    /// One record of every kind, rseq 1…10, in the spec's kind order.
    public static var records: [EvidenceRecord] {
        [
            .summary(
                ReadingSummary(
                    stamp: stamp(1, 5_000_000), channel: "press.power", intervalMs: 60_000, unit: "W", scale: -1, count: 59, errors: 1,
                    min: 118_250, max: 121_904, mean: 120_113, last: 119_870, lastError: "E_MODBUS_ETIMEDOUT")),
            .event(
                EventRecord(
                    stamp: stamp(2, 5_075_000), eventId: "press-stop@5060000", phase: .start, rule: "press-stop", ruleVersion: 1,
                    channel: "press.power", severity: "high", startMonoMs: 5_060_000, startWallMs: 1_790_000_060_000, endMonoMs: nil,
                    endWallMs: nil, durationMs: 15_000, unit: "W", scale: -1,
                    params: ["below": 5_000, "min_duration_ms": 15_000, "window_samples": 4], baseline: ["threshold": 5_000],
                    window: [
                        WindowSample(monoMs: 5_058_000, wallMs: 1_790_000_058_000, value: 119_000),
                        WindowSample(monoMs: 5_059_000, wallMs: 1_790_000_059_000, value: nil),
                        WindowSample(monoMs: 5_060_000, wallMs: 1_790_000_060_000, value: 120),
                        WindowSample(monoMs: 5_061_000, wallMs: 1_790_000_061_000, value: 0),
                    ],
                    explanation: "press.power below 500.0 W since 08:01:00Z (15 s, lowest 0.0 W) during the shift: production stopped")),
            .heartbeat(Heartbeat(stamp: stamp(3, 5_100_000), intervalMs: 300_000, uptimeMs: 3_600_000, backlog: 0)),
            .gap(
                GapRecord(
                    stamp: stamp(4, 5_110_000), reason: .sensorUnreachable, channel: "scale.weight", fromBoot: 3, fromMonoMs: 4_990_000,
                    fromWallMs: 1_789_999_990_000, toMonoMs: 5_110_000, toWallMs: 1_790_000_110_000, missing: 120,
                    detail: "scale.weight did not answer for 120 s (120 failed polls, last error E_MODBUS_ETIMEDOUT)")),
            .configChange(
                ConfigChange(
                    stamp: stamp(5, 5_120_000), configSha256: Digest256.sha256Hex(Array("config v2".utf8)),
                    previousSha256: Digest256.sha256Hex(Array("config v1".utf8)), source: "/etc/vouch/vouch.toml", who: "technician: A. Okafor",
                    summary: "configuration changed: 2 channel(s) on 1 Modbus device(s), 1 stoppage rule(s)")),
            .action(
                TechnicianAction(
                    stamp: stamp(6, 5_130_000), action: "release_open", who: "borrower: warehouse manager",
                    params: ["for_ms": 7_200_000, "channels": ["scale.weight"]], explanation: "release window opened for 2 h: sale to Koné Ltd, invoice 2291")),
            .attestation(
                Attestation(
                    stamp: stamp(7, 5_140_000), bootCount: 3, bootID: bootID, uptimeSeconds: 5_140, softwareVersion: "0.3.0",
                    binarySha256: Digest256.sha256Hex(Array("vouch binary".utf8)), configSha256: Digest256.sha256Hex(Array("config v2".utf8)),
                    keyProtection: .softwareFile, keyID: deviceKey.kid)),
            .clockStep(ClockStep(stamp: stamp(8, 5_150_000, tq: .synchronized), expectedWallMs: wall(5_150_000) - 30_000, stepMs: 30_000, qualityBefore: .unsynchronized)),
            .raw(
                RawSamples(
                    stamp: stamp(9, 5_145_000, tq: .stepped), channel: "press.current", unit: "A", scale: -2, periodMs: 1_000,
                    values: [1_250, 1_262, nil, 1_240, 1_240, 0])),
            .keyRotation(
                KeyRotation(
                    stamp: stamp(10, 5_170_000), newKey: rotatedKey.publicJWK,
                    proof: rotationProof)),
        ]
    }

    public struct Batch: Sendable {
        public var payload: BatchPayload
        public var records: [EvidenceRecord]
        public var sealed: SealedBatch
        public var receipt: JWS.Signed
        public var receiptBody: Receipt
    }

    /// Batch 1: records 1–7; batch 2: records 8–10 (ends with the key rotation; `rcpt` names receipt 1);
    /// batch 3: a summary, signed by the rotated key.
    public static var batches: [Batch] {
        let all = records
        var next: Int64 = 11
        let third: [EvidenceRecord] = [
            .summary(
                ReadingSummary(
                    stamp: stamp({ defer { next += 1 }; return next }(), 5_180_000), channel: "press.power", intervalMs: 60_000, unit: "W",
                    scale: -1, count: 60, errors: 0, min: 0, max: 0, mean: 0, last: 0, lastError: nil))
        ]
        let groups: [([EvidenceRecord], SigningKey)] = [(Array(all[0..<7]), deviceKey), (Array(all[7...]), deviceKey), (third, rotatedKey)]
        var out: [Batch] = []
        var prev = Digest256.zeroHex
        var receiptHash: String?
        var log = MerkleLog()
        for (i, (recs, key)) in groups.enumerated() {
            let bseq = Int64(i + 1)
            // Sealed 5 s after its last record, as a batch seals everything recorded so far.
            let sealedMono = (recs.last?.stamp.monoMs ?? 5_000_000) + 5_000
            let payload = BatchPayload(
                device: device, bseq: bseq, prev: prev, bootId: bootID, bootCount: 3, sealedWallMs: wall(sealedMono),
                sealedMonoMs: sealedMono, timeQuality: .synchronized, records: recs, receipt: receiptHash)
            let sealed = SealedBatch.seal(payload, records: recs, key: key)
            let index = log.append(leaf: Hex.decode(sealed.signingInputHash) ?? [])
            let receipt = Receipt(
                device: device, bseq: bseq, batch: sealed.signingInputHash, deviceLogSize: bseq, logIndex: index, logSize: log.size,
                logRoot: Hex.encode(log.root), acceptedWallMs: wall(sealedMono) + 1_000)
            let signedReceipt = receipt.sign(with: bankKey)
            out.append(Batch(payload: payload, records: recs, sealed: sealed, receipt: signedReceipt, receiptBody: receipt))
            prev = sealed.signingInputHash
            receiptHash = signedReceipt.signingInputHash
        }
        return out
    }

    /// The whole vectors document.
    public static func document() -> JSONValue {
        func keyDoc(_ k: SigningKey) -> JSONValue {
            ["d": .string(k.jwkD), "jwk": k.publicJWK.json, "kid": .string(k.kid)]
        }
        func text(_ bytes: [UInt8]) -> JSONValue { .string(String(decoding: bytes, as: UTF8.self)) }
        let built = batches
        let batchDocs: [JSONValue] = built.map { b in
            let parts = b.sealed.token.split(separator: ".")
            let signingInput = parts[0] + "." + parts[1]
            return [
                "bseq": .int(b.payload.bseq),
                "protected": text(Base64URL.decode(parts[0]) ?? []),
                "manifest": text(CanonicalJSON.encode(b.payload.json)),
                "signing_input": .string(String(signingInput)),
                "signing_input_sha256": .string(b.sealed.signingInputHash),
                "merkle_root": .string(b.payload.root),
                "token": .string(b.sealed.token),
                "file": .string(b.sealed.fileText),
                "receipt": [
                    "payload": text(CanonicalJSON.encode(b.receiptBody.json)),
                    "token": .string(b.receipt.token),
                    "signing_input_sha256": .string(b.receipt.signingInputHash),
                ],
            ]
        }
        let recordDocs: [JSONValue] = records.map { r in
            ["kind": .string(r.kind), "line": text(r.canonicalBytes), "leaf_hash": .string(Hex.encode(Merkle.leafHash(r.canonicalBytes)))]
        }
        let first = built[0]
        let proof = InclusionProof(
            batch: first.sealed.token, index: 3, record: first.sealed.records[3], path: Merkle.auditPath(index: 3, leaves: first.sealed.records),
            deviceKey: deviceKey.publicJWK, receipt: first.receipt.token)
        return [
            "description": "Vouch evidence format v1 test vectors. Signatures are ECDSA (randomised): check that they verify, not that they match.",
            "v": 1,
            "device": .string(device),
            "keys": ["device": keyDoc(deviceKey), "rotated_device": keyDoc(rotatedKey), "bank": keyDoc(bankKey)],
            "records": .array(recordDocs),
            "batches": .array(batchDocs),
            "stream": .string(built.map(\.sealed.fileText).joined()),
            "inclusion_proof": proof.json,
            "empty_tree_root": .string(Hex.encode(Merkle.root(leaves: []))),
        ]
    }
}
