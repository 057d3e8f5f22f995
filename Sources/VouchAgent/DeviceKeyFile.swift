import Foundation
import VouchEvidence

/// The device's signing key on disk: PEM, mode 0600, never overwritten without being asked.
public enum DeviceKeyFile {
    public static func load(path: String) throws(AgentError) -> SigningKey {
        guard FileManager.default.fileExists(atPath: path) else {
            throw AgentError(.key, "no device key at \(path): create one with `vouch enroll`")
        }
        if let mode = (try? FileManager.default.attributesOfItem(atPath: path))?[.posixPermissions] as? Int, mode & 0o077 != 0 {
            throw AgentError(.key, "device key \(path) is readable by others (mode \(String(mode, radix: 8))): run `chmod 600 \(path)`")
        }
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw AgentError(.key, "cannot read the device key \(path) (check its owner and permissions)")
        }
        do { return try SigningKey(pem: text) } catch { throw AgentError(.key, "device key \(path): \(error.message)") }
    }

    /// Creates a new key file with mode 0600. Refuses to replace an existing key unless `force`.
    public static func create(path: String, force: Bool) throws(AgentError) -> SigningKey {
        let fm = FileManager.default
        if fm.fileExists(atPath: path) && !force {
            throw AgentError(.key, "a device key already exists at \(path); replacing it changes the device's identity at the bank. Use --force only if you mean that")
        }
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty {
            do { try fm.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700]) } catch {
                throw AgentError(.key, "cannot create \(directory): \(error.localizedDescription)")
            }
        }
        let key = SigningKey.generate()
        // Write to a temporary file with 0600 first, then rename, so a key never exists with a wider mode.
        let temporary = path + ".tmp-\(getpid())"
        guard fm.createFile(atPath: temporary, contents: Data(key.pem.utf8), attributes: [.posixPermissions: 0o600]) else {
            throw AgentError(.key, "cannot write \(temporary)")
        }
        // `sudo vouch enroll` in a data directory that belongs to the agent's user (the package's vouch): the
        // key must be that user's too, or the agent could not read it and would refuse to start.
        var directoryStatus = stat()
        if geteuid() == 0, stat(directory.isEmpty ? "." : directory, &directoryStatus) == 0, directoryStatus.st_uid != 0,
            chown(temporary, directoryStatus.st_uid, directoryStatus.st_gid) != 0
        {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw AgentError(.key, "cannot give the new key to the owner of \(directory) (uid \(directoryStatus.st_uid)): \(reason)")
        }
        if rename(temporary, path) != 0 {
            unlink(temporary)
            throw AgentError(.key, "cannot move the new key into place at \(path): \(String(cString: strerror(errno)))")
        }
        return key
    }

    /// Where a prepared rotation's new key waits until the agent has sealed the rotation record.
    public static func pendingRotationPath(_ keyPath: String) -> String { keyPath + ".next" }

    /// Creates the new key of a rotation beside the current one. The agent records the rotation at
    /// its next start, seals it with the current key, then makes the new key current.
    public static func prepareRotation(keyPath: String, force: Bool) throws(AgentError) -> (current: SigningKey, next: SigningKey) {
        let current = try load(path: keyPath)
        let nextPath = pendingRotationPath(keyPath)
        if FileManager.default.fileExists(atPath: nextPath) && !force {
            throw AgentError(.key, "a rotation is already prepared (\(nextPath)); restart the agent to carry it out, or use --force to prepare another key instead")
        }
        return (current, try create(path: nextPath, force: true))
    }

    /// Makes the prepared key the device key (atomic rename; the old key is gone afterwards).
    public static func completeRotation(keyPath: String) throws(AgentError) {
        let nextPath = pendingRotationPath(keyPath)
        if rename(nextPath, keyPath) != 0 {
            throw AgentError(.key, "cannot move the rotated key \(nextPath) to \(keyPath): \(String(cString: strerror(errno)))")
        }
    }

    /// What the bank needs to enroll this device: its id and public key.
    public static func enrollmentDocument(deviceID: String, key: SigningKey, nowMs: Int64) -> JSONValue {
        ["device": .string(deviceID), "kid": .string(key.kid), "jwk": key.publicJWK.json, "alg": "ES256", "created_ms": .int(nowMs)]
    }
}
