// Network modes through CNI on a simulated host: none, host, container:NAME, bridge (ping,
// masquerade to another host, published ports), --ip/--mac; kernel state read back with ip/nft.

import Foundation
import NetlabDemo
import TestSupport
import XCTest

final class NetworkModeTests: XCTestCase {
    func testNoneModeHasOnlyLoopbackAndItIsUp() throws {
        let h = HostHarness(self)
        let r = h.netlab(["run"], ["--rm", "--network", "none", "--", "ip", "-j", "link", "show"])
        XCTAssertEqual(r.status, 0, "\(r)")
        let links = r.jsonArray ?? []
        XCTAssertEqual(links.compactMap { $0["ifname"] as? String }, ["lo"], r.stdout)
        XCTAssertTrue((links.first?["flags"] as? [String] ?? []).contains("UP"), r.stdout)
        // Nothing stays behind in the host: no cache entry, no container.
        XCTAssertEqual(try h.cacheEntries(), [])
    }

    func testHostModeSeesTheSimulatedHostsInterfaces() throws {
        let h = HostHarness(self)
        let want = try XCTUnwrap(h.underlayAddress(h.host))
        XCTAssertTrue(want.hasPrefix("198.18.0."), want)
        let r = h.netlab(["run"], ["--rm", "--network", "host", "--", "ip", "-j", "-4", "addr", "show", "eth0"])
        XCTAssertEqual(r.status, 0, "\(r)")
        let info = (r.jsonArray?.first?["addr_info"] as? [[String: Any]]) ?? []
        XCTAssertEqual(info.first?["local"] as? String, want, r.stdout)
    }

    func testContainerModeSharesThePodsNetns() throws {
        let h = HostHarness(self)
        XCTAssertTrue(h.netlab(["run"], ["-d", "--name", "pod", "--network", "bridge", "pause"]).ok)
        let srv = h.netlab(["run"], ["-d", "--name", "srv", "--network", "container:pod", "--", "python3", "-c",
                                     DemoScripts.server(port: 7000, reply: "from-srv")])
        XCTAssertTrue(srv.ok, "\(srv)")
        let cli = h.netlab(["run"], ["--rm", "--network", "container:pod", "--", "python3", "-c", DemoScripts.client("127.0.0.1", port: 7000)])
        XCTAssertEqual(cli.status, 0, "\(cli)")
        XCTAssertEqual(trimmed(cli.stdout), "from-srv")
        // Same netns inode for pod and srv; only the pod has network attachments.
        let pod = try XCTUnwrap(h.waitRunning("pod")), s = try XCTUnwrap(h.waitRunning("srv"))
        let podPid = try XCTUnwrap(pod["pid"] as? Int), srvPid = try XCTUnwrap(s["pid"] as? Int)
        XCTAssertEqual(inode("/proc/\(podPid)/ns/net"), inode("/proc/\(srvPid)/ns/net"))
        XCTAssertEqual((s["networks"] as? [String: Any])?.count ?? 0, 0)
        XCTAssertEqual(h.bridgePorts("netlab0").count, 1)
    }

    func testBridgeContainersReachEachOtherAndLeaveNothingBehind() throws {
        let h = HostHarness(self)
        XCTAssertTrue(h.netlab(["run"], ["-d", "--name", "b1", "--network", "bridge", "pause"]).ok)
        XCTAssertTrue(h.netlab(["run"], ["-d", "--name", "b2", "--network", "bridge", "pause"]).ok)
        let ip1 = try XCTUnwrap(h.ip(of: "b1")), ip2 = try XCTUnwrap(h.ip(of: "b2"))
        XCTAssertNotEqual(ip1, ip2)
        XCTAssertTrue(ip1.hasPrefix("10.88."), ip1)
        let ping = h.netlab(["exec"], ["b2", "ping", "-c", "1", "-W", "2", ip1])
        XCTAssertEqual(ping.status, 0, "\(ping)")
        XCTAssertEqual(h.bridgePorts("netlab0").count, 2)
        XCTAssertEqual(Set(try h.reservations("bridge")), [ip1, ip2])
        // The bridge has the gateway address, in the host netns only.
        let br = h.world.ipJSON(h.netns, ["-4", "addr", "show", "netlab0"])
        XCTAssertEqual((br.first?["addr_info"] as? [[String: Any]])?.first?["local"] as? String, "10.88.0.1")
        XCTAssertTrue(h.netlab(["rm"], ["-f", "b1", "b2"]).ok)
        XCTAssertEqual(h.bridgePorts("netlab0"), [])
        XCTAssertEqual(try h.reservations("bridge"), [])
        XCTAssertEqual(try h.cacheEntries(), [])
        XCTAssertFalse(try h.nftTable().contains(ip1))
    }

    func testMasqueradeToAnotherHostShowsTheHostsUnderlayAddress() throws {
        let h = HostHarness(self)
        let out = h.addHost()
        let outAddr = try XCTUnwrap(h.underlayAddress(out)), myAddr = try XCTUnwrap(h.underlayAddress(h.host))
        XCTAssertTrue(h.netlab(["run"], ["-d", "--name", "echo", "--network", "host", "--", "python3", "-c",
                                         DemoScripts.server(port: 9000, reply: nil)], on: out).ok)
        let r = h.netlab(["run"], ["--rm", "--network", "bridge", "--", "python3", "-c", DemoScripts.client(outAddr, port: 9000)])
        XCTAssertEqual(r.status, 0, "\(r)")
        XCTAssertEqual(trimmed(r.stdout), myAddr)
    }

    func testPublishedPortFromAnotherHostAndConflict() throws {
        let h = HostHarness(self)
        let out = h.addHost()
        let myAddr = try XCTUnwrap(h.underlayAddress(h.host))
        XCTAssertTrue(h.netlab(["run"], ["-d", "--name", "web", "--network", "bridge", "-p", "8080:80", "--", "python3", "-c",
                                         DemoScripts.server(port: 80, reply: "web80")]).ok)
        let webIP = try XCTUnwrap(h.ip(of: "web"))
        let table = try h.nftTable()
        XCTAssertTrue(table.contains("8080"), table)
        let r = h.netlab(["run"], ["--rm", "--network", "host", "--", "python3", "-c", DemoScripts.client(myAddr, port: 8080)], on: out)
        XCTAssertEqual(r.status, 0, "\(r)")
        XCTAssertEqual(trimmed(r.stdout), "web80")

        // The same host port again: one line naming the holder by name and state, exit 1,
        // nothing left behind.
        let dup = h.netlab(["run"], ["-d", "--name", "web2", "--network", "bridge", "-p", "8080:81", "pause"])
        XCTAssertEqual(dup.status, 1, "\(dup)")
        XCTAssertTrue(dup.stderr.hasPrefix("netlab: error: host port 8080/tcp is already published by container web (running, -p 8080->80/tcp)"),
                      dup.stderr)
        XCTAssertEqual(dup.stderr.split(separator: "\n").count, 1, dup.stderr)
        XCTAssertNil(h.inspect("web2"))
        XCTAssertEqual(try h.reservations("bridge"), [webIP])
        XCTAssertEqual(h.bridgePorts("netlab0").count, 1)

        XCTAssertTrue(h.netlab(["rm"], ["-f", "web"]).ok)
        let tableAfter = try h.nftTable()
        XCTAssertFalse(tableAfter.contains("8080"), tableAfter)
    }

    func testPortsIPAndMACAreRecordedAndShown() throws {
        let h = HostHarness(self)
        let r = h.netlab(["run"], ["-d", "--name", "p", "--network", "bridge", "-p", "8080:80", "-p", "127.0.0.1:5353:53/udp",
                                   "-p", "9090:90/sctp", "--ip", "10.88.0.5", "--mac", "02:42:ac:11:00:05", "pause"])
        XCTAssertEqual(r.status, 0, "\(r)")
        let rec = try XCTUnwrap(h.inspect("p"))
        let ports = try XCTUnwrap(rec["ports"] as? [[String: Any]])
        XCTAssertEqual(ports.count, 3)
        XCTAssertEqual(ports[0]["hostPort"] as? Int, 8080)
        XCTAssertEqual(ports[0]["containerPort"] as? Int, 80)
        XCTAssertEqual(ports[0]["protocol"] as? String, "tcp")
        XCTAssertEqual(ports[0]["hostIP"] as? String, "")
        XCTAssertEqual(ports[1]["hostIP"] as? String, "127.0.0.1")
        XCTAssertEqual(ports[1]["protocol"] as? String, "udp")
        XCTAssertEqual(ports[1]["hostPort"] as? Int, 5353)
        XCTAssertEqual(ports[2]["protocol"] as? String, "sctp")
        XCTAssertEqual(rec["ip"] as? String, "10.88.0.5")
        XCTAssertEqual(rec["mac"] as? String, "02:42:ac:11:00:05")
        XCTAssertEqual(h.ip(of: "p"), "10.88.0.5")
        let ps = h.netlab(["ps"]).stdout
        XCTAssertTrue(ps.contains("8080->80/tcp,127.0.0.1:5353->53/udp,9090->90/sctp"), ps)
        let table = try h.nftTable()
        XCTAssertTrue(table.contains("5353") && table.contains("9090"), table)
    }

    func testRequestedIPAndMAC() throws {
        let h = HostHarness(self)
        let r = h.netlab(["run"], ["--rm", "--network", "bridge", "--ip", "10.88.7.7", "--mac", "02:42:0a:58:07:07",
                                   "--", "ip", "-j", "addr", "show", "eth0"])
        XCTAssertEqual(r.status, 0, "\(r)")
        let link = try XCTUnwrap(r.jsonArray?.first)
        XCTAssertEqual(link["address"] as? String, "02:42:0a:58:07:07")
        let addrs = (link["addr_info"] as? [[String: Any]] ?? []).compactMap { $0["local"] as? String }
        XCTAssertTrue(addrs.contains("10.88.7.7"), r.stdout)
        XCTAssertEqual(try h.reservations("bridge"), [])
    }
}
