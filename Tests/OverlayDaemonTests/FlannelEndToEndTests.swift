// The whole path a flannel user runs: an overlayd per simulated host, and on each host one
// container (its own netns) attached by a CNI runtime (`cni-run`) through the `flannel` plugin
// of conf/flannel.conflist, adapted per host (its subnet.env, data directories, bridge). Every
// container reaches every other over ICMP and TCP, the underlay carries VXLAN on flannel's
// port, a full-MTU packet with DF set crosses, and DEL leaves no veth and no reservation.

import Foundation
import NetTypes
import Overlay
import TestSupport
import XCTest

/// flannel's default VXLAN port (Backend.Port 0 means this one).
let vxlanPort = 8472
/// IPv4 + ICMP headers: `ping -s` takes the payload, the MTU counts the whole packet.
let icmpv4Overhead = 28

/// One container on a simulated host, attached by `cni-run` with the host's conflist.
struct AttachedContainer {
    let host: DaemonHost
    let netns: String
    let id: String
    let address: IPAddress
    let ipv6Address: IPAddress?
}

extension DaemonHost {
    var conflistPath: String { directory + "/flannel.conflist" }
    var cniCache: String { directory + "/cni-cache" }
    var flannelDataDir: String { directory + "/flannel" }
    var ipamDataDir: String { directory + "/ipam" }

    /// conf/flannel.conflist with this host's files: subnetFile, dataDir, host-local's dataDir.
    func writeConflist() throws {
        let repoConflist = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../conf/flannel.conflist").standardized.path
        let data = try Data(contentsOf: URL(fileURLWithPath: repoConflist))
        guard var list = try JSONSerialization.jsonObject(with: data) as? [String: Any],
              var plugins = list["plugins"] as? [[String: Any]],
              let index = plugins.firstIndex(where: { $0["type"] as? String == "flannel" })
        else { throw TestError("\(repoConflist) has no flannel plugin") }
        plugins[index]["subnetFile"] = subnetFile
        plugins[index]["dataDir"] = flannelDataDir
        plugins[index]["ipam"] = ["dataDir": ipamDataDir]
        list["plugins"] = plugins
        try FileManager.default.createDirectory(atPath: ipamDataDir, withIntermediateDirectories: true)
        try JSONSerialization.data(withJSONObject: list, options: [.sortedKeys]).write(to: URL(fileURLWithPath: conflistPath))
    }

    /// `cni-run VERB` in the host's netns, as a container runtime runs on that host.
    func cniRun(_ verb: String, id: String, containerNetns: String) -> CommandResult {
        exec(["env", "CNI_PATH=\(BuiltProducts.directory)", BuiltProducts.path("cni-run"), verb, conflistPath, id,
              "/run/netns/" + containerNetns, cniCache])
    }

    /// The host's veth interfaces by name (its underlay link and pods0 pair included).
    func veths() throws -> Set<String> {
        Set(try ipJSON("link", "show", "type", "veth").compactMap { $0["ifname"] as? String })
    }
}

extension DaemonWorld {
    /// A new container netns on `host`, attached through flannel by the CNI runtime; its
    /// addresses come from the result and must lie in the host's leased subnets.
    func attachContainer(on host: DaemonHost) throws -> AttachedContainer {
        let netns = try world.makeNetns("c\(host.index)")
        let id = "ctr-\(host.index)-\(UInt32.random(in: 0...UInt32.max))"
        let r = host.cniRun("add", id: id, containerNetns: netns)
        guard r.ok, let result = r.jsonObject, let ips = result["ips"] as? [[String: Any]] else {
            throw TestError("cni-run add on host \(host.index) failed: \(r)")
        }
        let addresses = ips.compactMap { ($0["address"] as? String).flatMap(CIDR.init) }
        guard let v4 = addresses.first(where: { $0.address.family == .v4 }) else { throw TestError("no IPv4 address in \(result)") }
        let env = try host.subnetEnv()
        guard try host.subnet().contains(v4.address) else { throw TestError("\(v4) is outside host \(host.index)'s subnet") }
        let v6 = addresses.first { $0.address.family == .v6 }
        if let v6Subnet = env?.ipv6Subnet?.network {
            guard let v6, v6Subnet.contains(v6.address) else { throw TestError("no IPv6 address of \(v6Subnet) in \(result)") }
        }
        return AttachedContainer(host: host, netns: netns, id: id, address: v4.address, ipv6Address: v6?.address)
    }

    /// `argv` inside the container's netns.
    func inContainer(_ c: AttachedContainer, _ argv: [String], timeout: Double = 15) -> CommandResult {
        runCommand(argv.withNetns(c.netns), timeout: timeout)
    }

    /// A TCP connection from `from` to a listener in `to`: the line sent arrives.
    func tcpReaches(_ from: AttachedContainer, _ to: AttachedContainer, address: IPAddress, port: Int = 7070) throws {
        // OpenBSD nc listens on IPv4 only unless told -6.
        let family = address.family == .v4 ? "-4" : "-6"
        let listener = try StartedProcess(["/usr/sbin/ip", "netns", "exec", to.netns, "nc", family, "-d", "-l", "-p", "\(port)"],
                                          log: to.host.directory + "/nc-\(from.host.index)-\(address.family == .v4 ? 4 : 6).log")
        defer { listener.stop(grace: 1) }
        try eventually("nc listening in container \(to.host.index)", timeout: 5) {
            inContainer(to, ["ss", "-Htln", "sport", "= :\(port)"]).stdout.contains(":\(port)")
        }
        let line = "hello from container \(from.host.index)"
        let r = inContainer(from, ["sh", "-c", "echo '\(line)' | nc -q 1 -w 3 \(address) \(port)"])
        guard r.ok else { throw TestError("nc \(from.host.index) → \(address) failed: \(r)") }
        try eventually("the line in container \(to.host.index)", timeout: 3) { listener.output.contains(line) }
    }

    /// Packets tcpdump captured on the underlay bridge matching `filter` while `body` ran.
    func underlayPackets(_ filter: String, during body: () throws -> Void) throws -> Int {
        let capture = try StartedProcess(["/usr/sbin/ip", "netns", "exec", underlay, "tcpdump", "-i", "br0", "-n", "-l",
                                          "--immediate-mode"] + filter.split(separator: " ").map(String.init),
                                         log: directory + "/tcpdump-\(UInt32.random(in: 0...UInt32.max)).log")
        own(capture)
        try eventually("tcpdump listening\n\(capture.output)", timeout: 5) { capture.output.contains("listening on br0") }
        try body()
        usleep(200_000)
        capture.signal(SIGINT)
        capture.process.waitUntilExit()
        let out = capture.output
        guard let line = out.split(separator: "\n").first(where: { $0.hasSuffix("packets captured") }),
              let count = Int(line.split(separator: " ")[0]) else { throw TestError("tcpdump printed no count: \(out)") }
        return count
    }
}

final class FlannelEndToEndTests: XCTestCase {
    func testContainersAcrossThreeHostsOnTheEmbeddedStore() throws {
        let w = try DaemonWorld(self, hosts: 3)
        try endToEnd(w, config: basicConfig)
    }

    /// The same on a real etcd, dual-stack: containers also reach each other over IPv6.
    func testContainersAcrossThreeHostsOnEtcdDualStack() throws {
        let w = try DaemonWorld(self, hosts: 3)
        _ = try UnderlayEtcd(w)
        try endToEnd(w, config: #"{"Network": "10.244.0.0/16", "EnableIPv6": true, "IPv6Network": "fd10:244::/56"}"#)
    }

    private func endToEnd(_ w: DaemonWorld, config: String) throws {
        try w.putConfig(config)
        try w.startAll()
        try w.waitUntilReady()
        try w.waitForFullMesh()
        let vethsBefore = try w.hosts.map { try $0.veths() }
        for h in w.hosts { try h.writeConflist() }
        let containers = try w.hosts.map { try w.attachContainer(on: $0) }

        try assertFullReach(w, containers)
        try assertVXLANOnTheUnderlay(w, containers[0], containers[1])
        try assertFullMTUCrosses(w, containers[0], containers[2])

        for (c, before) in zip(containers, vethsBefore) {
            let r = c.host.cniRun("del", id: c.id, containerNetns: c.netns)
            XCTAssertTrue(r.ok, "cni-run del on host \(c.host.index): \(r)")
            XCTAssertEqual(try c.host.veths(), before, "host \(c.host.index): the container's veth is gone")
            XCTAssertEqual(try hostLocalReservations(dataDir: c.host.ipamDataDir, network: "cbr0"), [],
                           "host \(c.host.index): no address reserved")
            XCTAssertFalse(FileManager.default.fileExists(atPath: c.host.flannelDataDir + "/" + c.id), "saved config removed")
        }
    }

    /// Every container pings every other, and opens a TCP connection to the next one, over
    /// IPv4 and (when the config enables it) IPv6.
    private func assertFullReach(_ w: DaemonWorld, _ containers: [AttachedContainer]) throws {
        for a in containers {
            for b in containers where a.id != b.id {
                let r = w.inContainer(a, ["ping", "-c", "1", "-W", "2", "\(b.address)"])
                XCTAssertTrue(r.ok, "ping container \(a.host.index) → \(b.host.index): \(r)")
                if let v6 = b.ipv6Address {
                    let r6 = w.inContainer(a, ["ping", "-6", "-c", "1", "-W", "2", "\(v6)"])
                    XCTAssertTrue(r6.ok, "ping -6 container \(a.host.index) → \(b.host.index): \(r6)")
                }
            }
        }
        for (i, a) in containers.enumerated() {
            let b = containers[(i + 1) % containers.count]
            try w.tcpReaches(a, b, address: b.address)
            if let v6 = b.ipv6Address { try w.tcpReaches(a, b, address: v6) }
        }
    }

    /// tcpdump on the underlay bridge sees the pings as UDP to flannel's VXLAN port, both ways.
    private func assertVXLANOnTheUnderlay(_ w: DaemonWorld, _ a: AttachedContainer, _ b: AttachedContainer) throws {
        let pings = 5
        let captured = try w.underlayPackets("udp port \(vxlanPort)") {
            let r = w.inContainer(a, ["ping", "-c", "\(pings)", "-i", "0.05", "-W", "2", "\(b.address)"])
            XCTAssertTrue(r.ok, "\(r)")
        }
        XCTAssertGreaterThanOrEqual(captured, 2 * pings, "each request and reply encapsulated on udp port \(vxlanPort)")
    }

    /// A packet of the container's MTU with DF set crosses; one byte more is refused locally.
    private func assertFullMTUCrosses(_ w: DaemonWorld, _ a: AttachedContainer, _ b: AttachedContainer) throws {
        let mtu = try XCTUnwrap(try a.host.subnetEnv()?.mtu)
        let link = try runChecked(["ip", "-n", a.netns, "-j", "link", "show", "eth0"]).checkedJSONArray()
        XCTAssertEqual(link.first?["mtu"] as? Int, mtu, "the container's eth0 has the overlay MTU")
        let fits = w.inContainer(a, ["ping", "-M", "do", "-s", "\(mtu - icmpv4Overhead)", "-c", "1", "-W", "2", "\(b.address)"])
        XCTAssertTrue(fits.ok, "a \(mtu)-byte packet with DF set crosses: \(fits)")
        let tooBig = w.inContainer(a, ["ping", "-M", "do", "-s", "\(mtu - icmpv4Overhead + 1)", "-c", "1", "-W", "2", "\(b.address)"])
        XCTAssertFalse(tooBig.ok)
        XCTAssertTrue((tooBig.stdout + tooBig.stderr).contains("message too long"), "\(tooBig)")
    }
}
