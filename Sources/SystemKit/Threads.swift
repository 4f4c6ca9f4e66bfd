// The one dedicated-thread executor. Namespace work (setns changes only the calling thread)
// and plain concurrency (teardown steps whose kernel waits should overlap) both run here:
// each call gets a fresh pthread that ends when its work returns, so a thread left in the
// wrong namespace can never be reused.

import CNetlabShims
import Glibc

public enum Threads {
    /// The calling thread's kernel thread id.
    public static var currentID: Int32 { netlab_gettid() }

    /// Runs `work` on a new thread and waits for it; returns what it returned or rethrows
    /// what it threw. The calling thread is never used for the work: if no thread can be
    /// created, this throws (namespace work must not run on a thread that is reused).
    public static func run<R>(_ work: () throws -> R) throws -> R {
        try withoutActuallyEscaping(work) { work in
            let job = Job(SendableBox(work))
            try start(job).join()
            return try job.result!.get()
        }
    }

    /// Runs every step at once, the first on the calling thread and the others each on a new
    /// thread, waits for all, and returns the errors they threw in step order. A step whose
    /// thread cannot be created runs on the calling thread afterwards, so these steps must not
    /// change namespaces themselves (use `Namespaces.run` inside a step for that).
    public static func runConcurrently(_ steps: [@Sendable () throws -> Void]) -> [any Error] {
        let jobs = steps.map { step in Job<Void>(SendableBox(step)) }
        var started: [Started] = []
        var inline: [Job<Void>] = []
        for job in jobs.dropFirst() {
            if let s = try? start(job) { started.append(s) } else { inline.append(job) }  // no thread: run it here
        }
        jobs.first?.run()
        for job in inline { job.run() }
        for s in started { s.join() }
        return jobs.compactMap { job in
            if case .failure(let e) = job.result { return e }
            return nil
        }
    }

    /// Runs `work` on a new thread while the calling task is suspended, so that a blocking
    /// call (a netlink exchange, a namespace switch) never holds one of Swift's cooperative
    /// threads. Returns what `work` returned or rethrows what it threw; throws when no thread
    /// can be created (the work then does not run).
    public static func offload<R: Sendable>(_ work: @escaping @Sendable () throws -> R) async throws -> R {
        try await withCheckedThrowingContinuation { (done: CheckedContinuation<R, any Error>) in
            let job = DetachedJob { done.resume(with: Result { try work() }) }
            do {
                // Nobody joins this thread: it resumes the task and ends.
                let started = try start(job)
                pthread_detach(started.thread)
            } catch {
                done.resume(throwing: error)
            }
        }
    }

    // MARK: one pthread per job

    private struct Started {
        let thread: pthread_t
        func join() { pthread_join(thread, nil) }
    }

    private static func start(_ job: some Runnable) throws(SystemError) -> Started {
        let ctx = Unmanaged.passRetained(job as AnyObject).toOpaque()
        var thread = pthread_t()
        let rc = pthread_create(&thread, nil, { arg in
            let obj = Unmanaged<AnyObject>.fromOpaque(arg!).takeRetainedValue()
            (obj as! any Runnable).run()
            return nil
        }, ctx)
        guard rc == 0 else {
            Unmanaged<AnyObject>.fromOpaque(ctx).release()
            throw SystemError(operation: "pthread_create", object: "worker thread", errno: Errno(rc))
        }
        return Started(thread: thread)
    }
}

private protocol Runnable: AnyObject { func run() }

private final class Job<R>: Runnable, @unchecked Sendable {
    let work: SendableBox<() throws -> R>
    var result: Result<R, any Error>?
    init(_ work: SendableBox<() throws -> R>) { self.work = work }
    func run() { result = Result { try work.value() } }
}

/// A job nobody waits for: it hands its result on itself.
private final class DetachedJob: Runnable, @unchecked Sendable {
    let body: () -> Void
    init(_ body: @escaping () -> Void) { self.body = body }
    func run() { body() }
}

/// Moves a value to a thread the caller waits for (the caller keeps no access meanwhile).
public struct SendableBox<V>: @unchecked Sendable {
    public let value: V
    public init(_ value: V) { self.value = value }
}
