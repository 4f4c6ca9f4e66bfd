// overlayd on three simulated hosts sharing an embedded store file: leases, subnet.env,
// the kernel entries on every host, traffic between pods, the lease table, /healthz, and
// config handling.

import Foundation
import NetTypes
import Overlay
import OverlayStores
import TestSupport
import XCTest

final class DaemonTests: XCTestCase {
    /// Three hosts, each finding its underlay a different way (by name, by address, by the
    /// default route): distinct subnets, flannel's subnet.env, the VTEP and every peer's
    /// entries, pods reaching each other over ICMP and TCP, and the lease table.
    func testThreeHostsLeaseDistinctSubnetsAndReachEachOther() throws {
        let w = try DaemonWorld(self, hosts: 3)
        try w.putConfig(basicConfig)
        let (h1, h2, h3) = (w.hosts[0], w.hosts[1], w.hosts[2])
        try h1.start(w.storeArguments + ["--iface", "eth0"])
        try h2.start(w.storeArguments + ["--iface", "198.18.0.12"])
        try h3.start(w.storeArguments)   // the default route's interface
        try w.waitUntilReady()

        let subnets = try w.hosts.map { try $0.subnet() }
        XCTAssertEqual(Set(subnets).count, 3, "each host its own subnet: \(subnets)")
        for (h, sn) in zip(w.hosts, subnets) {
            XCTAssertTrue(testNetwork.contains(sn) && sn.prefixLength == 24 && sn != CIDR("10.244.0.0/24")!,
                          "host \(h.index): \(sn) is a /24 of \(testNetwork) other than the first")
            let text = try String(contentsOfFile: h.subnetFile, encoding: .utf8)
            XCTAssertEqual(text, "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=\(sn.networkAddress.next!)/24\n"
                           + "FLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n", "host \(h.index)")
            let vtep = try h.vtep()
            XCTAssertEqual(vtep.mtu, 1450, "underlay 1500 - 50")
            XCTAssertEqual(vtep.vni, 1)
            XCTAssertEqual(vtep.learning, false)
            XCTAssertEqual(try h.vtepAddresses(), ["\(sn.networkAddress)/32"])
        }
        try w.waitForFullMesh()
        try w.addPodAddresses()
        for a in w.hosts {
            for b in w.hosts where a !== b {
                let r = try w.ping(a, b)
                XCTAssertTrue(r.ok, "ping host \(a.index) → \(b.index): \(r)")
            }
        }
        XCTAssertTrue(try w.tcpReaches(h1, h3))
        XCTAssertTrue(try w.tcpReaches(h3, h2))

        let leases = try w.leases()
        XCTAssertEqual(Set(leases.keys), Set(subnets.map { "\($0)" }), "overlayd leases: \(leases)")
        for (h, sn) in zip(w.hosts, subnets) {
            XCTAssertEqual(leases["\(sn)"]?.ip, "\(h.publicIP)")
            XCTAssertEqual(leases["\(sn)"]?.mac, try h.vtep().mac)
        }
    }

    /// /healthz says 503 and why while there is no config, a bad config is refused naming the
    /// field (by `config put`, and by the daemon when one reaches the store anyway), and a
    /// good one makes the host ready and tells systemd READY=1 (not before). The interface
    /// comes from FLANNELD_IFACE.
    func testHealthzWaitsForAValidConfigAndBadConfigsAreRefusedByField() throws {
        let w = try DaemonWorld(self, hosts: 1)
        let h = w.hosts[0]
        let notify = try NotifySocket(path: w.directory + "/notify.sock")
        try h.start(w.storeArguments, environment: ["FLANNELD_IFACE": "eth0", "NOTIFY_SOCKET": notify.path])
        try eventually("503 naming the missing config") {
            let r = h.healthz()
            return r.code == 503 && r.body.contains("/coreos.com/network/config")
        }

        let refused = w.overlayd(["config", "put", "-"], stdin: #"{"Network": "10.244.0.0/16", "SubnetLen": 31}"#)
        XCTAssertFalse(refused.ok, "a /31 subnet length is refused")
        XCTAssertTrue(refused.stderr.contains("SubnetLen"), "the field is named: \(refused.stderr)")
        let wrongBackend = w.overlayd(["config", "put", "-"], stdin: #"{"Network": "10.244.0.0/16", "Backend": {"Type": "udp"}}"#)
        XCTAssertTrue(wrongBackend.stderr.contains("Backend.Type") && wrongBackend.stderr.contains("vxlan"), "\(wrongBackend)")
        XCTAssertFalse(w.overlayd(["config", "get"]).ok, "nothing was stored")

        // A bad config written past the command (as etcdctl could): the daemon names the field too.
        try writeRawConfig(#"{"Network": "10.244.0.0/16", "SubnetMin": "10.244.9.0", "SubnetMax": "10.244.3.0"}"#, w)
        try eventually("503 naming SubnetMin") {
            let r = h.healthz()
            return r.code == 503 && r.body.contains("SubnetMin")
        }
        XCTAssertNil(try h.subnetEnv(), "no subnet.env without a valid config")
        XCTAssertEqual(notify.received(), [], "not ready yet")

        try w.putConfig(basicConfig)
        let took = try eventually("200 once the config is valid") { h.healthz().code == 200 }
        XCTAssertLessThan(took, 3)
        XCTAssertEqual(h.healthz().body, "ok\n")
        XCTAssertEqual(notify.received(), ["READY=1"])
        XCTAssertNotNil(try h.subnetEnv())
        XCTAssertEqual(w.overlayd(["config", "get"]).stdout, basicConfig + "\n")
    }

    /// A config whose backend MTU changes: every existing device follows (flannel's MTU is
    /// the underlay link's, the device's is 50 less), and so does subnet.env; then a VNI
    /// change moves every host to the new device.
    func testConfigChangesReachTheDevices() throws {
        let w = try DaemonWorld.running(self, hosts: 2)
        let indexes = try w.hosts.map { try $0.ipJSON("link", "show", "dev", "flannel.1").first?["ifindex"] as? Int }
        try w.putConfig(#"{"Network": "10.244.0.0/16", "Backend": {"Type": "vxlan", "MTU": 1400}}"#)
        for h in w.hosts {
            try eventually("host \(h.index) at MTU 1350") { try h.vtep().mtu == 1350 && h.subnetEnv()?.mtu == 1350 }
        }
        let after = try w.hosts.map { try $0.ipJSON("link", "show", "dev", "flannel.1").first?["ifindex"] as? Int }
        XCTAssertEqual(after, indexes, "the devices were changed in place, not re-created")
        try w.waitForFullMesh()

        // A new VNI cannot change in place: flannel.7 replaces flannel.1 (with the same MAC,
        // which peers know), and the leases say 7.
        let macs = try w.hosts.map { try $0.vtep().mac }
        try w.putConfig(#"{"Network": "10.244.0.0/16", "Backend": {"Type": "vxlan", "VNI": 7, "MTU": 1400}}"#)
        for h in w.hosts {
            try eventually("host \(h.index) on flannel.7 only") {
                try h.vtep("flannel.7").vni == 7 && h.ipJSON("link", "show").allSatisfy { $0["ifname"] as? String != "flannel.1" }
            }
        }
        try w.waitForFullMesh(device: "flannel.7")
        XCTAssertEqual(try w.hosts.map { try $0.vtep("flannel.7").mac }, macs)
        let values = try w.withEmbeddedStore { store in
            try await store.list(prefix: StoreLayout().subnetsPrefix).entries.map(\.text)
        }
        XCTAssertEqual(values.count, 2)
        XCTAssertTrue(values.allSatisfy { $0.contains(#""VNI":7"#) }, "\(values)")
        try w.addPodAddresses()
        XCTAssertTrue(try w.ping(w.hosts[0], w.hosts[1]).ok)
    }

    /// `ip link del flannel.1` by hand: the device is back with the same MAC and every peer
    /// entry within a second.
    func testADeletedDeviceComesBackWithItsMACAndPeersWithinASecond() throws {
        let w = try DaemonWorld.running(self, hosts: 3)
        let h1 = w.hosts[0]
        let mac = try h1.vtep().mac
        let peers = try w.hosts.dropFirst().map { try w.expectedPeer($0) }
        try h1.ip("link", "del", "flannel.1")
        let took = try eventually("flannel.1 back with its peers", timeout: 5) {
            try h1.vtep().mac == mac && h1.hasExactly(peers)
        }
        XCTAssertLessThan(took, 1.0, "back within a second")
        try w.addPodAddresses()
        XCTAssertTrue(try w.ping(h1, w.hosts[2]).ok)
    }

    /// A dual-stack network with --ip-masq: both devices (the IPv6 one's MTU 70 below the
    /// underlay's), both subnets in subnet.env and in one lease key, pods reaching each
    /// other over IPv4 and IPv6, and flannel's masquerade rules for both networks.
    func testDualStackWithMasquerade() throws {
        let w = try DaemonWorld(self, hosts: 2)
        try w.putConfig(#"{"Network": "10.244.0.0/16", "EnableIPv6": true, "IPv6Network": "fd10:244::/56"}"#)
        try w.startAll(["--ip-masq"])
        try w.waitUntilReady()
        for h in w.hosts {
            let env = try XCTUnwrap(try h.subnetEnv())
            XCTAssertEqual(env.ipv6Network, CIDR("fd10:244::/56"))
            let v6 = try XCTUnwrap(env.ipv6Subnet)
            XCTAssertEqual(v6.prefixLength, 64)
            XCTAssertEqual(env.mtu, 1430, "the smaller device MTU: 1500 - 70 over the IPv6 underlay")
            XCTAssertEqual(env.ipMasq, true)
            XCTAssertEqual(try h.vtep("flannel-v6.1").mtu, 1430)
            XCTAssertEqual(try h.vtep().mtu, 1450)
            let tables = try runChecked(["nft", "-n", "-j", "list", "table", "inet", "netlab-overlay"].withNetns(h.netns)).stdout
            XCTAssertTrue(tables.contains("10.244.0.0") && tables.contains("fd10:244::"), "masquerade rules for both networks")
        }
        let keys = try w.withEmbeddedStore { store in
            try await store.list(prefix: StoreLayout().subnetsPrefix).entries.map(\.key)
        }
        XCTAssertEqual(keys.count, 2)
        XCTAssertTrue(keys.allSatisfy { $0.contains("&fd10:244:") }, "dual-stack keys: \(keys)")
        try w.waitForFullMesh()
        try w.addPodAddresses()
        let (a, b) = (w.hosts[0], w.hosts[1])
        XCTAssertTrue(try w.ping(a, b).ok)
        let v6a = try XCTUnwrap(try a.subnetEnv()?.ipv6Subnet?.address), v6b = try XCTUnwrap(try b.subnetEnv()?.ipv6Subnet?.address)
        let r = a.exec(["ping", "-6", "-c", "1", "-W", "2", "-I", "\(v6a)", "\(v6b)"])
        XCTAssertTrue(r.ok, "ping6 between pods: \(r)")
    }

    private func writeRawConfig(_ json: String, _ w: DaemonWorld) throws {
        try w.withEmbeddedStore { store in
            _ = try await store.update(StoreLayout().configKey, text: json, ttl: .none)
        }
    }
}
