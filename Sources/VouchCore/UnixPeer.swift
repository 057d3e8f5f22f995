import CVouchSys

#if canImport(Glibc)
import Glibc
#endif

/// Who is at the other end of a connected Unix socket, as the kernel recorded it at connect
/// (`SO_PEERCRED`): the peer cannot claim to be someone else. Records of what a person did on site
/// carry it beside the name they typed.
public struct UnixPeer: Sendable, Equatable {
    public var uid: UInt32
    public var pid: Int32
    /// The account name for `uid` (from the password database), nil when it has none.
    public var userName: String?

    public init(uid: UInt32, pid: Int32, userName: String?) {
        self.uid = uid
        self.pid = pid
        self.userName = userName
    }

    /// nil when `fd` is not a connected Unix socket.
    public static func of(socket fd: Int32) -> UnixPeer? {
        var uid: UInt32 = 0
        var pid: Int32 = 0
        guard vouch_peer_credentials(fd, &uid, &pid) == 0 else { return nil }
        return UnixPeer(uid: uid, pid: pid, userName: userName(uid: uid))
    }

    public static func userName(uid: UInt32) -> String? {
        var entry = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 4_096)
        let status = getpwuid_r(uid, &entry, &buffer, buffer.count, &result)
        guard status == 0, result != nil, let name = entry.pw_name else { return nil }
        return String(cString: name)
    }

    /// "alice (uid 1000)", or "uid 1000" for an account without a name.
    public var description: String { userName.map { "\($0) (uid \(uid))" } ?? "uid \(uid)" }
}
