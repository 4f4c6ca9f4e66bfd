// Peers of a VTEP: reconcile the kernel against the full list of peers (what a daemon does at
// start and after any gap), or add and remove one peer as leases come and go.

import Netlink
import NetTypes
import SystemKit

/// What `reconcile` did.
public struct ReconcileSummary: Sendable, Hashable {
    /// The changes made, in order; empty when the kernel was already right.
    public var changes: [KernelChange]
    /// Peers left out of the kernel, with the reason.
    public var conflicts: [PeerConflict]
}

/// Some changes failed; every other change was made. A route whose neighbour or FDB entry
/// failed is held back (`skipped`), so the kernel never resolves a peer's gateway itself.
public struct ReconcileError: Error, Sendable, CustomStringConvertible {
    public struct Failure: Sendable, Hashable {
        public var change: KernelChange
        public var error: SystemError
    }
    public var applied: [KernelChange]
    public var failures: [Failure]
    public var skipped: [KernelChange]
    public var conflicts: [PeerConflict]

    public var description: String {
        let first = failures.first.map { "; first: \($0.change): \($0.error)" } ?? ""
        return "reconcile: \(failures.count) of \(applied.count + failures.count + skipped.count) changes failed"
            + ", \(skipped.count) held back\(first)"
    }
}

extension VTEP {
    /// Makes the VTEP's neighbour, FDB and route entries exactly those of `peers`: adds what
    /// is missing, replaces what is wrong, removes the entries of peers no longer listed, and
    /// leaves every right entry untouched, so a second call with the same peers makes no
    /// kernel change. Only entries on the VTEP, and the overlay's own direct routes, are
    /// considered. Needs the device (`ensure` first).
    @discardableResult
    public func reconcile(_ peers: [OverlayPeer]) throws -> ReconcileSummary {
        try lock.withLock {
            let plan = try makePlan()
            let (entries, conflicts) = plan.desired(peers)
            let changes = plan.changes(from: try kernelEntries(plan.links), to: entries)
            try apply(changes, entries, conflicts: conflicts)
            return ReconcileSummary(changes: changes, conflicts: conflicts)
        }
    }

    /// Programs one peer (neighbour, FDB entry, then route; or the direct route), replacing
    /// entries that differ. A peer this VTEP cannot take throws `.invalid` with the reason.
    @discardableResult
    public func addPeer(_ peer: OverlayPeer) throws -> [KernelChange] {
        try lock.withLock { try programPeer(peer) }
    }

    private func programPeer(_ peer: OverlayPeer) throws -> [KernelChange] {
        let plan = try makePlan()
        let (entries, conflicts) = plan.desired([peer])
        if let conflict = conflicts.first {
            throw SystemError(operation: "add peer", object: "\(peer)", errno: .invalidArgument, message: conflict.reason)
        }
        guard let e = entries.first else { return [] }   // this host itself
        // The route replaces one of the other form; a peer reached directly now also loses
        // the tunnel entries it had before.
        let changes = e.additions + (e.neighbour == nil ? plan.entries(for: peer, direct: false).removals : [])
        try apply(changes, entries, conflicts: [])
        return changes
    }

    /// Removes a peer's route (either form), neighbour and FDB entry; what is gone already is
    /// no error.
    public func removePeer(_ peer: OverlayPeer) throws {
        try lock.withLock {
            let plan = try makePlan()
            let changes = plan.entries(for: peer, direct: true).removals + plan.entries(for: peer, direct: false).removals
            try apply(changes, [], conflicts: [])
        }
    }

    // MARK: reading and applying

    func makePlan() throws -> Plan {
        let vtep = try deviceIndex()
        let underlay = try socket.requireLink(named: config.underlay).index
        var subnets: [CIDR] = []
        if config.directRouting {
            subnets = try socket.addresses(index: underlay, family: config.publicIP.family).map(\.address.network)
        }
        return Plan(config: config, links: OverlayLinks(vtep: vtep, underlay: underlay, underlaySubnets: subnets))
    }

    /// The kernel's neighbour and FDB entries of the VTEP and the main-table routes of the
    /// overlay's family (three dumps).
    func kernelEntries(_ links: OverlayLinks) throws -> KernelEntries {
        KernelEntries(neighbours: try socket.neighbours(family: config.family == .v4 ? .v4 : .v6, index: links.vtep),
                      fdb: try socket.neighbours(family: .bridge, index: links.vtep),
                      routes: try socket.routes(family: config.family))
    }

    /// Applies the changes in order, going on past failures; a tunnel route whose neighbour
    /// or FDB entry failed is held back.
    func apply(_ changes: [KernelChange], _ entries: [PeerEntries], conflicts: [PeerConflict]) throws {
        let macOfRoute = Dictionary(entries.map { ($0.route.destination, $0.peer.vtepMAC) }, uniquingKeysWith: { a, _ in a })
        var failedAddresses = Set<IPAddress>(), failedMACs = Set<MACAddress>()
        var applied: [KernelChange] = [], failures: [ReconcileError.Failure] = [], skipped: [KernelChange] = []
        for change in changes {
            if case .setRoute(let r) = change, r.onLink,
               r.gateway.map(failedAddresses.contains) == true || macOfRoute[r.destination].map(failedMACs.contains) == true {
                skipped.append(change)
                continue
            }
            do {
                try perform(change)
                applied.append(change)
            } catch let e as SystemError {
                failures.append(.init(change: change, error: e))
                if case .setNeighbour(let n) = change, let ip = n.ip { failedAddresses.insert(ip) }
                if case .setFDB(let n) = change, let mac = n.mac { failedMACs.insert(mac) }
            }
        }
        guard failures.isEmpty else {
            throw ReconcileError(applied: applied, failures: failures, skipped: skipped, conflicts: conflicts)
        }
    }

    private func perform(_ change: KernelChange) throws {
        switch change {
        case .setNeighbour(let n), .setFDB(let n):
            try socket.addNeighbour(n, mode: .replace)
        case .removeNeighbour(let n), .removeFDB(let n):
            try ignoringNotFound { try socket.deleteNeighbour(n) }
        case .setRoute(let r):
            try socket.replaceRoute(r)
        case .removeRoute(let r):
            try removeRoute(r)
        }
    }

    /// Deletes a route, identified by what the kernel matches on (the rest of a read-back
    /// route, such as MTU or preferred source, plays no part); a missing route is no error.
    func removeRoute(_ r: Route) throws {
        let key = Route(destination: r.destination, gateway: r.gateway, outputIndex: r.outputIndex,
                        metric: r.metric, table: r.table, proto: r.proto)
        try ignoringNotFound { try socket.deleteRoute(key) }
    }
}
