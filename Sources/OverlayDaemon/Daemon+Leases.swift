// Holding a subnet: the choice in flanneld's order (our lease by public IP, the old
// subnet.env's subnet, a random free one among the first 100), claimed with create-if-absent
// in one transaction; a claim lost to another host is chosen again (flanneld exits there).
// A subnet someone else holds is never taken: the store's create refuses it, and the
// renewal checks the key is still the one we created before it renews anything.

import NetTypes
import Overlay
import OverlayKernel
import OverlayStores
import SystemKit

extension Daemon {
    /// Brings the daemon to a held lease that fits the config and a kernel programmed for
    /// it. One convergence runs at a time: a caller arriving meanwhile asks for one more round
    /// and waits for it; a call from inside the running one (a lease lost while programming)
    /// only asks for that round.
    func converge() async {
        if Self.isConverging {
            convergeAgain = true
            return
        }
        if let running = convergence {
            convergeAgain = true
            await running.value
            return
        }
        let task = Task { await self.convergeRounds() }
        convergence = task
        await task.value
    }

    @TaskLocal static var isConverging = false

    /// Rounds until one ends with nothing asked meanwhile. The last check and the clearing
    /// of `convergence` happen without a suspension between them, so a caller either sees
    /// the task and gets its round, or sees none and starts one.
    private func convergeRounds() async {
        while true {
            await Self.$isConverging.withValue(true) {
                convergeAgain = false
                await convergeOnce()
            }
            if !convergeAgain {
                convergence = nil
                return
            }
        }
    }

    private func convergeOnce() async {
        while true {
            if let held, let config, !SubnetChooser(config: config).admits(held.subnets) {
                log.info("our lease \(held.subnets.cidrs()) does not fit the network config; leasing again")
                self.held = nil
            }
            if held == nil { await acquireLease() }
            if await program() { return }
        }
    }

    /// Lists, waits for a valid config, and claims a subnet; returns once one is held.
    private func acquireLease() async {
        var backoff = Backoff()
        programmed = false
        while held == nil {
            guard let listing = await listUntilAnswered() else { continue }
            absorb(listing)
            guard let config else {
                await pause(Self.waitInterval)
                continue
            }
            do {
                if try await claim(in: config) { return }
                // Lost a race for the subnet: choose again at once, after a moment's jitter.
                await pause(.milliseconds(Int.random(in: 5...50)))
            } catch let e as SubnetsExhausted {
                log.error("\(e); waiting for a lease to go")
                health.set(problem: "\(e)")
                await pause(Self.waitInterval)
            } catch {
                log.warning("acquiring a lease failed: \(error); retrying")
                health.set(problem: "no lease: \(error)")
                await pause(backoff.next())
            }
        }
    }

    /// Lists the network's keys; nil (after a pause) when the store did not answer.
    func listUntilAnswered() async -> StoreListing? {
        do {
            return try await store.list(prefix: layout.prefix + "/")
        } catch {
            log.warning("listing \(layout.prefix) failed: \(error); retrying")
            if held == nil { health.set(problem: "store unavailable: \(error)") }
            await pause(Backoff.defaultCap / 5)
            return nil
        }
    }

    /// Takes the listing as the truth: the config (when it is valid) and every lease.
    func absorb(_ listing: StoreListing) {
        var fresh: [String: Lease] = [:]
        for entry in listing.entries {
            if entry.key == layout.configKey {
                adoptConfig(entry.value)
            } else if let lease = parseLease(entry) {
                fresh[entry.key] = lease
            }
        }
        if !listing.entries.contains(where: { $0.key == layout.configKey }) {
            if config == nil { health.set(problem: "waiting for the network config at \(layout.configKey)") }
            if configValue != nil { log.warning("the network config \(layout.configKey) is gone; keeping the one in force") }
        }
        leases = fresh
        listedRevision = listing.revision
    }

    func parseLease(_ entry: StoreEntry) -> Lease? {
        do {
            return try Lease(entry, layout: layout)
        } catch {
            log.warning("ignoring the lease \(entry.key): \(error)")
            return nil
        }
    }

    /// Chooses a subnet and claims it; false when another host won it first.
    private func claim(in config: NetworkConfig) async throws -> Bool {
        guard let underlay else { return false }
        let choice = try SubnetChooser(config: config).choose(
            leases: Array(leases.values), publicIP: config.ipv4 != nil ? underlay.publicIP : nil,
            publicIPv6: config.ipv6 != nil ? underlay.publicIPv6 : nil, previous: previousSubnets(), using: &random)
        switch choice {
        case .reuse(let lease):
            return try await claimExisting(lease, config)
        case .create(let subnets, let source, let replacing):
            if let replacing {
                log.info("our lease \(replacing.subnets.cidrs()) no longer fits the config: replacing it")
                _ = try await store.delete(layout.leaseKey(replacing.subnets))
            }
            return try await claimNew(subnets, source: source, previousOwn: replacing, config)
        }
    }

    /// Our own lease (same public IP) found in the store: written with our attributes and a fresh TTL.
    private func claimExisting(_ lease: Lease, _ config: NetworkConfig) async throws -> Bool {
        let key = layout.leaseKey(lease.subnets)
        let attributes = try leaseAttributes(lease.subnets, config, readingBack: lease)
        let result = try await store.update(key, text: attributes.json, ttl: .set(settings.leaseTTL),
                                            ifCreateRevision: lease.createRevision)
        guard case .updated = result else { return false }
        hold(key, lease.subnets, attributes, createRevision: lease.createRevision)
        log.info("renewed our existing lease \(lease.subnets.cidrs())")
        return true
    }

    private func claimNew(_ subnets: SubnetKey, source: SubnetChoice.Source, previousOwn: Lease?,
                          _ config: NetworkConfig) async throws -> Bool {
        let key = layout.leaseKey(subnets)
        let attributes = try leaseAttributes(subnets, config, readingBack: previousOwn)
        switch try await store.create(key, text: attributes.json, ttl: settings.leaseTTL) {
        case .exists(let holder):
            log.info("subnet \(subnets.cidrs()) was taken meanwhile (created at revision \(holder.createRevision)); choosing again")
            return false
        case .created(let revision):
            if try await isOutranked(subnets, createRevision: revision) {
                log.info("subnet \(subnets.cidrs()) overlaps an older lease; giving it up and choosing again")
                _ = try await store.delete(key)
                return false
            }
            hold(key, subnets, attributes, createRevision: revision)
            log.info("leased \(subnets.cidrs()) (\(source == .previous ? "the subnet of the previous subnet.env" : "a free subnet"))")
            return true
        }
    }

    /// A dual-stack key can share one family's subnet with another key; the older one holds it.
    private func isOutranked(_ subnets: SubnetKey, createRevision: Int64) async throws -> Bool {
        guard subnets.ipv4 != nil && subnets.ipv6 != nil else { return false }
        let listing = try await store.list(prefix: layout.subnetsPrefix)
        let all = listing.entries.compactMap(parseLease)
        guard let ours = all.first(where: { $0.subnets == subnets && $0.createRevision == createRevision }) else { return false }
        return SubnetChooser.isOutranked(ours, among: all)
    }

    private func hold(_ key: String, _ subnets: SubnetKey, _ attributes: LeaseAttributes, createRevision: Int64) {
        held = HeldLease(key: key, subnets: subnets, attributes: attributes, createRevision: createRevision,
                         renewedAt: .now)
        leases[key] = Lease(subnets: subnets, attributes: attributes, createRevision: createRevision,
                            modRevision: createRevision)
    }

    /// Our lease value: flannel's fields, the VTEP MAC read back from our previous lease when
    /// there is one (peers know it already), else the running device's, else derived from
    /// the seed.
    func leaseAttributes(_ subnets: SubnetKey, _ config: NetworkConfig,
                         readingBack previous: Lease?) throws -> LeaseAttributes {
        guard let underlay else { throw UnderlayError(description: "no underlay yet") }
        let vni = config.backend.vni
        func data(_ family: IPAddress.Family, _ publicIP: IPAddress?, _ old: VXLANLeaseData?) throws -> VXLANLeaseData {
            guard let publicIP else {
                throw UnderlayError(description: "\(underlay.name) has no \(family == .v4 ? "IPv4" : "IPv6") address "
                                    + "for the \(family == .v4 ? "IPv4" : "IPv6") overlay")
            }
            // Our previous MAC stays, also under a new VNI: peers know it already.
            if let mac = old?.vtepMAC ?? vteps[family]?.config.mac { return VXLANLeaseData(vni: vni, vtepMAC: mac) }
            return VXLANLeaseData(vni: vni, vtepMAC: VTEPIdentity.mac(seed: seed, publicIP: publicIP, vni: vni, family: family))
        }
        let v4 = try subnets.ipv4.map { _ in try data(.v4, underlay.publicIP, previous?.attributes.backendData) }
        let v6 = try subnets.ipv6.map { _ in try data(.v6, underlay.publicIPv6, previous?.attributes.backendV6Data) }
        return LeaseAttributes(publicIP: underlay.publicIP, publicIPv6: config.ipv6 != nil ? underlay.publicIPv6 : nil,
                               backendData: v4, backendV6Data: v6)
    }

    /// The subnets of the previous subnet.env, if there is a readable one.
    private func previousSubnets() -> SubnetKey? {
        do {
            guard let env = try SubnetEnv.read(settings.subnetFile) else { return nil }
            let key = SubnetKey(ipv4: env.subnet?.network, ipv6: env.ipv6Subnet?.network)
            return key.ipv4 == nil && key.ipv6 == nil ? nil : key
        } catch {
            log.warning("ignoring the previous \(settings.subnetFile): \(error)")
            return nil
        }
    }

    // MARK: renewing and losing

    /// Renews `lease` if the key is still the one we created; a key gone or someone else's
    /// means the lease is lost (and is acquired again). Store errors are thrown.
    func renew(_ lease: HeldLease) async throws {
        let entry = try await store.get(lease.key)
        guard held == lease else { return }   // changed while we asked
        guard let entry, entry.createRevision == lease.createRevision else {
            await leaseLost(entry == nil ? "it expired or was deleted" : "another host holds the key now")
            return
        }
        let renewed = try await store.renew(lease.key)
        guard held == lease else { return }
        if renewed {
            held?.renewedAt = .now
            log.debug("renewed the lease \(lease.subnets.cidrs())")
        } else {
            await leaseLost("it expired before it could be renewed")
        }
    }

    /// Our lease is gone: acquire one again (the same subnet when it is still free) and
    /// program the kernel for it. The kernel keeps the old state meanwhile.
    func leaseLost(_ reason: String) async {
        guard let lease = held else { return }
        log.warning("lost the lease \(lease.subnets.cidrs()): \(reason); acquiring a lease again")
        held = nil
        programmed = false
        health.set(problem: "lease \(lease.subnets.cidrs()) lost; acquiring again")
        await converge()
    }
}
