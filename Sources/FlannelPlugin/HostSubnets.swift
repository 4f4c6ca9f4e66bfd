// What ADD takes from the overlay daemon's subnet.env (read by Overlay's `SubnetEnv`): the
// cluster network and this host's subnet per address family, the overlay MTU and whether
// the daemon masquerades. Checked complete before anything is built from it.

import CNI
import NetTypes
import Overlay
import SystemKit

/// The host's share of the overlay, from a complete subnet.env.
public struct HostSubnets: Sendable, Hashable {
    /// One address family: the cluster network and the subnet leased to this host.
    public struct Family: Sendable, Hashable {
        public var network: CIDR
        /// The leased subnet itself ("10.5.1.0/24"; subnet.env says "10.5.1.1/24").
        public var subnet: CIDR
    }

    public var ipv4: Family?
    public var ipv6: Family?
    public var mtu: Int
    /// FLANNEL_IPMASQ: the daemon masquerades traffic leaving the cluster network.
    public var ipMasq: Bool

    /// The file at `path`, checked complete; nil when there is no file. An unreadable file
    /// is code 5; one that does not parse, or lacks a key, code 7 naming the file and the key.
    public static func loadIfPresent(_ path: String) throws(CNIError) -> HostSubnets? {
        let env: SubnetEnv?
        do {
            env = try SubnetEnv.read(path)
        } catch let e as FormatError {
            throw CNIError.invalidConfig("\(e)")
        } catch {
            throw CNIError.wrapping(error, context: "read subnet.env")
        }
        return try env.map { e throws(CNIError) in try HostSubnets(e, file: path) }
    }

    /// `loadIfPresent`, with a missing file as code 11: the daemon has not written it yet
    /// (it is starting, or not running), and the same ADD may succeed later.
    public static func load(_ path: String) throws(CNIError) -> HostSubnets {
        guard let host = try loadIfPresent(path) else {
            throw CNIError.tryAgainLater("subnet.env \(path) does not exist: the overlay daemon (overlayd or flanneld) "
                                         + "has not written it; is it running on this host?")
        }
        return host
    }

    /// Flannel's rule: a network and a subnet of either family, FLANNEL_MTU and FLANNEL_IPMASQ.
    /// A family with its network but not its subnet (or the reverse) is refused as well:
    /// flannel would route to a network it hands out no address of.
    init(_ env: SubnetEnv, file: String) throws(CNIError) {
        var missing = env.missingKeys
        if missing.isEmpty {
            if (env.network == nil) != (env.subnet == nil) {
                missing.append(env.network == nil ? SubnetEnv.networkKey : SubnetEnv.subnetKey)
            }
            if (env.ipv6Network == nil) != (env.ipv6Subnet == nil) {
                missing.append(env.ipv6Network == nil ? SubnetEnv.ipv6NetworkKey : SubnetEnv.ipv6SubnetKey)
            }
        }
        guard missing.isEmpty, let mtu = env.mtu, let ipMasq = env.ipMasq else {
            throw CNIError.invalidConfig("subnet.env \(file) is missing \(missing.joined(separator: ", "))",
                                         details: "the overlay daemon writes FLANNEL_NETWORK, FLANNEL_SUBNET, "
                                             + "FLANNEL_MTU and FLANNEL_IPMASQ (and the FLANNEL_IPV6_* keys with IPv6)")
        }
        self.mtu = mtu
        self.ipMasq = ipMasq
        if let n = env.network, let s = env.subnet { ipv4 = Family(network: n.network, subnet: s.network) }
        if let n = env.ipv6Network, let s = env.ipv6Subnet { ipv6 = Family(network: n.network, subnet: s.network) }
    }
}
