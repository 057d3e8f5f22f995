/// The record kinds beside readings and events. Each is a positional array after the common head
/// `[kind, rseq, boot, mono, wall, tq]`; the spec (EvidenceFormat.md) lists every field.

/// "I am alive, and this is how often you will hear from me." The bank raises tail silence when no
/// batch arrives for twice `intervalMs` after the last one.
public struct Heartbeat: Sendable, Equatable {
    public var stamp: RecordStamp
    /// The device promises a heartbeat at least this often.
    public var intervalMs: Int64
    /// Milliseconds since the agent started.
    public var uptimeMs: Int64
    /// Sealed batches the bank has not acknowledged yet, when the heartbeat was made.
    public var backlog: Int64

    public init(stamp: RecordStamp, intervalMs: Int64, uptimeMs: Int64, backlog: Int64) {
        self.stamp = stamp
        self.intervalMs = intervalMs
        self.uptimeMs = uptimeMs
        self.backlog = backlog
    }
}

/// Evidence that should exist and does not, with why and how much.
public struct GapRecord: Sendable, Equatable {
    public enum Reason: String, Sendable, Equatable, CaseIterable {
        /// The agent was not running (stopped, crashed, power loss).
        case agentDown = "agent_down"
        /// A sensor did not answer: its readings are missing.
        case sensorUnreachable = "sensor_unreachable"
        /// The outbox reached its disk budget and dropped or coarsened data.
        case diskBudget = "disk_budget"
        /// The outbox database was unusable at start (corrupt) and was moved aside: what it held and the
        /// bank had not acknowledged is lost.
        case storeCorrupt = "store_corrupt"
    }

    public var stamp: RecordStamp
    public var reason: Reason
    /// The channel concerned; nil when all of them are (agent down).
    public var channel: String?
    /// Start of the gap: boot count and clocks of that boot (monotonic times of different boots are
    /// not comparable; `fromBoot` says which boot `fromMonoMs` belongs to).
    public var fromBoot: Int64
    public var fromMonoMs: Int64
    public var fromWallMs: Int64
    /// End of the gap, in this record's boot.
    public var toMonoMs: Int64
    public var toWallMs: Int64
    /// Readings (or records, for the disk budget) that are missing because of it.
    public var missing: Int64
    /// One line for a person: what happened, as far as the device knows.
    public var detail: String

    public init(
        stamp: RecordStamp, reason: Reason, channel: String?, fromBoot: Int64, fromMonoMs: Int64, fromWallMs: Int64,
        toMonoMs: Int64, toWallMs: Int64, missing: Int64, detail: String
    ) {
        self.stamp = stamp
        self.reason = reason
        self.channel = channel
        self.fromBoot = fromBoot
        self.fromMonoMs = fromMonoMs
        self.fromWallMs = fromWallMs
        self.toMonoMs = toMonoMs
        self.toWallMs = toWallMs
        self.missing = missing
        self.detail = detail
    }
}

/// The agent started with a configuration it had not run before.
public struct ConfigChange: Sendable, Equatable {
    public var stamp: RecordStamp
    /// SHA-256 (hex) of the configuration file's bytes now in force.
    public var configSha256: String
    /// The hash in force before, nil on the first start.
    public var previousSha256: String?
    /// Where it was read from.
    public var source: String
    /// Who changed it, where known (a technician's name given to the CLI, a Unix user).
    public var who: String?
    public var summary: String

    public init(stamp: RecordStamp, configSha256: String, previousSha256: String?, source: String, who: String?, summary: String) {
        self.stamp = stamp
        self.configSha256 = configSha256
        self.previousSha256 = previousSha256
        self.source = source
        self.who = who
        self.summary = summary
    }
}

/// Something a person did on site that the bank should know of (opened a release window, re-wired a
/// sensor, enrolled the device…).
public struct TechnicianAction: Sendable, Equatable {
    public var stamp: RecordStamp
    /// Stable name of the action, e.g. `release_open`.
    public var action: String
    public var who: String?
    public var params: [String: JSONValue]
    public var explanation: String

    public init(stamp: RecordStamp, action: String, who: String?, params: [String: JSONValue], explanation: String) {
        self.stamp = stamp
        self.action = action
        self.who = who
        self.params = params
        self.explanation = explanation
    }
}

/// What is running, made at every agent start. Claim names follow EAT (RFC 9711) where EAT has one:
/// `bootcount`, `bootseed`, `uptime`, `swname`, `swversion`; Vouch's own claims are prefixed `vouch.`.
public struct Attestation: Sendable, Equatable {
    /// How the device's signing key is protected.
    public enum KeyProtection: String, Sendable, Equatable, CaseIterable {
        /// A PEM file readable only by the agent's user (mode 0600).
        case softwareFile = "software-file"
        /// A TPM 2.0 or secure element holds it; the agent cannot export it.
        case hardware = "hardware"
    }

    public var stamp: RecordStamp
    public var claims: [String: JSONValue]

    public init(stamp: RecordStamp, claims: [String: JSONValue]) {
        self.stamp = stamp
        self.claims = claims
    }

    /// Builds the claims set the agent makes at start.
    public init(
        stamp: RecordStamp, bootCount: Int64, bootID: String, uptimeSeconds: Int64, softwareVersion: String,
        binarySha256: String, configSha256: String, keyProtection: KeyProtection, keyID: String
    ) {
        self.init(
            stamp: stamp,
            claims: [
                "bootcount": .int(bootCount),
                "bootseed": .string(Attestation.bootSeed(bootID)),
                "uptime": .int(uptimeSeconds),
                "swname": "vouch",
                "swversion": [.string(softwareVersion)],
                "vouch.bin_sha256": .string(binarySha256),
                "vouch.cfg_sha256": .string(configSha256),
                "vouch.keyprot": .string(keyProtection.rawValue),
                "vouch.kid": .string(keyID),
            ])
    }

    /// EAT's `bootseed` is a byte string (base64url in JSON); the kernel's boot id is a UUID, so the
    /// seed is its 16 bytes. Anything else is carried as its UTF-8 bytes.
    static func bootSeed(_ bootID: String) -> String {
        let hex = bootID.replacingOccurrences(of: "-", with: "").lowercased()
        if let bytes = Hex.decode(hex), bytes.count == 16 { return Base64URL.encode(bytes) }
        return Base64URL.encode(Array(bootID.utf8))
    }
}

/// The device moves to a new signing key. The record travels in a batch signed by the *old* key (so
/// the old key vouches for the new one) and carries a proof signed by the *new* key (so the device
/// holds it). Batches after the one holding this record are signed by the new key.
public struct KeyRotation: Sendable, Equatable {
    public static let proofType = "vouch-key-proof+jws"

    public var stamp: RecordStamp
    public var newKey: PublicJWK
    /// JWS compact, ES256, signed by the new key, payload `{"dev":…,"new":<new kid>,"old":<old kid>}`.
    public var proof: String

    public init(stamp: RecordStamp, newKey: PublicJWK, proof: String) {
        self.stamp = stamp
        self.newKey = newKey
        self.proof = proof
    }

    /// Makes the rotation record's proof: the new key signs the device id and both key ids.
    public static func proof(device: String, oldKid: String, newKey: SigningKey) -> String {
        let payload: JSONValue = ["dev": .string(device), "old": .string(oldKid), "new": .string(newKey.kid)]
        return JWS.sign(payload: CanonicalJSON.encode(payload), key: newKey, typ: proofType).token
    }

    /// Checks the proof: signed by `newKey`, naming this device and the key that signed the batch.
    public func verifyProof(device: String, oldKid: String) throws(EvidenceError) {
        let verified: JWS.Verified
        do { verified = try JWS.verify(proof, key: newKey, typ: Self.proofType) } catch {
            throw EvidenceError(.keyRotation, "the key rotation's proof is not signed by the new key \(newKey.thumbprint): \(error.message)")
        }
        guard let o = try CanonicalJSON.decode(verified.payload).objectValue,
            o["dev"]?.stringValue == device, o["old"]?.stringValue == oldKid, o["new"]?.stringValue == newKey.thumbprint
        else {
            throw EvidenceError(.keyRotation, "the key rotation's proof must name device \(device), old key \(oldKid) and new key \(newKey.thumbprint)")
        }
    }
}

/// The wall clock jumped: `wallMs` (in the stamp) is what it reads now, `expectedWallMs` what it would
/// read had it run on from the previous reading at the monotonic clock's pace.
public struct ClockStep: Sendable, Equatable {
    public var stamp: RecordStamp
    public var expectedWallMs: Int64
    /// `wall − expected`: positive when the clock was set forward.
    public var stepMs: Int64
    /// Wall-clock quality before the step (the stamp carries the quality after it).
    public var qualityBefore: TimeQuality

    public init(stamp: RecordStamp, expectedWallMs: Int64, stepMs: Int64, qualityBefore: TimeQuality) {
        self.stamp = stamp
        self.expectedWallMs = expectedWallMs
        self.stepMs = stepMs
        self.qualityBefore = qualityBefore
    }
}

/// Every sample of one channel at a fixed period (raw-sample mode). Values are delta-encoded: the
/// first is absolute, each later one the difference to the previous *present* value; null is a
/// failed poll and does not move the running value.
public struct RawSamples: Sendable, Equatable {
    public var stamp: RecordStamp  // mono/wall of the first sample
    public var channel: String
    public var unit: String
    public var scale: Int64
    public var periodMs: Int64
    public var values: [Int64?]

    public init(stamp: RecordStamp, channel: String, unit: String, scale: Int64, periodMs: Int64, values: [Int64?]) {
        self.stamp = stamp
        self.channel = channel
        self.unit = unit
        self.scale = scale
        self.periodMs = periodMs
        self.values = values
    }

    /// The delta encoding of `values`. Deltas are taken in wrapping 64-bit arithmetic, so decoding
    /// (wrapping addition) restores every value exactly, even at the extremes of the range.
    var encodedValues: [JSONValue] {
        var running: Int64?
        return values.map { value in
            guard let value else { return .null }
            defer { running = value }
            guard let base = running else { return .int(value) }
            return .int(value &- base)
        }
    }

    static func decodeValues(_ items: [JSONValue]) -> [Int64?]? {
        var running: Int64?
        var out: [Int64?] = []
        out.reserveCapacity(items.count)
        for item in items {
            if item.isNull {
                out.append(nil)
                continue
            }
            guard let v = item.intValue else { return nil }
            let value = running.map { $0 &+ v } ?? v
            running = value
            out.append(value)
        }
        return out
    }
}
