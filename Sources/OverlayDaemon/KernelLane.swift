// Kernel work, in the order it was asked for, off Swift's cooperative threads. The daemon
// decides what to change while it holds its state (an actor) and submits the change at
// once; the changes then run one after another, each on a thread of its own
// (SystemKit's Threads.offload), so a reconcile computed from one snapshot of the peers can
// never land after a later peer change and undo it.

import SystemKit

struct KernelLane {
    private var tail: Task<Void, Never>?

    /// Runs `work` after everything submitted before it; the task's value is its outcome.
    mutating func submit<R: Sendable>(_ work: @escaping @Sendable () throws -> R) -> Task<Result<R, any Error>, Never> {
        let previous = tail
        let job = Task.detached { () -> Result<R, any Error> in
            await previous?.value
            do {
                return .success(try await Threads.offload(work))
            } catch {
                return .failure(error)
            }
        }
        tail = Task.detached { _ = await job.value }
        return job
    }
}
