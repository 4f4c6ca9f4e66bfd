// One watch of a prefix on etcd's gateway (/v3/watch, newline-delimited JSON): events in
// revision order; when the stream breaks or its endpoint goes away, the watch is opened again
// from the revision after the last event delivered, on whichever endpoint answers, with a
// growing pause between attempts. Compaction ends it with `.compacted`, so the caller lists
// again and watches from the listing's revision + 1.

import FoundationEssentials
import Overlay

struct EtcdWatch {
    let transport: EtcdTransport
    let prefix: String

    static let firstPause: Duration = .milliseconds(100)
    static let longestPause: Duration = .seconds(5)

    /// Delivers events from `from` on until cancelled or ended by a non-transient error.
    func follow(from: Int64, _ deliver: (StoreEvent) -> Void) async throws {
        try requireStartRevision(from)
        var next = from
        var pause = Self.firstPause
        while true {
            try Task.checkCancellation()
            do {
                try await stream(&next, established: { pause = Self.firstPause }, deliver)
            } catch let e as StoreError where e.isTransient {
                // The endpoint went away: resume from `next` once one answers again.
            }
            try await Task.sleep(for: pause)
            pause = min(pause * 2, Self.longestPause)
        }
    }

    /// Follows one watch stream until it ends.
    private func stream(_ next: inout Int64, established: () -> Void,
                        _ deliver: (StoreEvent) -> Void) async throws {
        let request = WatchCreateRequest(create_request: .init(
            key: prefix.isEmpty ? EtcdBase64.encode([0]) : EtcdBase64.encode(prefix),
            range_end: EtcdBase64.prefixEnd(prefix), start_revision: EtcdInt(next)))
        let body = try await transport.stream("/v3/watch", request, "watch \(prefix)")
        var splitter = LineSplitter()
        do {
            for try await chunk in body {
                for line in splitter.lines(chunk) {
                    guard let result = try handle(line, next: next) else { return }
                    if result.created == true { established() }
                    for event in result.events ?? [] {
                        guard let e = Self.event(event) else { continue }
                        deliver(e)
                        next = e.revision + 1
                    }
                }
            }
        } catch let e as StoreError {
            throw e
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            throw StoreError.unavailable(operation: "watch \(prefix)", reason: EtcdTransport.describe(error))
        }
        throw StoreError.unavailable(operation: "watch \(prefix)", reason: "etcd closed the watch stream")
    }

    /// The result on one line; nil when the watch must be opened again (a token expired).
    private func handle(_ line: [UInt8], next: Int64) throws(StoreError) -> WatchResult? {
        let message: StreamLine<WatchResult>
        do { message = try JSONDecoder().decode(StreamLine<WatchResult>.self, from: Data(line)) } catch {
            throw .rejected(operation: "watch \(prefix)", reason: "unexpected answer from etcd")
        }
        if let e = message.error {
            if e.code == GatewayError.unauthenticated && transport.hasCredentials {
                transport.dropToken()
                return nil
            }
            throw e.code == GatewayError.unavailable ? .unavailable(operation: "watch \(prefix)", reason: e.text)
                : .rejected(operation: "watch \(prefix)", reason: e.text)
        }
        guard let result = message.result else { return WatchResult() }
        if let compacted = result.compact_revision?.value, compacted > 0 {
            throw .compacted(requested: next, compactRevision: compacted)
        }
        if result.canceled == true {
            // etcd cancels a watch whose token expired with the gRPC status in cancel_reason.
            if transport.hasCredentials, (result.cancel_reason ?? "").contains("Unauthenticated") {
                transport.dropToken()
                return nil
            }
            throw .rejected(operation: "watch \(prefix)", reason: result.cancel_reason ?? "cancelled by etcd")
        }
        return result
    }

    /// A gateway event as a store event (PUT is the default type and left out of the JSON).
    private static func event(_ e: WatchResult.Event) -> StoreEvent? {
        guard let kv = e.kv?.fields else { return nil }
        if e.type == "DELETE" {
            return StoreEvent(kind: .deleted, key: kv.key, revision: kv.modRevision)
        }
        return StoreEvent(kind: .put, key: kv.key, value: kv.value, revision: kv.modRevision,
                          createRevision: kv.createRevision)
    }
}
