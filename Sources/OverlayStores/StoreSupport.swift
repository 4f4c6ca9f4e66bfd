// What both stores do the same way: a watch loop turned into an event stream, and the
// checks every request gets before it reaches a store.

import Overlay

/// Runs `follow` on a task of its own, delivering into the returned stream. The stream ends
/// when `follow` returns, or with the error it throws; a consumer that stops iterating
/// cancels the task, which ends quietly.
func eventStream(
    _ follow: @escaping @Sendable (_ deliver: (StoreEvent) -> Void) async throws -> Void
) -> AsyncThrowingStream<StoreEvent, any Error> {
    AsyncThrowingStream { continuation in
        let task = Task {
            do {
                try await follow { continuation.yield($0) }
                continuation.finish()
            } catch is CancellationError {
                continuation.finish()
            } catch {
                continuation.finish(throwing: error)
            }
        }
        continuation.onTermination = { _ in task.cancel() }
    }
}

/// Refuses an empty key, which neither store can hold.
func requireKey(_ key: String, _ operation: String) throws(StoreError) {
    if key.isEmpty { throw .invalid(operation: operation, reason: "empty key") }
}

/// Refuses a watch from before the first revision.
func requireStartRevision(_ revision: Int64) throws(StoreError) {
    if revision < 1 { throw .invalid(operation: "watch", reason: "start revision must be at least 1, got \(revision)") }
}
