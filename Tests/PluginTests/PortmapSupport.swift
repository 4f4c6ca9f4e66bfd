import Foundation
import XCTest
import TestSupport

/// A small host: netns "host" with bridge 10.88.0.1/24 + fd88::1/64 and an underlay veth
/// 192.168.77.2/24 + fd77::2/64 to netns "outside" (192.168.77.1, fd77::1, with routes to the
/// container subnets via the host for hostIP tests). Containers are netns on the bridge.
final class PortmapWorld {
    let world: TestWorld
    let host: String
    let outside: String
    let bridge: String
    private var servers: [Process] = []
    private var nextOctet = 10

    static let hostUnderlayV4 = "192.168.77.2"
    static let hostUnderlayV6 = "fd77::2"
    static let bridgeV4 = "10.88.0.1"
    static let bridgeV6 = "fd88::1"

    struct Container {
        var netns: String
        var id: String
        var v4: String
        var v6: String
    }

    /// Builds the world; a failed setup command fails the running test with its stderr.
    init(_ world: TestWorld, file: StaticString = #filePath, line: UInt = #line) {
        self.world = world
        host = world.netns("host", file: file, line: line)
        outside = world.netns("out", file: file, line: line)
        bridge = world.shortName("pmbr")
        let up = world.shortName("pmup")
        let script = """
        set -e
        ip -n \(host) link add \(bridge) type bridge
        ip -n \(host) addr add 10.88.0.1/24 dev \(bridge)
        ip -n \(host) addr add fd88::1/64 dev \(bridge) nodad
        ip -n \(host) link set \(bridge) up
        ip -n \(host) link add \(up) type veth peer name eth0 netns \(outside)
        ip -n \(host) addr add 192.168.77.2/24 dev \(up)
        ip -n \(host) addr add fd77::2/64 dev \(up) nodad
        ip -n \(host) link set \(up) up
        ip -n \(outside) addr add 192.168.77.1/24 dev eth0
        ip -n \(outside) addr add fd77::1/64 dev eth0 nodad
        ip -n \(outside) link set eth0 up
        ip -n \(outside) route add 10.88.0.0/24 via 192.168.77.2
        ip -n \(outside) route add fd88::/64 via fd77::2
        ip netns exec \(host) sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
        """
        TestFailures.reporting((), file: file, line: line) { try runChecked(["/bin/sh", "-c", script]) }
    }

    /// A container netns with eth0 on the bridge, 10.88.0.N/24 and fd88::N/64, default routes.
    func container(_ role: String, file: StaticString = #filePath, line: UInt = #line) -> Container {
        let ns = world.netns(role, file: file, line: line)
        nextOctet += 1
        let n = nextOctet
        let hv = world.shortName("pmv")
        let script = """
        set -e
        ip -n \(host) link add \(hv) type veth peer name eth0 netns \(ns)
        ip -n \(host) link set \(hv) master \(bridge) up
        ip -n \(host) link set \(hv) type bridge_slave hairpin on
        ip -n \(ns) addr add 10.88.0.\(n)/24 dev eth0
        ip -n \(ns) addr add fd88::\(n)/64 dev eth0 nodad
        ip -n \(ns) link set eth0 up
        ip -n \(ns) route add default via 10.88.0.1
        ip -n \(ns) -6 route add default via fd88::1
        """
        TestFailures.reporting((), file: file, line: line) { try runChecked(["/bin/sh", "-c", script]) }
        return Container(netns: ns, id: "ctr-\(role)-\(world.tag)", v4: "10.88.0.\(n)", v6: "fd88::\(n)")
    }

    func prevResult(_ c: Container, v6: Bool = true) -> String {
        let ips = [#"{"address":"\#(c.v4)/24","gateway":"10.88.0.1","interface":2}"#] +
            (v6 ? [#"{"address":"\#(c.v6)/64","gateway":"fd88::1","interface":2}"#] : [])
        return #"{"cniVersion":"1.0.0","interfaces":[{"name":"\#(bridge)"},{"name":"veth"},{"name":"eth0","sandbox":"\#(world.path(c.netns))"}],"ips":[\#(ips.joined(separator: ","))]}"#
    }

    /// (hostPort, containerPort, protocol, hostIP)
    func config(_ c: Container?, _ maps: [(Int, Int, String, String?)], network: String = "pmnet",
                extra: String = "", v6: Bool = true) -> String {
        let pms = maps.map { m in
            #"{"hostPort":\#(m.0),"containerPort":\#(m.1),"protocol":"\#(m.2)""# + (m.3.map { #","hostIP":"\#($0)""# } ?? "") + "}"
        }.joined(separator: ",")
        var s = #"{"cniVersion":"1.0.0","name":"\#(network)","type":"portmap","capabilities":{"portMappings":true}"#
        s += #","runtimeConfig":{"portMappings":[\#(pms)]}"#
        if let c { s += #","prevResult":\#(prevResult(c, v6: v6))"# }
        return s + extra + "}"
    }

    @discardableResult
    func plugin(_ command: String, _ c: Container, _ config: String) -> CommandResult {
        world.runPlugin("portmap", command: command, config: config, containerID: c.id, netns: c.netns,
                        ifname: "eth0", hostNetns: host)
    }

    /// Starts a TCP+UDP server on `port` in `netns` (dual stack) that answers "<name> <peer>".
    /// A server that does not come up fails the running test.
    @discardableResult
    func serve(_ netns: String, port: Int, name: String, file: StaticString = #filePath, line: UInt = #line) -> Process {
        let ready = world.tempDirectory("srv-\(name)-\(port)") + "/ready"
        let py = """
        import socket,sys,threading
        port=int(sys.argv[1]); name=sys.argv[2].encode()
        def mk(kind):
            s=socket.socket(socket.AF_INET6,kind)
            s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)
            s.setsockopt(socket.IPPROTO_IPV6,socket.IPV6_V6ONLY,0)
            s.bind(("::",port)); return s
        t=mk(socket.SOCK_STREAM); t.listen(512); u=mk(socket.SOCK_DGRAM)
        def udp():
            while True:
                d,a=u.recvfrom(200); u.sendto(name+b" "+a[0].encode(),a)
        threading.Thread(target=udp,daemon=True).start()
        open(sys.argv[3],"w").close()
        while True:
            c,a=t.accept()
            try: c.sendall(name+b" "+a[0].encode())
            except Exception: pass
            c.close()
        """
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
        p.arguments = ["netns", "exec", netns, "python3", "-c", py, String(port), name, ready]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        do { try p.run() } catch {
            TestFailures.record("cannot start server \(name): \(error)", file, line)
            return p
        }
        servers.append(p)
        for _ in 0..<300 where !FileManager.default.fileExists(atPath: ready) { usleep(10_000) }
        if !FileManager.default.fileExists(atPath: ready) {
            TestFailures.record("server \(name) on port \(port) in \(netns) did not start within 3 s", file, line)
        }
        return p
    }

    func stop(_ p: Process) {
        guard p.isRunning else { return }
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
    }

    /// Connects from `netns` to addr:port; returns the server's answer or nil (refused/timeout).
    func connect(from netns: String, _ addr: String, _ port: Int, udp: Bool = false, sourcePort: Int? = nil) -> String? {
        let py = """
        import socket,sys
        a,p,kind,sp=sys.argv[1],int(sys.argv[2]),sys.argv[3],int(sys.argv[4])
        fam=socket.AF_INET6 if ":" in a else socket.AF_INET
        s=socket.socket(fam,socket.SOCK_DGRAM if kind=="udp" else socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)
        s.settimeout(2)
        if sp: s.bind(("::" if fam==socket.AF_INET6 else "0.0.0.0",sp))
        try:
            if kind=="udp":
                # UDP has no retransmission: resend while neighbour discovery settles.
                s.settimeout(0.6)
                for i in range(4):
                    s.sendto(b"hi",(a,p))
                    try:
                        d=s.recvfrom(200)[0]; break
                    except socket.timeout:
                        if i==3: raise
            else:
                s.connect((a,p)); d=s.recv(200)
            sys.stdout.write(d.decode())
        except Exception as e:
            sys.stderr.write(repr(e)); sys.exit(1)
        """
        let r = world.exec(in: netns, ["python3", "-c", py, addr, String(port), udp ? "udp" : "tcp", String(sourcePort ?? 0)],
                           timeout: 10)
        return r.ok ? r.stdout : nil
    }

    /// Elements of the portmap maps and sets (nft -j), as (set name, comment) pairs. A
    /// failing `nft` fails the running test.
    func elements(file: StaticString = #filePath, line: UInt = #line) -> [(set: String, comment: String?)] {
        world.ruleset(host, file: file, line: line).sets(table: "netlab", family: "inet")
            .flatMap { s in s.elements.map { (s.name, $0.comment) } }
    }

    /// `nft list table inet netlab` in the host netns, "" while the table does not exist. A
    /// failing `nft` fails the running test.
    func ruleset(file: StaticString = #filePath, line: UInt = #line) -> String {
        guard world.ruleset(host, file: file, line: line).hasTable(family: "inet", name: "netlab") else { return "" }
        return TestFailures.reporting("", file: file, line: line) {
            try runChecked(["ip", "netns", "exec", host, "nft", "list", "table", "inet", "netlab"]).stdout
        }
    }

    func stopServers() {
        for p in servers where p.isRunning {
            // `ip netns exec` execs python in place: the PID is the server's.
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
        }
        servers = []
    }
}
