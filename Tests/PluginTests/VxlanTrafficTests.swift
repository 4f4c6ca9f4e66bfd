// The built `vxlan` executable on three simulated hosts: containers on all three in one /24
// (static remotes, a disjoint range per host) reach each other — ICMP, TCP, an ARP broadcast
// and a multicast datagram cross the overlay — and the kernel objects are what the docs say.

import Foundation
import XCTest
import TestSupport

final class VxlanTrafficTests: VxlanTestCase {
    /// One container per host, as `ADD` on each host makes them.
    private func addOnEveryHost() -> (ctrs: [String], ips: [String]) {
        var ctrs: [String] = [], ips: [String] = []
        for i in 1...3 {
            let ctr = world.netns("c\(i)")
            let r = vx.add(host: i, ctr, id: "ctr\(i)")
            ctrs.append(ctr)
            ips.append(VxlanWorld.address(r) ?? "none")
        }
        return (ctrs, ips)
    }

    func testThreeHostsOneSegmentKernelObjects() throws {
        let (ctrs, ips) = addOnEveryHost()
        XCTAssertEqual(ips, ["10.60.0.10", "10.60.0.20", "10.60.0.30"], "each host allocates from its own range")
        XCTAssertEqual(vx.link(ctrs[0], "eth0")?["mtu"] as? Int, 1450, "the container's MTU leaves room for VXLAN")
        for i in 1...3 {
            let h = vx.host(i)
            // The VXLAN device: VNI, port, underlay, learning, MTU = eth0's 1500 - 50; on the bridge, up.
            let dev = try XCTUnwrap(vx.link(h, vx.device), "host \(i): \(vx.device) missing")
            let info = dev["linkinfo"] as? [String: Any]
            XCTAssertEqual(info?["info_kind"] as? String, "vxlan")
            let data = info?["info_data"] as? [String: Any] ?? [:]
            XCTAssertEqual(data["id"] as? Int, vx.vni)
            XCTAssertEqual(data["port"] as? Int, 4789)
            XCTAssertEqual(data["link"] as? String, "eth0")
            XCTAssertEqual(data["learning"] as? Bool, true)
            XCTAssertEqual(dev["mtu"] as? Int, 1450)
            XCTAssertEqual(dev["master"] as? String, vx.bridge)
            XCTAssertTrue((dev["flags"] as? [String] ?? []).contains("UP"))
            // The bridge, with the device and one veth; the veth carries its owner as alias.
            let br = try XCTUnwrap(vx.link(h, vx.bridge), "host \(i): bridge missing")
            XCTAssertEqual((br["linkinfo"] as? [String: Any])?["info_kind"] as? String, "bridge")
            XCTAssertEqual(br["mtu"] as? Int, 1450)
            let ports = vx.ports(h, of: vx.bridge)
            XCTAssertEqual(ports.count, 2, "\(ports)")
            XCTAssertTrue(ports.contains(vx.device))
            let veth = try XCTUnwrap(ports.first { $0 != vx.device })
            XCTAssertEqual(vx.link(h, veth)?["ifalias"] as? String, "\(vx.network) ctr\(i) eth0")
            XCTAssertEqual(vx.link(h, veth)?["mtu"] as? Int, 1450)
            // Head-end replication to the two other hosts; its own address is skipped.
            XCTAssertEqual(vx.floodList(h, vx.device), (1...3).filter { $0 != i }.map(VxlanWorld.vtep), "host \(i)")
        }
    }

    func testContainersOnThreeHostsReachEachOtherByICMPAndTCP() throws {
        let (ctrs, ips) = addOnEveryHost()
        for (i, from) in ctrs.enumerated() {
            for (j, to) in ips.enumerated() where i != j {
                let r = vx.ping(from: from, to)
                XCTAssertEqual(r.status, 0, "c\(i + 1) -> \(to): \(r.description)")
            }
        }
        // ARP crossed the overlay: each container learned the others' real MACs.
        let learned = vx.neighbours(ctrs[0])
        XCTAssertEqual(learned[ips[1]], vx.mac(ctrs[1]))
        XCTAssertEqual(learned[ips[2]], vx.mac(ctrs[2]))

        // TCP with nc, both ways over one connection: c3 listens, c1 connects.
        nonisolated(unsafe) var served: CommandResult?
        let done = DispatchSemaphore(value: 0)
        let server = Thread { [world, c3 = ctrs[2]] in
            served = world!.exec(in: c3, ["sh", "-c", "echo from-c3 | timeout 20 nc -N -l 7000"], timeout: 30)
            done.signal()
        }
        server.start()
        var client: CommandResult?
        for _ in 0..<50 {
            client = world.exec(in: ctrs[0], ["sh", "-c", "echo from-c1 | timeout 10 nc -N \(ips[2]) 7000"], timeout: 15)
            if client?.ok == true && client?.stdout.contains("from-c3") == true { break }
            usleep(100_000)
        }
        XCTAssertEqual(done.wait(timeout: .now() + 30), .success, "nc server did not finish")
        XCTAssertTrue(client?.stdout.contains("from-c3") == true, "client: \(client?.description ?? "none")")
        XCTAssertTrue(served?.stdout.contains("from-c1") == true, "server: \(served?.description ?? "none")")
    }

    func testBroadcastAndMulticastCrossTheOverlay() throws {
        let (ctrs, ips) = addOnEveryHost()
        // A broadcast: c1's ARP request for c2 (nothing was sent before: no neighbour entry).
        XCTAssertNil(vx.neighbours(ctrs[0])[ips[1]])
        let arping = world.exec(in: ctrs[0], ["ping", "-c", "1", "-W", "2", ips[1]], timeout: 10)
        XCTAssertEqual(arping.status, 0, arping.description)
        XCTAssertEqual(vx.neighbours(ctrs[0])[ips[1]], vx.mac(ctrs[1]), "c1 resolved c2 by broadcast ARP")
        XCTAssertEqual(vx.neighbours(ctrs[1])[ips[0]], vx.mac(ctrs[0]), "c2 learned c1 from its request")

        // Multicast: listeners on hosts 2 and 3 join 239.1.1.1, c1 sends until both have it.
        let group = "239.1.1.1", port = 5000
        nonisolated(unsafe) var heard: [CommandResult?] = [nil, nil]
        let group2 = DispatchGroup()
        for (k, ctr) in ctrs.dropFirst().enumerated() {
            group2.enter()
            Thread { [world, ip = ips[k + 1]] in
                heard[k] = world!.exec(in: ctr, ["python3", "-c", Self.listener(group: group, port: port, local: ip)], timeout: 30)
                group2.leave()
            }.start()
        }
        let sender = world.exec(in: ctrs[0], ["python3", "-c", Self.sender(group: group, port: port, local: ips[0])], timeout: 30)
        XCTAssertEqual(sender.status, 0, sender.description)
        XCTAssertEqual(group2.wait(timeout: .now() + 30), .success, "listeners did not finish")
        for (k, r) in heard.enumerated() {
            XCTAssertEqual(r?.status, 0, "listener on host \(k + 2): \(r?.description ?? "none")")
            XCTAssertTrue(r?.stdout.contains("hello-multicast from \(ips[0])") == true, "host \(k + 2): \(r?.description ?? "none")")
        }
    }

    /// Joins `group` on the interface holding `local`, prints the first datagram and its sender.
    static func listener(group: String, port: Int, local: String) -> String {
        """
        import socket, struct
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("\(group)", \(port)))
        s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, socket.inet_aton("\(group)") + socket.inet_aton("\(local)"))
        s.settimeout(20)
        data, addr = s.recvfrom(1500)
        print(data.decode(), "from", addr[0])
        """
    }

    /// Sends a datagram to `group` from `local` every 100 ms for 4 s (the listeners join meanwhile).
    static func sender(group: String, port: Int, local: String) -> String {
        """
        import socket, time
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("\(local)"))
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
        for _ in range(40):
            s.sendto(b"hello-multicast", ("\(group)", \(port)))
            time.sleep(0.1)
        """
    }
}
