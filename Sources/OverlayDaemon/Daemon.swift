// The daemon: one host of a flannel-style overlay. It finds its underlay, waits for the
// network config in the store, leases a subnet, makes the VTEP and every peer's entries,
// writes subnet.env, and from then on follows the store (peers coming and going, config
// changes), renews its lease, and keeps the device as it should be.
//
// State lives in this actor; store calls are async, kernel calls run in order on threads of
// their own (KernelLane). A gap in what the daemon saw of the store (an outage, a watch that
// fell behind a compaction) ends in a fresh listing and a full reconcile of the kernel, so
// nothing missed meanwhile stays wrong; the kernel is never torn down for a store problem.

import Logging
import NetTypes
import Overlay
import OverlayKernel
import OverlayStores
import SystemKit

/// The lease this host holds.
struct HeldLease: Sendable, Hashable {
    var key: String
    var subnets: SubnetKey
    var attributes: LeaseAttributes
    /// Identifies our creation of the key: a key of the same name created later is someone else's.
    var createRevision: Int64
    var renewedAt: ContinuousClock.Instant
}

public actor Daemon {
    let settings: DaemonSettings
    let store: any LeaseStore
    let layout: StoreLayout
    let log: Logger
    public nonisolated let health = HealthState()

    var underlay: Underlay?
    var seed: [UInt8] = []
    /// The config in force, and its text as the store holds it.
    var config: NetworkConfig?
    var configValue: [UInt8]?
    /// Every lease of the network, by key, as of `listedRevision` plus the events since.
    var leases: [String: Lease] = [:]
    var held: HeldLease?
    /// The VTEPs by overlay family.
    var vteps: [IPAddress.Family: VTEP] = [:]
    var kernel = KernelLane()
    /// The running convergence (lease + kernel), which later callers wait for.
    var convergence: Task<Void, Never>?
    /// Set when something changed while a convergence ran: it runs once more.
    var convergeAgain = false
    /// The kernel and subnet.env are in place for the held lease.
    var programmed = false
    var random = SystemRandomNumberGenerator()

    /// How often the device is checked (a device deleted by hand is back within this).
    static let deviceCheckInterval: Duration = .milliseconds(250)
    /// How often every peer entry is compared with the store's leases, besides after gaps.
    static let resyncInterval: Duration = .seconds(10)
    /// How long to wait before looking again for a config or a free subnet.
    static let waitInterval: Duration = .seconds(1)

    public init(settings: DaemonSettings, store: any LeaseStore, logger: Logger) {
        self.settings = settings
        self.store = store
        layout = settings.store.layout
        log = logger
    }

    /// Runs until the process ends.
    public func run() async {
        let underlay = await findUnderlay()
        self.underlay = underlay
        let stateDirectory = settings.stateDirectory
        seed = await retrying("read the VTEP seed in \(stateDirectory)") { try VTEPIdentity.seed(in: stateDirectory) }
        await converge()
        do {
            if let socket = try ServiceNotifier.ready() { log.info("told systemd READY=1 on \(socket)") }
        } catch {
            log.warning("could not tell systemd that the service is ready: \(error)")
        }
        let revision = listedRevision
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.followStore(after: revision) }
            group.addTask { await self.guardDevice() }
            group.addTask { await self.renewLeases() }
        }
    }

    /// The revision `leases` was last listed at.
    var listedRevision: Int64 = 0

    // MARK: the underlay

    private func findUnderlay() async -> Underlay {
        var lastProblem = ""
        while true {
            do {
                let wanted = settings.underlay
                let found = try await Threads.offload { try UnderlayChoice.find(wanted) }
                log.info("underlay: \(found)")
                return found
            } catch {
                let problem = "\(error)"
                if problem != lastProblem { log.error("no underlay interface yet: \(problem); retrying every second") }
                lastProblem = problem
                health.set(problem: "no underlay interface: \(problem)")
                await pause(Self.waitInterval)
            }
        }
    }

    // MARK: the device

    /// Checks the devices every 250 ms (re-created with their MAC and every peer entry when
    /// gone or changed), and reconciles every peer entry every 10 s.
    private func guardDevice() async {
        var sinceResync: Duration = .zero
        while true {
            await pause(Self.deviceCheckInterval)
            sinceResync += Self.deviceCheckInterval
            let full = sinceResync >= Self.resyncInterval
            if full { sinceResync = .zero }
            await checkKernel(reconcilingAll: full)
        }
    }

    // MARK: renewing

    /// Renews the lease `renewInterval` after each renewal; a failed renewal is retried with
    /// backoff, and a lease found gone or taken is acquired again.
    private func renewLeases() async {
        var backoff = Backoff(cap: min(Backoff.defaultCap, settings.renewInterval / 4))
        while true {
            guard let lease = held else {
                await pause(Self.waitInterval)
                continue
            }
            let due = lease.renewedAt + settings.renewInterval
            if ContinuousClock.now < due {
                await pause(until: due)
                continue   // the lease may have changed meanwhile: look again
            }
            do {
                try await renew(lease)
                backoff.reset()
            } catch {
                log.warning("renewing the lease \(lease.subnets.cidrs()) failed: \(error); retrying")
                await pause(backoff.next())
            }
        }
    }

    // MARK: helpers

    /// Sleeps; cancellation only ends the sleep early (the loops run until the process ends).
    func pause(_ d: Duration) async {
        do { try await Task.sleep(for: d) } catch { /* cancelled: return at once */ }
    }

    func pause(until instant: ContinuousClock.Instant) async {
        do { try await Task.sleep(until: instant, clock: .continuous) } catch { /* cancelled: return at once */ }
    }

    /// Runs a local step (files) until it succeeds, logging each new failure.
    func retrying<R: Sendable>(_ what: String, _ work: @escaping @Sendable () throws -> R) async -> R {
        var backoff = Backoff()
        while true {
            do {
                return try await Threads.offload(work)
            } catch {
                log.error("could not \(what): \(error); retrying")
                health.set(problem: "could not \(what)")
                await pause(backoff.next())
            }
        }
    }
}

/// Growing waits between retries: 250 ms doubling up to a cap, with a little jitter so that
/// daemons that failed together do not retry in lockstep.
struct Backoff: Sendable {
    static let defaultCap: Duration = .seconds(5)
    static let first: Duration = .milliseconds(250)
    var cap: Duration
    private var current: Duration?

    init(cap: Duration = Backoff.defaultCap) {
        self.cap = max(cap, Backoff.first)
    }

    mutating func next() -> Duration {
        let d = current.map { min($0 * 2, cap) } ?? Backoff.first
        current = d
        return d + .milliseconds(Int.random(in: 0...50))
    }

    mutating func reset() { current = nil }
}

extension SubnetKey {
    /// The subnets in CIDR notation ("10.244.3.0/24", dual stack "10.244.3.0/24 fd10:244:0:3::/64").
    func cidrs(separator: String = " ") -> String {
        [ipv4, ipv6].compactMap { $0.map { "\($0)" } }.joined(separator: separator)
    }
}
