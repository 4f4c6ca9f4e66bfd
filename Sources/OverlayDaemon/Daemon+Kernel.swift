// The kernel side: the VTEP per overlay family made from the config, the lease and the
// underlay; every peer's entries from the leases; masquerade; then subnet.env. All kernel
// work goes through the lane, in the order it was decided.

import NetTypes
import NFTables
import Overlay
import OverlayKernel
import SystemKit

extension Daemon {
    /// Makes the devices and every peer entry match the config and the held lease, then
    /// writes subnet.env; retried until it succeeds. False when the lease was lost or
    /// replaced meanwhile (the caller acquires again).
    func program() async -> Bool {
        var backoff = Backoff()
        programmed = false
        while let lease = held, let config, let underlay {
            do {
                try await updateOwnLease(lease, config)
                guard let held, holds(lease) else { return false }
                let devices = try await programDevices(config, held, underlay)
                try await programMasquerade(config)
                guard holds(held) else { return false }
                try await writeSubnetEnv(config, held, mtu: devices.map(\.mtu).min() ?? 0)
                guard holds(held) else { return false }
                programmed = true
                health.set(problem: nil)
                let names = devices.map { "\($0.name) mtu \($0.mtu)" }.joined(separator: ", ")
                log.info("ready: \(held.subnets.cidrs()), device \(names), \(peerCount) peer(s), \(settings.subnetFile) written")
                return true
            } catch {
                guard holds(lease) else { return false }
                log.error("programming the overlay failed: \(error); retrying")
                health.set(problem: "programming the overlay failed: \(error)")
                await pause(backoff.next())
            }
        }
        return false
    }

    /// Whether `lease` is still the one held (renewals aside).
    private func holds(_ lease: HeldLease) -> Bool {
        held?.key == lease.key && held?.createRevision == lease.createRevision
    }

    private var peerCount: Int { leases.count - (held == nil ? 0 : 1) }

    /// A config change can change what our lease says (the VNI): it is written again, still
    /// only if the key is the one we created.
    private func updateOwnLease(_ lease: HeldLease, _ config: NetworkConfig) async throws {
        let current = leases[lease.key].map { Lease(subnets: lease.subnets, attributes: $0.attributes) }
        let wanted = try leaseAttributes(lease.subnets, config, readingBack: current)
        guard wanted != lease.attributes else { return }
        held?.attributes = wanted
        let result = try await store.update(lease.key, text: wanted.json, ttl: .keep, ifCreateRevision: lease.createRevision)
        if case .conflict = result, holds(lease) { await leaseLost("another host holds the key now") }
    }

    /// The VTEP configurations for the held lease.
    func vtepConfigs(_ config: NetworkConfig, _ lease: HeldLease, _ underlay: Underlay) -> [VTEPConfig] {
        var out: [VTEPConfig] = []
        let b = config.backend
        func add(_ range: SubnetRange?, _ subnet: CIDR?, _ local: IPAddress?, _ data: VXLANLeaseData?) {
            guard let range, let subnet, let local, let data else { return }
            let mtu = b.mtu.map { VTEPConfig.deviceMTU(linkMTU: UInt32($0), underlay: local.family) }
            out.append(VTEPConfig(vni: b.vni, port: b.port, underlay: underlay.name, publicIP: local, subnet: subnet,
                                  network: range.network, mac: data.vtepMAC, mtu: mtu, learning: b.learning,
                                  gbp: b.gbp, directRouting: b.directRouting))
        }
        add(config.ipv4, lease.subnets.ipv4, underlay.localIPv4, lease.attributes.backendData)
        add(config.ipv6, lease.subnets.ipv6, underlay.localIPv6, lease.attributes.backendV6Data)
        return out
    }

    /// Replaces VTEPs whose configuration changed (a renamed device's old one is deleted),
    /// ensures each device and reconciles every peer.
    private func programDevices(_ config: NetworkConfig, _ lease: HeldLease,
                                _ underlay: Underlay) async throws -> [VTEPDevice] {
        var wanted: [IPAddress.Family: VTEP] = [:]
        for c in vtepConfigs(config, lease, underlay) {
            if let same = vteps[c.family], same.config == c {
                wanted[c.family] = same
            } else {
                // Opening the VTEP opens its netlink socket: kernel work, on the lane.
                wanted[c.family] = try await kernel.submit { try VTEP(c) }.value.get()
            }
        }
        let retired = vteps.values.filter { old in !wanted.values.contains { $0.config.name == old.config.name } }
        vteps = wanted
        for old in retired {
            log.info("deleting the device \(old.config.name): the config no longer asks for it")
            try await kernel.submit { try old.teardown() }.value.get()
        }
        var devices: [VTEPDevice] = []
        for family in [IPAddress.Family.v4, .v6] {
            guard let vtep = wanted[family] else { continue }
            let peers = currentPeers(family)
            let device = try await kernel.submit { () throws -> VTEPDevice in
                let device = try vtep.ensure()
                try vtep.reconcile(peers)
                return device
            }.value.get()
            if !device.changes.isEmpty { log.info("\(device.name): \(device.changes.map(\.description).joined(separator: ", "))") }
            devices.append(device)
        }
        return devices
    }

    /// flanneld's `--ip-masq` in the suite's own table; without the flag, a table a previous
    /// run left is removed.
    private func programMasquerade(_ config: NetworkConfig) async throws {
        let networks = [config.ipv4?.network, config.ipv6?.network].compactMap { $0 }
        let ipMasq = settings.ipMasq
        try await kernel.submit {
            let socket = try NFTSocket()
            if ipMasq {
                try OverlayMasquerade(networks: networks).ensure(socket)
            } else {
                try OverlayMasquerade.remove(socket)
            }
        }.value.get()
    }

    private func writeSubnetEnv(_ config: NetworkConfig, _ lease: HeldLease, mtu: UInt32) async throws {
        let env = SubnetEnv(config: config, subnets: lease.subnets, mtu: Int(mtu), ipMasq: settings.ipMasq)
        let path = settings.subnetFile
        if try await Threads.offload({ try SubnetEnv.read(path) }) == env { return }
        try await Threads.offload { try env.write(to: path) }
    }

    // MARK: checking

    /// Ensures every device (a missing or changed one is repaired, and then every peer entry
    /// programmed again); with `reconcilingAll`, every peer entry is compared in any case.
    /// The peers are read only when a reconcile is due: the check itself runs 4 times a
    /// second. Changes submitted meanwhile run before that reconcile, whose peers are newer.
    func checkKernel(reconcilingAll: Bool) async {
        guard held != nil else { return }
        for (family, vtep) in vteps {
            // A VTEP replaced meanwhile (a new config) is not brought back: its successor is
            // programmed, and a retired device deleted, by `program`.
            guard vteps[family] === vtep else { continue }
            do {
                let device = try await kernel.submit { try vtep.ensure() }.value.get()
                if !device.changes.isEmpty {
                    log.warning("\(device.name) was not as configured: \(device.changes.map(\.description).joined(separator: ", "))")
                }
                if reconcilingAll || device.needsReconcile, vteps[family] === vtep {
                    let peers = currentPeers(family)
                    let summary = try await kernel.submit { try vtep.reconcile(peers) }.value.get()
                    if !summary.changes.isEmpty {
                        log.warning("\(device.name): \(summary.changes.count) peer entr\(summary.changes.count == 1 ? "y" : "ies") repaired")
                    }
                }
                if device.changes.contains(where: { if case .mtu = $0 { true } else { false } }) {
                    // The underlay's MTU changed: subnet.env must say the device's new one.
                    await converge()
                }
                if programmed, convergence == nil, health.currentProblem != nil { health.set(problem: nil) }
            } catch {
                log.error("checking \(vtep.config.name) failed: \(error)")
                health.set(problem: "\(vtep.config.name): \(error)")
            }
        }
    }

    // MARK: peers

    /// The peers of one overlay family: every lease but ours; where two dual-stack keys
    /// share a subnet, only the older one (single-stack keys cannot share one, and the
    /// quadratic check is skipped for them).
    func currentPeers(_ family: IPAddress.Family) -> [OverlayPeer] {
        let all = Array(leases.values)
        let dualStack = all.contains { $0.subnets.ipv4 != nil && $0.subnets.ipv6 != nil }
        return all.filter { $0.subnets != held?.subnets && !(dualStack && SubnetChooser.isOutranked($0, among: all)) }
            .flatMap(peers(of:)).filter { $0.0 == family }.map(\.1)
    }

    /// A lease's peers: one per family it has a subnet, address and VTEP MAC for.
    func peers(of lease: Lease) -> [(IPAddress.Family, OverlayPeer)] {
        let a = lease.attributes
        guard a.backendType == VXLANBackend.type else { return [] }
        var out: [(IPAddress.Family, OverlayPeer)] = []
        if let subnet = lease.subnets.ipv4, let ip = a.publicIP, let data = a.backendData {
            out.append((.v4, OverlayPeer(subnet: subnet, publicIP: ip, vtepMAC: data.vtepMAC)))
        }
        if let subnet = lease.subnets.ipv6, let ip = a.publicIPv6, let data = a.backendV6Data {
            out.append((.v6, OverlayPeer(subnet: subnet, publicIP: ip, vtepMAC: data.vtepMAC)))
        }
        return out
    }

    /// Logs the outcome of a kernel change once it has run, without waiting for it.
    func report<R: Sendable>(_ what: String, _ job: Task<Result<R, any Error>, Never>) {
        let log = self.log
        Task.detached {
            if case .failure(let error) = await job.value { log.error("\(what) failed: \(error)") }
        }
    }
}
