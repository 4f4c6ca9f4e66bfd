import Foundation
import NFTables
import NetTypes
import TestSupport
import XCTest

/// Traffic test: a DNAT rule built with RuleBuilder (map lookup on `meta l4proto . th dport`)
/// redirects TCP connections to a listener inside a container netns.
final class DNATTests: XCTestCase {
    func testDNATMapRedirectsConnectionsToContainer() throws {
        let world = TestWorld()
        addTeardownBlock { world.cleanup() }
        let host = world.netns("host"), ctr = world.netns("ctr"), out = world.netns("out")
        wire(world, host: host, ctr: ctr, out: out)

        // Program the host netns from outside it.
        let sock = try NFTSocket(namespacePath: world.path(host))
        let pm = try program(sock)

        // From the outside netns to the host address, and from the host itself (output hook).
        for (client, label, port) in [(out, "outside", 9080), (host, "host", 9080), (out, "hostip", 9081)] {
            let (sent, served) = exchange(world, client: client, server: ctr, label: label, port: port)
            XCTAssertTrue(sent.ok, "\(sent)")
            XCTAssertEqual(sent.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "ack:hello-\(label)")
            XCTAssertTrue(served.ok, "\(served)")
            // No SNAT: the container sees the real client (the host picks its source before DNAT).
            let source = label == "host" ? "198.18.0.1" : "198.18.0.2"
            XCTAssertEqual(served.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "hello-\(label) \(source)")
        }

        // Removing the map element stops the redirection (the connection is refused by the host).
        try sock.apply({ var d = Batch(); d.deleteElements(pm, [SetElement(key: [.tcp, .port(9080)])]); return d }())
        let refused = world.exec(in: out, ["python3", "-c", """
            import socket
            try:
                socket.create_connection(("198.18.0.1", 9080), timeout=5); print("connected")
            except ConnectionRefusedError:
                print("refused")
            """])
        XCTAssertEqual(refused.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "refused", "\(refused)")
    }

    /// host <-> container (10.88.0.0/24) and host <-> outside (198.18.0.0/24), forwarding on.
    private func wire(_ world: TestWorld, host: String, ctr: String, out: String) {
        func ok(_ r: CommandResult, file: StaticString = #filePath, line: UInt = #line) {
            XCTAssertTrue(r.ok, "\(r)", file: file, line: line)
        }
        ok(runCommand(["ip", "-n", host, "link", "add", "vc", "type", "veth", "peer", "name", "eth0", "netns", ctr]))
        ok(runCommand(["ip", "-n", host, "link", "add", "vo", "type", "veth", "peer", "name", "eth0", "netns", out]))
        ok(runCommand(["ip", "-n", host, "addr", "add", "10.88.0.1/24", "dev", "vc"]))
        ok(runCommand(["ip", "-n", host, "addr", "add", "198.18.0.1/24", "dev", "vo"]))
        ok(runCommand(["ip", "-n", ctr, "addr", "add", "10.88.0.2/24", "dev", "eth0"]))
        ok(runCommand(["ip", "-n", out, "addr", "add", "198.18.0.2/24", "dev", "eth0"]))
        for (ns, dev) in [(host, "vc"), (host, "vo"), (ctr, "eth0"), (out, "eth0")] {
            ok(runCommand(["ip", "-n", ns, "link", "set", dev, "up"]))
        }
        ok(runCommand(["ip", "-n", ctr, "route", "add", "default", "via", "10.88.0.1"]))
        ok(world.exec(in: host, ["sysctl", "-qw", "net.ipv4.ip_forward=1"]))
    }

    /// Port 9080 (any host address) and 198.18.0.1:9081 to 10.88.0.2:8000; returns the
    /// any-address map.
    private func program(_ sock: NFTSocket) throws -> NFTSet {
        let t = Table(family: .inet, name: "netlab")
        let pre = Chain(table: t, name: "prerouting", type: .nat, hook: .prerouting, priority: -100, policy: .accept)
        let output = Chain(table: t, name: "output", type: .nat, hook: .output, priority: -100, policy: .accept)
        let pm = NFTSet(table: t, name: "portmap_v4", keyType: [.inetProto, .inetService],
                        data: .values([.ipv4Addr, .inetService]))
        let hm = NFTSet(table: t, name: "hostport_v4", keyType: [.ipv4Addr, .inetProto, .inetService],
                        data: .values([.ipv4Addr, .inetService]))
        var b = Batch()
        b.add(t); b.add(pre); b.add(output); b.add(pm); b.add(hm)
        b.add(Rule(chain: pre) { $0.dnat(.v4, key: [.ipDaddr, .l4proto, .thDport], map: "hostport_v4") })
        b.addElements(hm, [SetElement(key: [.address(IPAddress("198.18.0.1")!), .tcp, .port(9081)],
                                      value: .data([.address(IPAddress("10.88.0.2")!), .port(8000)]))])
        for c in [pre, output] {
            b.add(Rule(chain: c) { $0.fibDaddrTypeLocal().dnat(.v4, key: [.l4proto, .thDport], map: "portmap_v4") })
        }
        b.addElements(pm, [SetElement(key: [.tcp, .port(9080)], value: .data([.address(IPAddress("10.88.0.2")!), .port(8000)]),
                                      comment: "ctr-dnat-test")])
        try sock.apply(b)
        return pm
    }

    /// One connection from `client` to 198.18.0.1:`port`, answered by a listener on
    /// 10.88.0.2:8000 in `server`: what the client printed and what the listener printed.
    private func exchange(_ world: TestWorld, client: String, server: String, label: String,
                          port: Int) -> (sent: CommandResult, served: CommandResult) {
        let listener = """
        import socket
        s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("10.88.0.2", 8000)); s.listen(1); s.settimeout(30)
        c, a = s.accept(); data = c.recv(100); c.sendall(b"ack:" + data); c.close()
        print(data.decode(), a[0])
        """
        let clientScript = """
        import socket, time
        for i in range(300):
            try:
                c = socket.create_connection(("198.18.0.1", \(port)), timeout=2); break
            except OSError:
                time.sleep(0.05)
        c.sendall(b"hello-\(label)"); print(c.recv(100).decode())
        """
        nonisolated(unsafe) var served: CommandResult? = nil
        let done = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            served = world.exec(in: server, ["python3", "-c", listener], timeout: 60)
            done.signal()
        }
        let sent = world.exec(in: client, ["python3", "-c", clientScript], timeout: 60)
        done.wait()
        return (sent, served!)
    }
}
