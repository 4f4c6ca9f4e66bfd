// The subnet choice in flanneld's order, and never a subnet another host holds.

import NetTypes
import Overlay
import XCTest

/// A seeded generator, so a test's random choices repeat.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}

final class SubnetChoiceTests: XCTestCase {
    private let mac = MACAddress("0e:3b:4a:62:1d:7f")!

    private func chooser(_ json: String = #"{"Network": "10.5.0.0/16"}"#) throws -> SubnetChooser {
        SubnetChooser(config: try NetworkConfig(json: json))
    }

    private func lease(_ v4: String?, _ v6: String? = nil, ip: String?, created: Int64 = 1) -> Lease {
        Lease(subnets: SubnetKey(ipv4: v4.flatMap { CIDR($0) }, ipv6: v6.flatMap { CIDR($0) }),
              attributes: LeaseAttributes(publicIP: ip.flatMap { IPAddress($0) },
                                          backendData: VXLANLeaseData(vni: 1, vtepMAC: mac)),
              createRevision: created)
    }

    func testOurExistingLeaseComesFirst() throws {
        var rng = SplitMix64(state: 1)
        let ours = lease("10.5.7.0/24", ip: "192.168.0.2")
        let leases = [lease("10.5.1.0/24", ip: "192.168.0.1"), ours]
        let choice = try chooser().choose(leases: leases, publicIP: IPAddress("192.168.0.2"), publicIPv6: nil,
                                          previous: SubnetKey(ipv4: CIDR("10.5.9.0/24")), using: &rng)
        XCTAssertEqual(choice, .reuse(ours))
    }

    func testOurLeaseOutsideTheConfigIsReplaced() throws {
        var rng = SplitMix64(state: 2)
        let stale = lease("10.5.7.0/25", ip: "192.168.0.2")  // an older SubnetLen
        let choice = try chooser().choose(leases: [stale], publicIP: IPAddress("192.168.0.2"), publicIPv6: nil,
                                          previous: SubnetKey(ipv4: CIDR("10.5.9.0/24")), using: &rng)
        XCTAssertEqual(choice, .create(SubnetKey(ipv4: CIDR("10.5.9.0/24")), source: .previous, replacing: stale))
    }

    func testPreviousSubnetWhenFreeAndValid() throws {
        let c = try chooser()
        var rng = SplitMix64(state: 3)
        let others = [lease("10.5.1.0/24", ip: "192.168.0.1")]
        XCTAssertEqual(try c.choose(leases: others, publicIP: IPAddress("192.168.0.9"), publicIPv6: nil,
                                    previous: SubnetKey(ipv4: CIDR("10.5.4.0/24")), using: &rng),
                       .create(SubnetKey(ipv4: CIDR("10.5.4.0/24")), source: .previous, replacing: nil))
        // Held by another host (here by an overlapping lease of another length): not taken.
        let holder = [lease("10.5.4.0/23", ip: "192.168.0.1")]
        guard case .create(let k, .random, nil) = try c.choose(leases: holder, publicIP: IPAddress("192.168.0.9"),
                                                               publicIPv6: nil, previous: SubnetKey(ipv4: CIDR("10.5.4.0/24")),
                                                               using: &rng) else { return XCTFail() }
        XCTAssertFalse(k.overlaps(holder[0].subnets))
        // Outside the range (the network's first subnet), or of another length: not taken.
        for bad in ["10.5.0.0/24", "10.5.4.0/25", "10.6.4.0/24"] {
            guard case .create(_, let source, nil) = try c.choose(leases: [], publicIP: nil, publicIPv6: nil,
                                                                  previous: SubnetKey(ipv4: CIDR(bad)), using: &rng) else {
                return XCTFail(bad)
            }
            XCTAssertEqual(source, .random, bad)
        }
    }

    func testRandomChoiceIsAmongTheFirstHundredFreeAndNeverHeld() throws {
        let c = try chooser(#"{"Network": "10.5.0.0/16", "SubnetMin": "10.5.10.0"}"#)
        // Every other subnet from 10.5.10.0 is held, so the first 100 free ones are 10.5.11, 13, ... 209.
        let held = stride(from: 10, through: 255, by: 2).map { lease("10.5.\($0).0/24", ip: "192.168.1.\($0)") }
        let range = try XCTUnwrap(c.config.ipv4)
        let free = c.freeSubnets(in: range, taken: held.compactMap(\.subnets.ipv4))
        XCTAssertEqual(free.count, 100)
        XCTAssertEqual(free.first, CIDR("10.5.11.0/24"))
        XCTAssertEqual(free.last, CIDR("10.5.209.0/24"))
        var seen = Set<CIDR>()
        for seed in 0..<400 {
            var rng = SplitMix64(state: UInt64(seed))
            guard case .create(let key, .random, nil) = try c.choose(leases: held, publicIP: IPAddress("192.168.2.1"),
                                                                     publicIPv6: nil, previous: nil, using: &rng) else {
                return XCTFail("seed \(seed)")
            }
            let subnet = try XCTUnwrap(key.ipv4)
            XCTAssertTrue(free.contains(subnet), "\(subnet) is not among the first 100 free")
            seen.insert(subnet)
        }
        XCTAssertGreaterThan(seen.count, 50, "the choice is spread over the candidates")
    }

    func testExhaustedRangeIsAnError() throws {
        let c = try chooser(#"{"Network": "10.5.0.0/16", "SubnetMin": "10.5.1.0", "SubnetMax": "10.5.2.0"}"#)
        var rng = SplitMix64(state: 4)
        let full = [lease("10.5.1.0/24", ip: "192.168.0.1"), lease("10.5.2.0/24", ip: "192.168.0.2")]
        XCTAssertThrowsError(try c.choose(leases: full, publicIP: IPAddress("192.168.0.3"), publicIPv6: nil,
                                          previous: nil, using: &rng)) { error in
            XCTAssertEqual("\(error)", "no free /24 subnet between 10.5.1.0 and 10.5.2.0 in 10.5.0.0/16")
        }
    }

    func testDualStackPicksBothFamiliesAndMatchesByPublicIP() throws {
        let c = try chooser(#"{"Network": "10.5.0.0/16", "EnableIPv6": true, "IPv6Network": "fc00::/48"}"#)
        var rng = SplitMix64(state: 5)
        let other = lease("10.5.1.0/24", "fc00:0:0:1::/64", ip: "192.168.0.1")
        guard case .create(let key, .random, nil) = try c.choose(leases: [other], publicIP: IPAddress("192.168.0.2"),
                                                                 publicIPv6: IPAddress("fd00::2"), previous: nil,
                                                                 using: &rng) else { return XCTFail() }
        XCTAssertEqual(key.ipv4?.prefixLength, 24)
        XCTAssertEqual(key.ipv6?.prefixLength, 64)
        XCTAssertFalse(key.overlaps(other.subnets))
        XCTAssertTrue(c.admits(key))
        // A v4-only lease does not fit a dual-stack config, nor a dual one a v4-only config.
        XCTAssertFalse(c.admits(SubnetKey(ipv4: CIDR("10.5.3.0/24"))))
        XCTAssertFalse(try chooser().admits(SubnetKey(ipv4: CIDR("10.5.3.0/24"), ipv6: CIDR("fc00:0:0:3::/64"))))
    }

    func testOverlappingDualStackKeysAreSettledByCreateRevision() {
        let first = lease("10.5.1.0/24", "fc00:0:0:1::/64", ip: "192.168.0.1", created: 5)
        let second = lease("10.5.1.0/24", "fc00:0:0:2::/64", ip: "192.168.0.2", created: 9)
        let unrelated = lease("10.5.2.0/24", "fc00:0:0:3::/64", ip: "192.168.0.3", created: 1)
        XCTAssertTrue(SubnetChooser.isOutranked(second, among: [first, second, unrelated]))
        XCTAssertFalse(SubnetChooser.isOutranked(first, among: [first, second, unrelated]))
        XCTAssertFalse(SubnetChooser.isOutranked(unrelated, among: [first, second, unrelated]))
    }
}
