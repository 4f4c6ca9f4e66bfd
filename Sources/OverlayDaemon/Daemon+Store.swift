// Following the store: one watch of the whole prefix (`<prefix>/config` and
// `<prefix>/subnets/`) from the revision after the last listing. Each event changes one
// peer in the kernel, or applies a new config. When the watch ends (the store went away,
// or the watch fell behind a compaction), the daemon lists again, reconciles the kernel
// against that listing and watches on from it; the kernel is left as it is meanwhile, so
// traffic between hosts keeps flowing through an outage.

import Overlay
import OverlayKernel
import OverlayStores

extension Daemon {
    func followStore(after revision: Int64) async {
        var next = revision + 1
        var backoff = Backoff()
        while true {
            do {
                for try await event in store.watch(prefix: layout.prefix + "/", fromRevision: next) {
                    backoff.reset()
                    next = event.revision + 1
                    // A listing made meanwhile (a re-acquisition) holds this change already.
                    if event.revision <= listedRevision { continue }
                    await apply(event)
                }
                log.warning("the watch of \(layout.prefix) ended; listing again")
            } catch let e as StoreError {
                if case .compacted = e {
                    log.info("the watch fell behind a compaction (\(e)); listing again")
                } else {
                    log.warning("watching \(layout.prefix) failed: \(e); listing again")
                    await pause(backoff.next())
                }
            } catch {
                log.warning("watching \(layout.prefix) failed: \(error); listing again")
                await pause(backoff.next())
            }
            next = await resync() + 1
        }
    }

    /// After a gap: list until the store answers, take the listing as the truth, check our
    /// own lease, and reconcile the kernel. Returns the listing's revision.
    func resync() async -> Int64 {
        var backoff = Backoff()
        while true {
            do {
                let listing = try await store.list(prefix: layout.prefix + "/")
                let before = config
                absorb(listing)
                log.info("listed \(leases.count) lease(s) at revision \(listing.revision)")
                if let held, leases[held.key]?.createRevision != held.createRevision {
                    await leaseLost(leases[held.key] == nil ? "it is not in the store any more" : "another host holds the key now")
                    return listedRevision
                }
                if config != before {
                    await converge()
                } else {
                    await checkKernel(reconcilingAll: true)
                }
                return listing.revision
            } catch {
                log.warning("listing \(layout.prefix) failed: \(error); retrying")
                await pause(backoff.next())
            }
        }
    }

    /// Applies one watch event.
    func apply(_ event: StoreEvent) async {
        if event.key == layout.configKey {
            if event.removesKey {
                log.warning("the network config \(layout.configKey) was deleted; keeping the one in force")
            } else if adoptConfig(event.value) {
                await configChanged()
            }
            return
        }
        guard layout.subnets(ofKey: event.key) != nil else { return }
        if event.removesKey {
            await leaseRemoved(event)
        } else if let entry = event.entry, let lease = parseLease(entry) {
            await leasePut(lease, key: event.key)
        }
    }

    private func leaseRemoved(_ event: StoreEvent) async {
        let old = leases.removeValue(forKey: event.key)
        if let held, held.key == event.key {
            await leaseLost(event.kind == .expired ? "it expired" : "it was deleted")
            return
        }
        guard let old else { return }
        log.info("peer \(old.subnets.cidrs()) at \(old.attributes.publicIP.map { "\($0)" } ?? "-") \(event.kind == .expired ? "expired" : "left")")
        for (family, peer) in peers(of: old) {
            guard let vtep = vteps[family] else { continue }
            report("remove peer \(peer)", kernel.submit { try vtep.removePeer(peer) })
        }
    }

    private func leasePut(_ lease: Lease, key: String) async {
        let old = leases.updateValue(lease, forKey: key)
        if let held, held.key == key {
            // Our own writes come back as events; a key created again, or written with
            // another host's address, is someone else's.
            if lease.createRevision != held.createRevision || lease.attributes.publicIP != held.attributes.publicIP {
                await leaseLost("another host wrote the key")
            }
            return
        }
        guard old?.attributes != lease.attributes || old?.subnets != lease.subnets else { return }
        if old != nil {
            // A peer whose MAC or address changed: its old FDB entry must go too, which only a
            // reconcile against every peer does without touching its route.
            log.info("peer \(lease.subnets.cidrs()) changed; reconciling")
            await checkKernel(reconcilingAll: true)
            return
        }
        log.info("peer \(lease.subnets.cidrs()) at \(lease.attributes.publicIP.map { "\($0)" } ?? "-") joined")
        guard !SubnetChooser.isOutranked(lease, among: Array(leases.values)) else {
            log.warning("peer \(lease.subnets.cidrs()) overlaps an older lease; left out")
            return
        }
        for (family, peer) in peers(of: lease) {
            guard let vtep = vteps[family] else { continue }
            report("add peer \(peer)", kernel.submit { try vtep.addPeer(peer) })
        }
    }

    /// Reads a config value; true when it is valid and differs from the one in force. An
    /// invalid one is refused with the field named, and the one in force stays.
    @discardableResult
    func adoptConfig(_ value: [UInt8]) -> Bool {
        guard value != configValue else { return false }
        do {
            let parsed = try NetworkConfig(json: value)
            let changed = parsed != config
            if config != nil && changed { log.info("the network config changed") }
            config = parsed
            configValue = value
            return changed
        } catch {
            log.error("refusing the network config at \(layout.configKey): \(error)")
            configValue = value
            if config == nil { health.set(problem: "invalid network config: \(error)") }
            return false
        }
    }

    /// A new config: our lease still fits → the devices follow (MTU, VNI, port, …); it does
    /// not → a new lease first (converge decides).
    func configChanged() async {
        await converge()
    }
}
