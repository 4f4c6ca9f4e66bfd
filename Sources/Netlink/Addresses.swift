// Interface addresses (RTM_NEWADDR/DELADDR/GETADDR) through libnl's rtnl_addr.

import CNetlink
import NetTypes
import SystemKit
import Glibc

/// Address scopes (rtnetlink RT_SCOPE_*).
public struct Scope: RawRepresentable, Hashable, Sendable {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let universe = Scope(rawValue: 0)
    public static let site = Scope(rawValue: 200)
    public static let link = Scope(rawValue: 253)
    public static let host = Scope(rawValue: 254)
    public static let nowhere = Scope(rawValue: 255)
}

/// An address on an interface.
public struct InterfaceAddress: Sendable, Hashable {
    public var index: Int32
    /// The local address with its prefix length ("10.1.0.2/24").
    public var address: CIDR
    public var broadcast: IPAddress?
    public var scope: Scope
    /// IFA_F_* flags (see `isNoDAD`).
    public var flags: UInt32
    /// IFA_F_NODAD: duplicate address detection is off for this (IPv6) address.
    public var isNoDAD: Bool { flags & AddressFlag.noDAD != 0 }
    public var label: String?
    public var family: IPAddress.Family { address.family }
}

extension RouteSocket {
    /// Adds an address. `broadcast` applies to IPv4 (pass `cidr.lastAddress` for the usual one);
    /// `noDAD` skips IPv6 duplicate address detection.
    public func addAddress(_ index: Int32, _ address: CIDR, broadcast: IPAddress? = nil,
                           scope: Scope? = nil, noDAD: Bool = false) throws {
        try changeAddress(add: true, index, address, broadcast: broadcast, scope: scope, noDAD: noDAD)
    }

    public func deleteAddress(_ index: Int32, _ address: CIDR) throws {
        try changeAddress(add: false, index, address, broadcast: nil, scope: nil, noDAD: false)
    }

    private func changeAddress(add: Bool, _ index: Int32, _ address: CIDR, broadcast: IPAddress?,
                               scope: Scope?, noDAD: Bool) throws {
        let op = add ? "add address" : "delete address", object = "\(address) on ifindex \(index)"
        guard let a = rtnl_addr_alloc() else { throw NetlinkError(operation: op, object: object, errno: .noMemory) }
        defer { rtnl_addr_put(a) }
        rtnl_addr_set_ifindex(a, index)
        rtnl_addr_set_family(a, address.family.linuxAF)
        let local = try NLAddr(address.address, prefixLength: address.prefixLength)
        try checkSetter(op, object, "local") { local.pass { rtnl_addr_set_local(a, $0) } }
        rtnl_addr_set_prefixlen(a, Int32(address.prefixLength))
        if let broadcast {
            let b = try NLAddr(broadcast)
            try checkSetter(op, object, "broadcast") { b.pass { rtnl_addr_set_broadcast(a, $0) } }
        }
        if let scope { rtnl_addr_set_scope(a, Int32(scope.rawValue)) }
        if noDAD { rtnl_addr_set_flags(a, AddressFlag.noDAD) }
        if add {
            try perform("add address", object) { rtnl_addr_add(sock, a, RTM.create | RTM.excl) }
        } else {
            try perform("delete address", object) { rtnl_addr_delete(sock, a, 0) }
        }
    }

    /// Addresses of the namespace, optionally of one link and/or one family.
    public func addresses(index: Int32? = nil, family: IPAddress.Family? = nil) throws -> [InterfaceAddress] {
        try list(.addresses, family: family?.linuxAF ?? AF_UNSPEC) { a in
            let idx = rtnl_addr_get_ifindex(a)
            if let index, idx != index { return nil }
            guard let local = cidr(rtnl_addr_get_local(a)) else { return nil }
            if let family, local.family != family { return nil }
            return InterfaceAddress(
                index: idx, address: local, broadcast: ipAddress(rtnl_addr_get_broadcast(a)),
                scope: Scope(rawValue: UInt8(truncatingIfNeeded: rtnl_addr_get_scope(a))),
                flags: UInt32(truncatingIfNeeded: rtnl_addr_get_flags(a)),
                label: rtnl_addr_get_label(a).map { String(cString: $0) })
        }
    }
}
