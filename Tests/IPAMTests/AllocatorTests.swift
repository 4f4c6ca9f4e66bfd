import XCTest
import NetTypes
@testable import IPAM

func ip(_ s: String) -> IPAddress { IPAddress(s)! }

/// An allocator over a memory store for a single legacy-form range.
func memoryAllocator(_ ipam: String, store: MemoryStore = MemoryStore()) throws -> (Allocator, MemoryStore) {
    (Allocator(settings: try settings(#"{"name": "n", "ipam": "# + ipam + "}"), store: store), store)
}

final class AllocatorTests: XCTestCase {
    func testRoundRobinSkipsGatewayAndWraps() throws {
        let (a, store) = try memoryAllocator(#"{"subnet": "10.0.0.0/29"}"#)  // .1 gw, .2-.6 usable
        var got: [String] = []
        for i in 0..<5 {
            let r = try a.allocate(containerID: "c\(i)", ifName: "eth0")
            XCTAssertEqual(r.count, 1)
            XCTAssertEqual(r[0].gateway, ip("10.0.0.1"))
            XCTAssertEqual(r[0].rangeSetIndex, 0)
            got.append(r[0].address.description)
        }
        XCTAssertEqual(got, ["10.0.0.2/29", "10.0.0.3/29", "10.0.0.4/29", "10.0.0.5/29", "10.0.0.6/29"])
        XCTAssertEqual(store.lastReserved[0], ip("10.0.0.6"))
        // Free .3, then the next allocation wraps past the end and the gateway to .3.
        try a.release(containerID: "c1", ifName: "eth0")
        XCTAssertEqual(try a.allocate(containerID: "new", ifName: "eth0")[0].address.address, ip("10.0.0.3"))
    }

    func testRoundRobinContinuesAfterLastReservedNotLowestFree() throws {
        let (a, _) = try memoryAllocator(#"{"subnet": "10.0.0.0/24"}"#)
        _ = try a.allocate(containerID: "a", ifName: "eth0")   // .2
        _ = try a.allocate(containerID: "b", ifName: "eth0")   // .3
        try a.release(containerID: "a", ifName: "eth0")
        // A crash-looping container does not get .2 back at once: round robin goes on to .4.
        XCTAssertEqual(try a.allocate(containerID: "a", ifName: "eth0")[0].address.address, ip("10.0.0.4"))
    }

    func testLastReservedOutsideTheSetStartsAtRangeStart() throws {
        let store = MemoryStore(lastReserved: [0: ip("192.168.9.9")])
        let (a, _) = try memoryAllocator(#"{"subnet": "10.0.0.0/24", "rangeStart": "10.0.0.50"}"#, store: store)
        XCTAssertEqual(try a.allocate(containerID: "a", ifName: "eth0")[0].address.address, ip("10.0.0.50"))
    }

    func testSkipsNetworkAndBroadcastWhenTheRangeCoversThem() throws {
        let (a, _) = try memoryAllocator(#"{"subnet": "10.0.0.0/29", "rangeStart": "10.0.0.0", "rangeEnd": "10.0.0.7", "gateway": "10.0.0.3"}"#)
        let got = try (0..<5).map { try a.allocate(containerID: "c\($0)", ifName: "eth0")[0].address.address }
        XCTAssertEqual(got, ["10.0.0.1", "10.0.0.2", "10.0.0.4", "10.0.0.5", "10.0.0.6"].map(ip))
        XCTAssertThrowsError(try a.allocate(containerID: "x", ifName: "eth0")) { e in
            XCTAssertEqual(e as? IPAMError, .rangeExhausted(rangeSetIndex: 0, rangeSet: "10.0.0.0-10.0.0.7", addressCount: 5))
        }
        // Requesting the network or broadcast address is refused too.
        XCTAssertThrowsError(try a.allocate(containerID: "y", ifName: "eth0", requested: [ip("10.0.0.7")]))
        XCTAssertThrowsError(try a.allocate(containerID: "y", ifName: "eth0", requested: [ip("10.0.0.0")]))
    }

    func testMultipleRangesInOneSetAreWalkedInOrderAndWrap() throws {
        let (a, store) = try memoryAllocator(#"{"ranges": [[{"subnet": "10.0.0.0/24", "rangeStart": "10.0.0.10", "rangeEnd": "10.0.0.11"}, {"subnet": "10.9.0.0/24", "rangeStart": "10.9.0.20", "rangeEnd": "10.9.0.21"}]]}"#)
        let got = try (0..<4).map { try a.allocate(containerID: "c\($0)", ifName: "eth0")[0] }
        XCTAssertEqual(got.map(\.address.description), ["10.0.0.10/24", "10.0.0.11/24", "10.9.0.20/24", "10.9.0.21/24"])
        XCTAssertEqual(got.map(\.gateway), [ip("10.0.0.1"), ip("10.0.0.1"), ip("10.9.0.1"), ip("10.9.0.1")])
        try a.release(containerID: "c0", ifName: "eth0")
        XCTAssertEqual(store.lastReserved[0], ip("10.9.0.21"))
        XCTAssertEqual(try a.allocate(containerID: "w", ifName: "eth0")[0].address.address, ip("10.0.0.10"))
    }

    func testExhaustionNamesTheRangeAndItsSize() throws {
        // A /30: network .0, gateway .1, broadcast .3: one address, .2.
        let (a, _) = try memoryAllocator(#"{"subnet": "192.168.7.0/30"}"#)
        XCTAssertEqual(try a.allocate(containerID: "a", ifName: "eth0")[0].address.description, "192.168.7.2/30")
        XCTAssertThrowsError(try a.allocate(containerID: "b", ifName: "eth0")) { e in
            XCTAssertEqual(e as? IPAMError, .rangeExhausted(rangeSetIndex: 0, rangeSet: "192.168.7.1-192.168.7.2", addressCount: 1))
            XCTAssertEqual((e as? IPAMError)?.message,
                           "no IP addresses available in range set 0 (192.168.7.1-192.168.7.2): all 1 allocatable address is in use; release unused containers or widen the range")
        }
        // rangeStart..rangeEnd of 3 addresses, gateway outside the span.
        let (b, _) = try memoryAllocator(#"{"subnet": "10.5.0.0/24", "rangeStart": "10.5.0.100", "rangeEnd": "10.5.0.102"}"#)
        for i in 0..<3 { _ = try b.allocate(containerID: "c\(i)", ifName: "eth0") }
        XCTAssertEqual(try b.usage(), [RangeSetUsage(rangeSetIndex: 0, rangeSet: "10.5.0.100-10.5.0.102", allocatable: 3, reserved: 3)])
        XCTAssertTrue(try b.usage()[0].isExhausted)
        XCTAssertThrowsError(try b.allocate(containerID: "x", ifName: "eth0")) { e in
            let msg = (e as? IPAMError)?.message ?? ""
            XCTAssertTrue(msg.contains("range set 0 (10.5.0.100-10.5.0.102)"), msg)
            XCTAssertTrue(msg.contains("all 3 allocatable addresses are in use"), msg)
            XCTAssertEqual((e as? IPAMError)?.cniCode, 11)
        }
    }

    func testDualStackGivesOneAddressPerRangeSet() throws {
        let (a, store) = try memoryAllocator(#"{"ranges": [[{"subnet": "10.1.0.0/24"}], [{"subnet": "fd00:1::/64", "rangeStart": "fd00:1::10", "rangeEnd": "fd00:1::20"}]]}"#)
        let r = try a.allocate(containerID: "c", ifName: "eth0")
        XCTAssertEqual(r, [
            Allocation(address: CIDR("10.1.0.2/24")!, gateway: ip("10.1.0.1"), rangeSetIndex: 0),
            Allocation(address: CIDR("fd00:1::10/64")!, gateway: ip("fd00:1::1"), rangeSetIndex: 1),
        ])
        XCTAssertEqual(store.lastReserved, [0: ip("10.1.0.2"), 1: ip("fd00:1::10")])
        XCTAssertEqual(try a.usage().map(\.reserved), [1, 1])
        XCTAssertEqual(try a.usage().map(\.allocatable), [253, 17])
        XCTAssertFalse(try a.usage()[1].isExhausted)
        XCTAssertEqual(try a.check(containerID: "c", ifName: "eth0").count, 2)
        XCTAssertEqual(Set(try a.release(containerID: "c", ifName: "eth0")), [ip("10.1.0.2"), ip("fd00:1::10")])
        XCTAssertTrue(try a.reservations().isEmpty)
    }

    func testFailureInSecondSetReleasesTheFirst() throws {
        let (a, _) = try memoryAllocator(#"{"ranges": [[{"subnet": "10.1.0.0/24"}], [{"subnet": "10.2.0.0/30"}]]}"#)
        _ = try a.allocate(containerID: "first", ifName: "eth0")
        XCTAssertThrowsError(try a.allocate(containerID: "second", ifName: "eth0")) { e in
            guard case .rangeExhausted(1, _, 1)? = e as? IPAMError else { return XCTFail("\(e)") }
        }
        XCTAssertEqual(try a.reservations().map(\.containerID), ["first", "first"])
    }

    func testRequestedAddresses() throws {
        let (a, _) = try memoryAllocator(#"{"ranges": [[{"subnet": "10.1.0.0/24"}], [{"subnet": "fd00::/64"}]]}"#)
        // Free: taken exactly; the other set allocates normally.
        let r = try a.allocate(containerID: "a", ifName: "eth0", requested: [ip("10.1.0.77")])
        XCTAssertEqual(r.map(\.address.description), ["10.1.0.77/24", "fd00::2/64"])
        // Both families requested.
        let r2 = try a.allocate(containerID: "b", ifName: "eth0", requested: [ip("fd00::99"), ip("10.1.0.5")])
        XCTAssertEqual(r2.map(\.address.description), ["10.1.0.5/24", "fd00::99/64"])
        // Taken by another container: error naming the owner; nothing of this call stays.
        XCTAssertThrowsError(try a.allocate(containerID: "c", ifName: "eth0", requested: [ip("fd00::99")])) { e in
            XCTAssertEqual(e as? IPAMError, .addressInUse(address: ip("fd00::99"), owner: "container b interface eth0"))
        }
        XCTAssertFalse(try a.reservations().contains { $0.containerID == "c" })
        // Out of every range set.
        XCTAssertThrowsError(try a.allocate(containerID: "c", ifName: "eth0", requested: [ip("10.9.9.9")])) { e in
            XCTAssertEqual((e as? IPAMError)?.cniCode, 7)
            XCTAssertTrue("\(e)".contains("10.9.9.9 is not inside any range set"), "\(e)")
        }
        // Two in one set, and the gateway.
        XCTAssertThrowsError(try a.allocate(containerID: "c", ifName: "eth0", requested: [ip("10.1.0.8"), ip("10.1.0.9")])) { e in
            XCTAssertTrue("\(e)".contains("request at most one address per range set"), "\(e)")
        }
        XCTAssertThrowsError(try a.allocate(containerID: "c", ifName: "eth0", requested: [ip("10.1.0.1")])) { e in
            XCTAssertTrue("\(e)".contains("is the gateway"), "\(e)")
        }
        XCTAssertFalse(try a.reservations().contains { $0.containerID == "c" })
    }

    func testDuplicateAddIsRefused() throws {
        let (a, _) = try memoryAllocator(#"{"subnet": "10.1.0.0/24"}"#)
        _ = try a.allocate(containerID: "a", ifName: "eth0")
        XCTAssertThrowsError(try a.allocate(containerID: "a", ifName: "eth0")) { e in
            XCTAssertEqual(e as? IPAMError, .alreadyAllocated(containerID: "a", ifName: "eth0", address: ip("10.1.0.2")))
        }
        // Another interface of the same container is a new attachment.
        XCTAssertEqual(try a.allocate(containerID: "a", ifName: "net1")[0].address.address, ip("10.1.0.3"))
    }

    func testReleaseIsIdempotentAndPerInterface() throws {
        let (a, _) = try memoryAllocator(#"{"subnet": "10.1.0.0/24"}"#)
        _ = try a.allocate(containerID: "a", ifName: "eth0")
        _ = try a.allocate(containerID: "a", ifName: "net1")
        XCTAssertEqual(try a.release(containerID: "a", ifName: "eth0"), [ip("10.1.0.2")])
        XCTAssertEqual(try a.release(containerID: "a", ifName: "eth0"), [])
        XCTAssertEqual(try a.release(containerID: "never", ifName: "eth0"), [])
        XCTAssertEqual(try a.release(containerID: " ", ifName: "eth0"), [])
        XCTAssertEqual(try a.reservations().map(\.address), [ip("10.1.0.3")])
    }

    func testLegacyReservationsAreReleasedAndChecked() throws {
        let store = MemoryStore(reservations: [
            Reservation(address: ip("10.1.0.9"), fileContents: "old-container\n"),
            Reservation(address: ip("10.1.0.10"), fileContents: "other\r\neth0"),
        ])
        let (a, _) = try memoryAllocator(#"{"subnet": "10.1.0.0/24"}"#, store: store)
        XCTAssertEqual(store.entries[ip("10.1.0.9")]?.ifName, nil)
        XCTAssertEqual(try a.check(containerID: "old-container", ifName: "eth0").map(\.address), [ip("10.1.0.9")])
        XCTAssertEqual(try a.release(containerID: "old-container", ifName: "eth0"), [ip("10.1.0.9")])
        XCTAssertEqual(try a.reservations().map(\.containerID), ["other"])
    }

    func testCheck() throws {
        let (a, _) = try memoryAllocator(#"{"ranges": [[{"subnet": "10.1.0.0/24"}], [{"subnet": "fd00::/64"}]]}"#)
        _ = try a.allocate(containerID: "a", ifName: "eth0")
        XCTAssertEqual(try a.check(containerID: "a", ifName: "eth0").count, 2)
        XCTAssertThrowsError(try a.check(containerID: "a", ifName: "eth1")) { e in
            XCTAssertEqual(e as? IPAMError, .notAllocated(containerID: "a", ifName: "eth1", rangeSet: "10.1.0.1-10.1.0.254"))
        }
        // Losing one family's address fails CHECK and names that set.
        try a.store.release(ip("fd00::2"))
        XCTAssertThrowsError(try a.check(containerID: "a", ifName: "eth0")) { e in
            guard case .notAllocated(_, _, let set)? = e as? IPAMError else { return XCTFail("\(e)") }
            XCTAssertTrue(set.hasPrefix("fd00::1-"), set)
        }
    }

    func testGCReleasesEverythingNotValid() throws {
        let store = MemoryStore(reservations: [Reservation(address: ip("10.1.0.200"), fileContents: "legacy-keep"),
                                               Reservation(address: ip("10.1.0.201"), fileContents: "legacy-drop")])
        let (a, _) = try memoryAllocator(#"{"subnet": "10.1.0.0/24"}"#, store: store)
        for id in ["keep", "gone1", "gone2"] { _ = try a.allocate(containerID: id, ifName: "eth0") }
        _ = try a.allocate(containerID: "keep", ifName: "net1")
        let released = try a.gc(validAttachments: [AttachmentID(containerID: "keep", ifName: "eth0"),
                                                   AttachmentID(containerID: "legacy-keep", ifName: "eth0")])
        XCTAssertEqual(Set(released), [ip("10.1.0.3"), ip("10.1.0.4"), ip("10.1.0.5"), ip("10.1.0.201")])
        XCTAssertEqual(try a.reservations().map(\.address), [ip("10.1.0.2"), ip("10.1.0.200")])
        XCTAssertEqual(try a.gc(validAttachments: []).count, 2)
        XCTAssertTrue(try a.reservations().isEmpty)
    }

    func testBadIdentifiersAreRejected() throws {
        let (a, _) = try memoryAllocator(#"{"subnet": "10.1.0.0/24"}"#)
        for (id, ifName) in [("", "eth0"), ("a\r\nb", "eth0"), ("a", ""), ("a", "eth0/x"), ("a", "et h0")] {
            XCTAssertThrowsError(try a.allocate(containerID: id, ifName: ifName)) { e in
                XCTAssertEqual((e as? IPAMError)?.cniCode, 7)
            }
        }
    }

    func testAddReturnsRoutesAndDNS() throws {
        let dir = try makeTempDir(self)
        try "nameserver 10.0.0.53\nsearch svc.test\n".write(toFile: dir + "/resolv.conf", atomically: true, encoding: .utf8)
        let (a, _) = try memoryAllocator(#"{"subnet": "10.1.0.0/24", "routes": [{"dst": "0.0.0.0/0"}], "resolvConf": "\#(dir)/resolv.conf"}"#)
        let out = try a.add(containerID: "a", ifName: "eth0")
        XCTAssertEqual(out.ips.map(\.address.description), ["10.1.0.2/24"])
        XCTAssertEqual(out.routes, [RouteConfig(dst: CIDR("0.0.0.0/0")!)])
        XCTAssertEqual(out.dns, DNSSettings(nameservers: ["10.0.0.53"], search: ["svc.test"]))
        // A missing resolv.conf fails before anything is reserved.
        let (b, bs) = try memoryAllocator(#"{"subnet": "10.1.0.0/24", "resolvConf": "\#(dir)/nope"}"#)
        XCTAssertThrowsError(try b.add(containerID: "a", ifName: "eth0"))
        XCTAssertTrue(bs.entries.isEmpty)
    }
}

final class RequestedIPsTests: XCTestCase {
    func testCollectsFromAllSourcesInReferenceOrder() throws {
        let got = try RequestedIPs.collect(cniArgs: "IgnoreUnknown=1;K8S_POD_NAME=web;IP=10.1.0.9",
                                           argsIPs: ["fd00::9"], runtimeIPs: ["10.1.0.9/24", "10.2.0.3"])
        XCTAssertEqual(got, [ip("10.1.0.9"), ip("fd00::9"), ip("10.2.0.3")])
        XCTAssertEqual(try RequestedIPs.fromCNIArgs("IP=10.1.0.2,fd00::2"), [ip("10.1.0.2"), ip("fd00::2")])
        XCTAssertEqual(try RequestedIPs.fromCNIArgs("FOO=bar"), [])
        XCTAssertThrowsError(try RequestedIPs.fromCNIArgs("IP=10.1.0")) { e in
            XCTAssertEqual(e as? IPAMError, .invalidConfig("CNI_ARGS IP: \"10.1.0\" is not an IP address"))
        }
        XCTAssertThrowsError(try RequestedIPs.collect(cniArgs: nil, argsIPs: [], runtimeIPs: ["nope"]))
    }

    func testLegacyFileContents() {
        XCTAssertEqual(Reservation(address: ip("10.0.0.2"), containerID: "c", ifName: "eth0").fileContents, "c\r\neth0")
        XCTAssertEqual(Reservation(address: ip("10.0.0.2"), containerID: "c", ifName: nil).fileContents, "c")
        let parsed = Reservation(address: ip("10.0.0.2"), fileContents: "  c \r\neth0\n")
        XCTAssertEqual(parsed, Reservation(address: ip("10.0.0.2"), containerID: "c", ifName: "eth0"))
    }
}
