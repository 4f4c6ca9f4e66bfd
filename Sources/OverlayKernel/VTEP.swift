// The VXLAN device of a flannel-style overlay in one network namespace: created, checked
// and repaired by `ensure`, deleted by `teardown`. Peers are in VTEP+Peers.swift.
//
// Everything is synchronous: the rtnetlink socket is opened inside the namespace once and
// used from the caller's thread; only the sysctl, which /proc/sys shows per namespace of the
// reading task, is written from a thread inside the namespace.

import Netlink
import NetTypes
import SystemKit

/// What `ensure` changed on the device.
public enum DeviceChange: Sendable, Hashable, CustomStringConvertible {
    case created
    /// The device existed with VXLAN settings that cannot change in place.
    case recreated(reason: String)
    case mtu(from: UInt32, to: UInt32)
    case mac(from: MACAddress?, to: MACAddress)
    case addressAdded(CIDR)
    case addressRemoved(CIDR)
    case acceptRADisabled
    case broughtUp

    public var description: String {
        switch self {
        case .created: "created"
        case .recreated(let reason): "re-created (\(reason))"
        case .mtu(let a, let b): "mtu \(a) → \(b)"
        case .mac(let a, let b): "address \(a.map { "\($0)" } ?? "none") → \(b)"
        case .addressAdded(let c): "added \(c)"
        case .addressRemoved(let c): "removed \(c)"
        case .acceptRADisabled: "accept_ra → 0"
        case .broughtUp: "set up"
        }
    }
}

/// The device as `ensure` left it.
public struct VTEPDevice: Sendable, Hashable {
    public var name: String
    public var index: Int32
    public var mac: MACAddress
    public var mtu: UInt32
    /// Empty when the device was already as configured.
    public var changes: [DeviceChange]

    /// The device's peer entries are gone or stale: it is new, or its MAC changed (the
    /// kernel flushes a device's neighbour entries then). Reconcile next.
    public var needsReconcile: Bool {
        changes.contains {
            switch $0 {
            case .created, .recreated, .mac: true
            default: false
            }
        }
    }
}

/// One VTEP of the overlay, in the namespace it was opened for. Its operations may be called
/// from any thread; they run one at a time.
public final class VTEP: Sendable {
    public let config: VTEPConfig
    /// The namespace's path; nil: the namespace of the thread that created this VTEP.
    public let namespacePath: String?
    let socket: RouteSocket
    /// Serialises the operations, so that a reconcile never diffs against a half-made change.
    let lock = Lock()

    /// Validates `config` and opens an rtnetlink socket inside the netns at `namespace` (a
    /// path, or a name under /run/netns), or in the caller's namespace.
    public init(_ config: VTEPConfig, namespace: String? = nil) throws {
        try config.validate()
        self.config = config
        let path = namespace.map(NetworkNamespace.path(named:))
        namespacePath = path
        socket = try path.map { try RouteSocket(namespace: $0) } ?? RouteSocket()
    }

    // MARK: the device

    /// Makes the device what the configuration says, changing only what differs: created when
    /// missing (also after someone deleted it), re-created when VNI, port, local address,
    /// underlay device, learning or GBP differ, MTU and MAC changed in place; then the host
    /// address, `accept_ra=0`, up. A second call with the same configuration changes nothing.
    /// When the result `needsReconcile`, the peer entries must be programmed again.
    @discardableResult
    public func ensure() throws -> VTEPDevice {
        try lock.withLock { try ensureDevice() }
    }

    private func ensureDevice() throws -> VTEPDevice {
        let underlay = try socket.requireLink(named: config.underlay)
        let mtu = config.mtu ?? VTEPConfig.deviceMTU(linkMTU: underlay.mtu, underlay: config.publicIP.family)
        var changes: [DeviceChange] = []
        let link = try ensureLink(underlay: underlay.index, mtu: mtu, &changes)
        if link.mtu != mtu {
            try socket.setMTU(link.index, mtu)
            changes.append(.mtu(from: link.mtu, to: mtu))
        }
        if link.mac != config.mac {
            try socket.setMAC(link.index, config.mac)
            changes.append(.mac(from: link.mac, to: config.mac))
        }
        try ensureAddress(link.index, &changes)
        try disableRouterAdvertisements(&changes)
        if !link.isUp {
            try socket.setUp(link.index)
            changes.append(.broughtUp)
        }
        return VTEPDevice(name: config.name, index: link.index, mac: config.mac, mtu: mtu, changes: changes)
    }

    private func ensureLink(underlay: Int32, mtu: UInt32, _ changes: inout [DeviceChange]) throws -> Link {
        if let found = try socket.vxlanLink(named: config.name) {
            guard let reason = incompatibility(found.vxlan, kind: found.link.kind, underlay: underlay) else {
                return found.link
            }
            try socket.deleteLink(found.link.index)
            changes.append(.recreated(reason: reason))
        } else {
            changes.append(.created)
        }
        let spec = VXLANSpec(name: config.name, vni: config.vni, local: config.publicIP, underlayIndex: underlay,
                             port: config.port, learning: config.learning, mtu: mtu, mac: config.mac,
                             gbp: config.gbp)
        try socket.addVXLAN(spec)
        return try socket.requireLink(named: config.name)
    }

    /// Why an existing device cannot serve as this VTEP, or nil when it can.
    func incompatibility(_ a: VXLANAttributes?, kind: String?, underlay: Int32) -> String? {
        guard let a else { return "kind \(kind ?? "none"), not vxlan" }
        if a.vni != config.vni { return "vni \(a.vni), want \(config.vni)" }
        if a.port != config.port { return "dstport \(a.port.map { "\($0)" } ?? "none"), want \(config.port)" }
        if a.local != config.publicIP { return "local \(a.local.map { "\($0)" } ?? "none"), want \(config.publicIP)" }
        if a.underlayIndex != underlay { return "dev #\(a.underlayIndex ?? 0), want #\(underlay) (\(config.underlay))" }
        if let group = a.group { return "remote/group \(group), want none" }
        if a.learning != config.learning { return "learning \(a.learning ? "on" : "off"), want \(config.learning ? "on" : "off")" }
        if a.gbp != config.gbp { return "gbp \(a.gbp ? "on" : "off"), want \(config.gbp ? "on" : "off")" }
        return nil
    }

    /// The subnet's network address as the device's only address of the family inside the
    /// cluster network (another one is a former lease's); others, such as the IPv6
    /// link-local address, stay.
    private func ensureAddress(_ index: Int32, _ changes: inout [DeviceChange]) throws {
        let want = config.deviceAddress
        let have = try socket.addresses(index: index, family: config.family).map(\.address)
        if !have.contains(want) {
            try socket.addAddress(index, want, noDAD: config.family == .v6)
            changes.append(.addressAdded(want))
        }
        for old in have where old != want && config.network.contains(old.address) {
            try socket.deleteAddress(index, old)
            changes.append(.addressRemoved(old))
        }
    }

    /// flannel's `accept_ra=0`: router advertisements arriving through the overlay must not
    /// configure the host. Without IPv6 in the namespace there is no such sysctl, and nothing
    /// to disable.
    private func disableRouterAdvertisements(_ changes: inout [DeviceChange]) throws {
        let key = "net/ipv6/conf/\(config.name)/accept_ra"
        let value: String
        do {
            value = try Sysctl.get(key, namespace: namespacePath)
        } catch let e as SystemError where e.kind == .notFound {
            return
        }
        guard value != "0" else { return }
        try Sysctl.set(key, "0", namespace: namespacePath)
        changes.append(.acceptRADisabled)
    }

    /// The device's ifindex; throws `.notFound` when it is missing (call `ensure` first).
    func deviceIndex() throws -> Int32 {
        try socket.requireLink(named: config.name).index
    }

    // MARK: teardown

    /// Deletes the device (the kernel drops its neighbour and FDB entries and its routes with
    /// it) and the overlay's direct routes on the underlay. What is gone already is no error;
    /// every step is tried, and the first failure is thrown afterwards.
    public func teardown() throws {
        try lock.withLock { try removeAll() }
    }

    private func removeAll() throws {
        var failures: [any Error] = []
        do {
            try ignoringNotFound { try socket.deleteLink(named: config.name) }
        } catch {
            failures.append(error)
        }
        do {
            for route in try socket.routes(family: config.family) where isDirectRoute(route) {
                try removeRoute(route)
            }
        } catch {
            failures.append(error)
        }
        if let first = failures.first { throw first }
    }

    /// A route of this overlay on another device than the VTEP (DirectRouting).
    private func isDirectRoute(_ r: Route) -> Bool {
        r.proto == OverlayRouteProtocol.number && r.table == Route.mainTable && config.network.contains(r.destination)
    }
}

/// Runs a removal for which "already gone" is success.
func ignoringNotFound(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let e as SystemError where e.isNotFound {
        // Gone already: the removal's goal holds.
    }
}
