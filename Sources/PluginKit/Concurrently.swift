// Runs independent teardown steps at the same time. Kernel teardown waits for RCU grace
// periods (deleting a netdev, committing an nftables deletion), and waits on different
// objects overlap instead of adding up when they run on different threads.

#if canImport(Glibc)
import Glibc
#endif

private final class Job: @unchecked Sendable {
    let work: @Sendable () throws -> Void
    var error: (any Error)?
    init(_ work: @escaping @Sendable () throws -> Void) { self.work = work }
    func run() { do { try work() } catch { self.error = error } }
}

/// Runs every step, the first on the calling thread and the others each on a new pthread,
/// waits for all of them, and returns the errors they threw (in step order). A step whose
/// thread cannot be created runs on the calling thread afterwards. The steps must not touch
/// namespaces (use `withNetworkNamespace` inside a step for that, as everywhere).
public func runConcurrently(_ steps: [@Sendable () throws -> Void]) -> [any Error] {
    let jobs = steps.map(Job.init)
    var threads: [(pthread_t, Job)] = []
    var inline: [Job] = []
    for job in jobs.dropFirst() {
        var t = pthread_t()
        let ctx = Unmanaged.passRetained(job).toOpaque()
        let rc = pthread_create(&t, nil, { arg in
            let job = Unmanaged<Job>.fromOpaque(arg!).takeRetainedValue()
            job.run()
            return nil
        }, ctx)
        if rc == 0 {
            threads.append((t, job))
        } else {
            Unmanaged<Job>.fromOpaque(ctx).release()
            inline.append(job)
        }
    }
    jobs.first?.run()
    for job in inline { job.run() }
    for (t, _) in threads { pthread_join(t, nil) }
    return jobs.compactMap(\.error)
}
