import Foundation
import VouchEvidence

/// The bank's receipt-signing key on disk (PEM, mode 0600), created on first use.
public enum BankKeyFile {
    public static func loadOrCreate(path: String) throws(BankError) -> (key: SigningKey, created: Bool) {
        if FileManager.default.fileExists(atPath: path) {
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                throw BankError("E_BANK_KEY", status: 500, "cannot read the bank key \(path)")
            }
            do { return (try SigningKey(pem: text), false) } catch {
                throw BankError("E_BANK_KEY", status: 500, "bank key \(path): \(error.message)")
            }
        }
        let key = SigningKey.generate()
        let created = FileManager.default.createFile(atPath: path, contents: Data(key.pem.utf8), attributes: [.posixPermissions: 0o600])
        guard created else { throw BankError("E_BANK_KEY", status: 500, "cannot create the bank key \(path)") }
        return (key, true)
    }
}

/// Reads an enrollment document written by `vouch enroll`.
public enum EnrollmentDocument {
    public static func parse(_ bytes: [UInt8], nowMs: Int64) throws(BankError) -> EnrolledDevice {
        let json: JSONValue
        do { json = try CanonicalJSON.decode(bytes) } catch {
            throw BankError(BankError.enrollment, status: 400, "enrollment document is not valid JSON: \(error.message)")
        }
        guard let o = json.objectValue, let id = o["device"]?.stringValue, !id.isEmpty, let jwkJSON = o["jwk"] else {
            throw BankError(BankError.enrollment, status: 400, "enrollment document must have \"device\" and \"jwk\"")
        }
        let key: PublicJWK
        do { key = try PublicJWK(json: jwkJSON) } catch {
            throw BankError(BankError.enrollment, status: 400, "enrollment jwk: \(error.message)")
        }
        if let kid = o["kid"]?.stringValue, kid != key.thumbprint {
            throw BankError(BankError.enrollment, status: 400, "enrollment kid \(kid) is not the thumbprint of its jwk (\(key.thumbprint)): the document was altered")
        }
        return EnrolledDevice(id: id, key: key, enrolledAtMs: nowMs)
    }
}
