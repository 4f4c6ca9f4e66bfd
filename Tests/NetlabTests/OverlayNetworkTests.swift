// `netlab network create --driver overlay`: three simulated hosts, an overlayd on each (on the
// embedded store under the run directory), one container per host through `flannel`; every
// container reaches every other across the VXLAN overlay; host rm and network rm stop the
// daemons and leave nothing behind.

import Foundation
import TestSupport
import XCTest

final class OverlayNetworkTests: XCTestCase {
    static let cluster = "10.244.0.0/16"

    /// Live processes whose command line names this run directory and runs overlayd.
    func overlayDaemons(_ h: HostHarness) -> [Int32] {
        let pids = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return pids.compactMap(Int32.init).filter { pid in
            // A process that exits meanwhile has no cmdline left: it is not one of them.
            guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline"), processIsAlive(pid) else { return false }
            let argv = data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            return argv.first?.hasSuffix("overlayd") == true && argv.contains { $0.hasPrefix(h.runDir + "/") }
        }
    }

    /// The subnet a host leased, read from its subnet.env (FLANNEL_SUBNET is the gateway/len).
    func leased(_ h: HostHarness, _ host: String, _ network: String) throws -> (network: String, gateway: String, length: Int) {
        let env = try String(contentsOfFile: "\(h.runDir)/hosts/\(host)/overlays/\(network)/subnet.env", encoding: .utf8)
        let line = try XCTUnwrap(env.split(separator: "\n").first { $0.hasPrefix("FLANNEL_SUBNET=") })
        let cidr = line.dropFirst("FLANNEL_SUBNET=".count).split(separator: "/")
        let gw = String(cidr[0]), len = try XCTUnwrap(Int(cidr[1]))
        let octets = gw.split(separator: ".").compactMap { Int($0) }
        return ("\(octets[0]).\(octets[1]).\(octets[2]).0", gw, len)
    }

    func testThreeHostsReachEachOtherAndRemovalLeavesNothing() throws {
        let h = HostHarness(self)
        let hosts = [h.host, h.addHost(), h.addHost()]
        let create = h.netlab(["network", "create"], ["--driver", "overlay", "--subnet", Self.cluster, "ov"], hostless: true)
        XCTAssertTrue(create.ok, "\(create)")
        XCTAssertEqual(overlayDaemons(h).count, 3, "one overlayd per host")

        var addresses: [String: String] = [:]
        var subnets = Set<String>()
        for (i, host) in hosts.enumerated() {
            let lease = try leased(h, host, "ov")
            XCTAssertEqual(lease.length, 24)
            subnets.insert(lease.network)
            let run = h.netlab(["run"], ["-d", "--name", "c\(i)", "--network", "ov", "--", "python3", "-m", "http.server", "8000"], on: host)
            XCTAssertTrue(run.ok, "\(run)")
            XCTAssertNotNil(h.waitRunning("c\(i)", on: host))
            let ip = try XCTUnwrap(h.ip(of: "c\(i)", network: "ov", on: host))
            XCTAssertTrue(ip.hasPrefix(String(lease.network.dropLast(1))), "\(ip) in \(lease.network)/24 of \(host)")
            addresses[host] = ip
            let ls = h.netlab(["network", "ls"], on: host)
            XCTAssertTrue(ls.stdout.contains("ov") && ls.stdout.contains("overlay") && ls.stdout.contains("\(lease.network)/24 of \(Self.cluster)"), ls.stdout)
        }
        XCTAssertEqual(subnets.count, 3, "each host leased its own subnet: \(subnets)")

        for (i, from) in hosts.enumerated() {
            for to in hosts where to != from {
                let target = addresses[to]!
                let ping = h.netlab(["exec"], ["c\(i)", "ping", "-c", "1", "-W", "2", target], on: from)
                XCTAssertTrue(ping.ok, "ping \(from) -> \(to) \(target): \(ping)")
                let tcp = h.netlab(["exec"], ["c\(i)", "python3", "-c",
                    "import socket; socket.create_connection(('\(target)', 8000), timeout=5).close(); print('connected')"], on: from)
                XCTAssertTrue(tcp.ok && tcp.stdout.contains("connected"), "tcp \(from) -> \(to) \(target): \(tcp)")
            }
        }

        let inspect = try XCTUnwrap(h.netlab(["network", "inspect"], ["ov"], hostless: true).jsonObject)
        XCTAssertEqual(inspect["driver"] as? String, "overlay")
        let leases = try XCTUnwrap((inspect["overlay"] as? [String: Any])?["leases"] as? [String: String])
        XCTAssertEqual(Set(leases.keys), Set(hosts))

        // host rm stops that host's daemon; the others keep running.
        let rm = h.netlab(["host", "rm"], ["-f", hosts[2]], hostless: true)
        XCTAssertTrue(rm.ok, "\(rm)")
        XCTAssertEqual(overlayDaemons(h).count, 2)

        // network rm is refused while containers use it, on any host.
        let busy = h.netlab(["network", "rm"], ["ov"], hostless: true)
        XCTAssertFalse(busy.ok)
        // Either remaining container may be named first (hosts are listed in name order).
        XCTAssertTrue(busy.stderr.contains("network ov is in use by c0 on host \(hosts[0])")
                      || busy.stderr.contains("network ov is in use by c1 on host \(hosts[1])"), busy.stderr)
        for (i, host) in hosts.prefix(2).enumerated() { XCTAssertTrue(h.netlab(["rm"], ["-f", "c\(i)"], on: host).ok) }
        let netRm = h.netlab(["network", "rm"], ["ov"], hostless: true)
        XCTAssertTrue(netRm.ok, "\(netRm)")
        XCTAssertEqual(overlayDaemons(h), [], "no overlayd of the run directory left")
        for host in hosts.prefix(2) {
            let links = h.world.ipJSON(h.netns(of: host), ["link", "show"]).compactMap { $0["ifname"] as? String }
            XCTAssertFalse(links.contains { $0.hasPrefix("flannel.") }, "\(host): \(links)")
            let fm = FileManager.default
            XCTAssertFalse(fm.fileExists(atPath: "\(h.runDir)/hosts/\(host)/overlays/ov"))
            XCTAssertFalse(fm.fileExists(atPath: "\(h.runDir)/hosts/\(host)/networks/ov.conflist"))
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: h.runDir + "/overlays/ov"))
    }

    func testHostAddedLaterJoinsAndHostRmStopsItsDaemon() throws {
        let h = HostHarness(self)
        XCTAssertTrue(h.netlab(["network", "create"], ["--driver", "overlay", "ov"], hostless: true).ok)
        let late = h.addHost()
        XCTAssertEqual(overlayDaemons(h).count, 2)
        XCTAssertNotEqual(try leased(h, h.host, "ov").network, try leased(h, late, "ov").network)
        XCTAssertTrue(h.netlab(["run"], ["-d", "--name", "srv", "--network", "ov", "pause"], on: h.host).ok)
        let ip = try XCTUnwrap(h.ip(of: "srv", network: "ov"))
        let ping = h.netlab(["run"], ["--rm", "--network", "ov", "--", "ping", "-c", "1", "-W", "2", ip], on: late)
        XCTAssertTrue(ping.ok, "\(ping)")
        XCTAssertTrue(h.netlab(["host", "rm"], ["-f", late], hostless: true).ok)
        XCTAssertEqual(overlayDaemons(h).count, 1)
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(h.runDir)/hosts/\(late)"))
    }

    func testRefusedOptions() throws {
        let h = HostHarness(self)
        XCTAssertTrue(h.netlab(["network", "create"], ["--subnet", "10.250.1.0/24", "br1"]).ok)
        let cases: [([String], String)] = [
            (["--driver", "overlay", "--gateway", "10.244.0.1", "o1"], "--gateway cannot be used with --driver overlay"),
            (["--driver", "overlay", "--subnet", "10.250.0.0/16", "o2"], "subnet 10.250.0.0/16 overlaps 10.250.1.0/24 of network br1 on host \(h.host)"),
            (["--driver", "overlay", "--subnet", "10.244.0.0/26", "o3"], "use a /22 or larger"),
            (["--driver", "overlay", "--ipv6", "o4"], "--ipv6 is not supported with --driver overlay"),
            (["--etcd-endpoints", "http://127.0.0.1:2379", "o5"], "--etcd-endpoints only applies to --driver overlay"),
            (["--driver", "overlay", "br1"], "network br1 already exists on host \(h.host)"),
        ]
        for (args, message) in cases {
            let r = h.netlab(["network", "create"], args, hostless: true)
            XCTAssertEqual(r.status, 1, "\(args): \(r)")
            XCTAssertTrue(r.stderr.hasPrefix("netlab: error: ") && r.stderr.contains(message), "\(args): \(r.stderr)")
        }
        XCTAssertEqual(overlayDaemons(h), [], "a refused network starts nothing")
        XCTAssertFalse(FileManager.default.fileExists(atPath: h.runDir + "/overlays/o2"))
    }
}
