import Dispatch
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A listening socket accepted on a thread of its own (never the cooperative pool), each connection
/// served on a concurrent queue: the control socket's and the metrics' plumbing.
final class SocketListener: Sendable {
    private let listener = Mutex<Int32>(-1)
    private let queue: DispatchQueue
    private let name: String

    init(name: String) {
        self.name = name
        queue = DispatchQueue(label: name, attributes: .concurrent)
    }

    /// Accepts on `fd` (bound and listening) until ``stop()``; `serve` owns each connection's fd.
    func start(_ fd: Int32, serve: @escaping @Sendable (Int32) -> Void) {
        listener.withLock { $0 = fd }
        let queue = queue
        let thread = Thread {
            while true {
                let client = accept(fd, nil, nil)
                if client < 0 {
                    if errno == EINTR || errno == ECONNABORTED { continue }
                    return  // the listener was shut down
                }
                queue.async { serve(client) }
            }
        }
        thread.name = name + ".accept"
        thread.start()
    }

    /// Closes the listening socket; false when it was not listening.
    @discardableResult
    func stop() -> Bool {
        let fd = listener.withLock { fd in
            defer { fd = -1 }
            return fd
        }
        guard fd >= 0 else { return false }
        shutdown(fd, Int32(SHUT_RDWR))
        close(fd)
        return true
    }
}
