// Opening a socket inside another network namespace: setns on a short-lived thread of our own,
// restore it in a defer, and let the thread end (so a thread stuck in the wrong namespace is
// discarded rather than reused). Private to this module; the Netlink module has its own.

import CNetlabShims
#if canImport(Glibc)
import Glibc
#endif

private final class ThreadJob {
    let body: () -> Void
    init(_ body: @escaping () -> Void) { self.body = body }
}

/// Runs `body` on a new thread inside the network namespace at `path`, waits for it, and
/// returns its result. The thread switches back to its original namespace before it ends.
func inNetworkNamespace<T>(_ path: String, _ body: @escaping () throws -> T) throws -> T {
    var result: Result<T, any Error> = .failure(NFTError(operation: "enter netns", object: path, errno: EINVAL))
    let job = ThreadJob {
        let original = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)
        guard original >= 0 else {
            result = .failure(NFTError(operation: "open own netns", object: "/proc/thread-self/ns/net", errno: errno))
            return
        }
        defer { close(original) }
        let target = open(path, O_RDONLY | O_CLOEXEC)
        guard target >= 0 else {
            result = .failure(NFTError(operation: "open netns", object: path, errno: errno))
            return
        }
        defer { close(target) }
        let rc = netlab_nft_setns_net(target)
        guard rc == 0 else {
            result = .failure(NFTError(operation: "setns", object: path, errno: -rc))
            return
        }
        // Restore before the thread ends; if that fails the thread is discarded anyway.
        defer { _ = netlab_nft_setns_net(original) }
        result = Result { try body() }
    }
    var tid = pthread_t()
    let box = Unmanaged.passRetained(job).toOpaque()
    let rc = pthread_create(&tid, nil, { arg in
        let job = Unmanaged<ThreadJob>.fromOpaque(arg!).takeRetainedValue()
        job.body()
        return nil
    }, box)
    guard rc == 0 else {
        Unmanaged<ThreadJob>.fromOpaque(box).release()
        throw NFTError(operation: "pthread_create", object: path, errno: rc)
    }
    pthread_join(tid, nil)
    return try result.get()
}
