// `netlab demo`: every network mode, end to end, on two simulated hosts (never the machine's
// own netns). It drives the netlab executable itself, as a person would, and checks each
// mode's effect; one row per mode, pass/fail, and everything it made is removed at the end.

import CNI
import Netlink
import Runtime
import SystemKit

public struct Demo {
    public static let hostA = "nldemo-a"
    public static let hostOut = "nldemo-out"

    /// One mode tried: what was run, whether it did what the mode promises, and what was seen.
    public struct Row: Sendable {
        public var mode: String
        public var tried: String
        public var passed: Bool
        public var detail: String
    }

    let executable: String
    let globalArgs: [String]
    let log: (String) -> Void

    /// `globalArgs`: `--run-dir`/`--cni-path` to pass on (never `--host`).
    public init(executable: String, globalArgs: [String], log: @escaping (String) -> Void) {
        self.executable = executable
        self.globalArgs = globalArgs
        self.log = log
    }

    struct Output { var status: Int32; var out: String; var err: String }

    /// `netlab ARGS… [--host H] [runArgs]` with output captured; stdin is empty.
    @discardableResult
    func netlab(_ sub: [String], host: String? = nil, _ rest: [String] = []) -> Output {
        let args = sub + globalArgs + (host.map { ["--host", $0] } ?? []) + rest
        log("$ netlab " + args.map { $0.contains(" ") || $0.contains("\n") ? "'…'" : $0 }.joined(separator: " "))
        let r: Output
        do {
            let o = try Subprocess.run(executable, arguments: args, environment: Environment.current)
            r = Output(status: o.status.shellExitCode, out: String(decoding: o.stdout, as: UTF8.self),
                       err: String(decoding: o.stderr, as: UTF8.self))
        } catch {
            r = Output(status: -1, out: "", err: "\(error)")
        }
        for line in (r.out + r.err).split(separator: "\n").prefix(6) { log("  " + line) }
        return r
    }

    /// Runs every row; returns them (the caller prints the table and the exit status).
    public func run() -> [Row] {
        let a = Self.hostA, o = Self.hostOut
        removeHosts()
        defer { removeHosts() }
        guard netlab(["host", "add"], host: nil, [a]).status == 0, netlab(["host", "add"], host: nil, [o]).status == 0,
              let aAddr = underlayAddress(a), let oAddr = underlayAddress(o) else {
            return [Row(mode: "setup", tried: "create simulated hosts \(a), \(o)", passed: false, detail: "host add failed")]
        }
        return [noneRow(on: a), hostRow(on: a, address: aAddr), containerRow(on: a), bridgeRow(on: a),
                masqueradeRow(from: a, address: aAddr, to: o, address: oAddr),
                publishedPortRow(on: a, address: aAddr, from: o), overlayRow(a, o)]
    }

    // MARK: one row per mode

    /// none: own netns, only lo, and it is up.
    func noneRow(on a: String) -> Row {
        let none = netlab(["run", "--rm", "--network", "none"], host: a, ["--", "ip", "-o", "link", "show"])
        let lines = none.out.split(separator: "\n")
        return Row(mode: "none", tried: "run --network none -- ip -o link show",
                   passed: none.status == 0 && lines.count == 1 && lines[0].contains("lo:") && lines[0].contains(",UP"),
                   detail: lines.count == 1 ? "only lo, UP" : "links: \(lines.count)")
    }

    /// host: the simulated host's interfaces, eth0 with its underlay address.
    func hostRow(on a: String, address aAddr: String) -> Row {
        let host = netlab(["run", "--rm", "--network", "host"], host: a, ["--", "ip", "-o", "-4", "addr", "show", "eth0"])
        return Row(mode: "host", tried: "run --network host -- ip -4 addr show eth0",
                   passed: host.status == 0 && host.out.contains(aAddr + "/"),
                   detail: "eth0 has \(aAddr) = \(a)'s underlay address")
    }

    /// container: a pod's pause container; a server and a client join its netns.
    func containerRow(on a: String) -> Row {
        var pod = netlab(["run", "-d", "--name", "demo-pod", "--network", "bridge"], host: a, ["pause"]).status == 0
        pod = pod && netlab(["run", "-d", "--name", "demo-srv", "--network", "container:demo-pod"], host: a,
                            ["--", "python3", "-c", DemoScripts.server(port: 7000, reply: "hello over 127.0.0.1")]).status == 0
        let cli = netlab(["run", "--rm", "--network", "container:demo-pod"], host: a,
                         ["--", "python3", "-c", DemoScripts.client("127.0.0.1", port: 7000)])
        return Row(mode: "container", tried: "pause pod + server + client in container:demo-pod, 127.0.0.1:7000",
                   passed: pod && cli.status == 0 && cli.out.contains("hello over 127.0.0.1"),
                   detail: "client got: \(cli.out.trimmedLines)")
    }

    /// bridge: container to container by ping (demo-pod is on the bridge network).
    func bridgeRow(on a: String) -> Row {
        let podIP = containerIP(a, "demo-pod", network: "bridge") ?? "?"
        let ping = netlab(["run", "--rm", "--network", "bridge"], host: a, ["--", "ping", "-c", "1", "-W", "2", podIP])
        return Row(mode: "bridge", tried: "ping demo-pod (\(podIP)) from another container on bridge",
                   passed: ping.status == 0, detail: ping.status == 0 ? "1 packet received" : "ping failed")
    }

    /// bridge: out through masquerade to the outside host, which reports the peer address.
    func masqueradeRow(from a: String, address aAddr: String, to o: String, address oAddr: String) -> Row {
        let echo = netlab(["run", "-d", "--name", "demo-echo", "--network", "host"], host: o,
                          ["--", "python3", "-c", DemoScripts.server(port: 9000, reply: nil)]).status == 0
        let masq = netlab(["run", "--rm", "--network", "bridge"], host: a, ["--", "python3", "-c", DemoScripts.client(oAddr, port: 9000)])
        let peer = masq.out.trimmedLines
        return Row(mode: "bridge (masquerade)", tried: "container on \(a) -> \(o) \(oAddr):9000",
                   passed: echo && masq.status == 0 && peer == aAddr,
                   detail: "\(o) saw peer \(peer.isEmpty ? "-" : peer) (want \(aAddr))")
    }

    /// bridge: a published port reached from the outside host.
    func publishedPortRow(on a: String, address aAddr: String, from o: String) -> Row {
        let web = netlab(["run", "-d", "--name", "demo-web", "--network", "bridge", "-p", "8080:80"], host: a,
                         ["--", "python3", "-c", DemoScripts.server(port: 80, reply: "hello from demo-web:80")]).status == 0
        let pub = netlab(["run", "--rm", "--network", "host"], host: o, ["--", "python3", "-c", DemoScripts.client(aAddr, port: 8080)])
        return Row(mode: "bridge (-p 8080:80)", tried: "\(o) -> \(aAddr):8080",
                   passed: web && pub.status == 0 && pub.out.contains("hello from demo-web:80"),
                   detail: "got: \(pub.out.trimmedLines)")
    }

    static let overlayNetwork = "demo-overlay"

    /// overlay: a network spanning both hosts; a container on the outside host reaches one on
    /// nldemo-a through VXLAN, each in its host's leased subnet.
    func overlayRow(_ a: String, _ o: String) -> Row {
        let tried = "container on \(o) -> container on \(a) over --driver overlay"
        guard netlab(["network", "create", "--driver", "overlay", "--subnet", "10.244.0.0/16"], host: nil, [Self.overlayNetwork]).status == 0 else {
            return Row(mode: "overlay", tried: tried, passed: false, detail: "network create failed")
        }
        let srv = netlab(["run", "-d", "--name", "demo-ov", "--network", Self.overlayNetwork], host: a,
                         ["--", "python3", "-c", DemoScripts.server(port: 7100, reply: "hello across hosts")]).status == 0
        let ip = containerIP(a, "demo-ov", network: Self.overlayNetwork) ?? "?"
        let cli = netlab(["run", "--rm", "--network", Self.overlayNetwork], host: o,
                         ["--", "python3", "-c", DemoScripts.client(ip, port: 7100)])
        let leases = [a, o].map { "\($0) \(leasedSubnet($0) ?? "?")" }.joined(separator: ", ")
        return Row(mode: "overlay", tried: "\(tried) (\(ip):7100)",
                   passed: srv && cli.status == 0 && cli.out.contains("hello across hosts"),
                   detail: "leased: \(leases); got: \(cli.out.trimmedLines)")
    }

    /// The subnet `host` leased on the demo's overlay network, as `network ls` shows it.
    func leasedSubnet(_ host: String) -> String? {
        for line in netlab(["network", "ls"], host: host).out.split(separator: "\n") {
            let f = line.split(separator: " ", omittingEmptySubsequences: true)
            if f.count >= 4, f[0] == Self.overlayNetwork { return String(f[3]) }
        }
        return nil
    }

    // MARK: hosts and addresses

    /// Removes the demo's hosts, also what a crash in the middle of `host add` left (a netns
    /// or underlay port without a host record). Best effort: whatever stays behind makes the
    /// next `host add` fail, and that shows as the setup row.
    func removeHosts() {
        // The overlay network first (it spans both hosts); each step fails harmlessly when
        // there is nothing to remove.
        for h in [Self.hostA, Self.hostOut] { netlab(["rm", "-f"], host: h, ["demo-ov"]) }
        netlab(["network", "rm"], host: nil, [Self.overlayNetwork])
        for h in [Self.hostA, Self.hostOut] {
            if netlab(["host", "ls"]).out.split(separator: "\n").contains(where: { $0.hasPrefix(h + " ") }) {
                netlab(["host", "rm", "-f"], host: nil, [h])
            }
            let ns = SimulatedHosts.netnsName(h)
            // Best effort: what a crashed earlier run left; anything still there fails the next step loudly.
            if NetworkNamespace.isLive(path: NetworkNamespace.path(named: ns)) { try? NetworkNamespace.delete(named: ns) }
            if let underlay = try? RouteSocket(namespace: SimulatedHosts.underlayNetns) {
                try? underlay.deleteLink(named: "u-" + h)
            }
        }
    }

    /// A host's underlay address, as `netlab host ls` shows it.
    func underlayAddress(_ host: String) -> String? {
        for line in netlab(["host", "ls"]).out.split(separator: "\n") {
            let f = line.split(separator: " ", omittingEmptySubsequences: true)
            if f.count >= 3, f[0] == host { return f[2].split(separator: "/").first.map(String.init) }
        }
        return nil
    }

    /// A container's address on `network`, as `netlab inspect` shows it; nil (a failing row)
    /// when inspect fails or prints no address.
    func containerIP(_ host: String, _ name: String, network: String) -> String? {
        let out = netlab(["inspect"], host: host, [name]).out
        // Output that is not a container record means "no address": the row then fails naming it.
        guard let v = try? JSONValue.parse(Array(out.utf8)),
              let addr = v["networks"]?[network]?["ips"]?.arrayValue?.first?["address"]?.stringValue else { return nil }
        return addr.split(separator: "/").first.map(String.init)
    }
}

extension String {
    /// Without leading and trailing whitespace and newlines.
    var trimmedLines: String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\n" || $0 == "\t" || $0 == "\r" }
        return String(drop(while: isSpace).reversed().drop(while: isSpace).reversed())
    }
}
