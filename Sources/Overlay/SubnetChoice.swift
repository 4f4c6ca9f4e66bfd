// Which subnet a host leases, in flanneld's order (pkg/subnet/etcd/local_manager.go):
//   1. an existing lease with our public IP, if it still fits the config (it is renewed);
//      one that no longer fits is replaced;
//   2. the subnet of the previous subnet.env, if it fits the config and no lease overlaps it;
//   3. a random subnet among the first 100 free ones from SubnetMin to SubnetMax.
// "Free" means no lease overlaps it, whatever its length. The choice is made on a listing;
// the create-if-absent that follows settles races on one key, and `outranks` settles the
// rarer one between two dual-stack keys sharing a subnet of one family.

import NetTypes

/// What the host should do to hold a subnet.
public enum SubnetChoice: Sendable, Hashable {
    /// Our lease exists and fits the config: keep it (write our attributes, renew it).
    case reuse(Lease)
    /// Create a lease for `subnets`. `replacing` is our own lease that no longer fits the
    /// config, to delete first.
    case create(SubnetKey, source: Source, replacing: Lease?)

    public enum Source: String, Sendable, Hashable {
        /// From the previous subnet.env.
        case previous
        /// Picked at random among the free subnets.
        case random
    }
}

/// No subnet is free in a family's range.
public struct SubnetsExhausted: Error, Sendable, Hashable, CustomStringConvertible {
    public var range: SubnetRange
    public var description: String {
        "no free /\(range.subnetLength) subnet between \(range.subnetMin) and \(range.subnetMax) in \(range.network)"
    }
}

public struct SubnetChooser: Sendable {
    public var config: NetworkConfig
    /// flanneld draws from this many free subnets, the first ones from SubnetMin on.
    public static let candidateCount = 100

    public init(config: NetworkConfig) { self.config = config }

    /// Decides from `leases` (every lease in the store) for a host with these public
    /// addresses; `previous` holds the subnets of the last subnet.env, if any.
    public func choose(leases: [Lease], publicIP: IPAddress?, publicIPv6: IPAddress?, previous: SubnetKey?,
                       using rng: inout some RandomNumberGenerator) throws(SubnetsExhausted) -> SubnetChoice {
        let own = ownLease(in: leases, publicIP: publicIP, publicIPv6: publicIPv6)
        if let own, admits(own.subnets) { return .reuse(own) }
        let others = leases.filter { $0.subnets != own?.subnets }
        if let previous, admits(previous), !others.contains(where: { $0.subnets.overlaps(previous) }) {
            return .create(previous, source: .previous, replacing: own)
        }
        var key = SubnetKey(ipv4: nil)
        if let range = config.ipv4 {
            key.ipv4 = try pick(in: range, taken: others.compactMap(\.subnets.ipv4), using: &rng)
        }
        if let range = config.ipv6 {
            key.ipv6 = try pick(in: range, taken: others.compactMap(\.subnets.ipv6), using: &rng)
        }
        return .create(key, source: .random, replacing: own)
    }

    /// Whether a lease for `subnets` fits the config: each enabled family's subnet admitted by
    /// its range, and no subnet of a family the config does not enable.
    public func admits(_ subnets: SubnetKey) -> Bool {
        func fits(_ range: SubnetRange?, _ subnet: CIDR?) -> Bool {
            guard let range else { return subnet == nil }
            return subnet.map(range.admits) ?? false
        }
        return fits(config.ipv4, subnets.ipv4) && fits(config.ipv6, subnets.ipv6)
    }

    /// Up to `limit` free subnets of `range`, in address order.
    public func freeSubnets(in range: SubnetRange, taken: [CIDR], limit: Int = candidateCount) -> [CIDR] {
        // Same-length leases are the common case and are looked up by address; others are
        // compared one by one.
        let sameLength = Set(taken.filter { $0.prefixLength == range.subnetLength }.map(\.networkAddress))
        let otherLengths = taken.filter { $0.prefixLength != range.subnetLength }
        var free: [CIDR] = []
        var candidate: CIDR? = range.subnet(at: range.subnetMin)
        while let c = candidate, c.address <= range.subnetMax, free.count < limit {
            if !sameLength.contains(c.address) && !otherLengths.contains(where: { $0.overlaps(c) }) {
                free.append(c)
            }
            candidate = SubnetRange.next(after: c)
        }
        return free
    }

    private func pick(in range: SubnetRange, taken: [CIDR],
                      using rng: inout some RandomNumberGenerator) throws(SubnetsExhausted) -> CIDR {
        let free = freeSubnets(in: range, taken: taken)
        guard let chosen = free.randomElement(using: &rng) else { throw SubnetsExhausted(range: range) }
        return chosen
    }

    /// Our lease: the one with our public IPv4 address, or, for a host without one, our IPv6.
    private func ownLease(in leases: [Lease], publicIP: IPAddress?, publicIPv6: IPAddress?) -> Lease? {
        if let publicIP { return leases.first { $0.attributes.publicIP == publicIP } }
        if let publicIPv6 { return leases.first { $0.attributes.publicIPv6 == publicIPv6 } }
        return nil
    }

    /// Whether another lease overlapping `lease` was created before it: then `lease` must be
    /// given up. Two keys can share an IPv4 subnet only when their IPv6 parts differ, which
    /// create-if-absent on the key alone does not prevent.
    public static func isOutranked(_ lease: Lease, among leases: [Lease]) -> Bool {
        leases.contains { other in
            other.subnets != lease.subnets && other.subnets.overlaps(lease.subnets)
                && other.createRevision < lease.createRevision
        }
    }
}
