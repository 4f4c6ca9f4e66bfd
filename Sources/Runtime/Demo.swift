// `netlab demo`: every network mode, end to end, on two simulated hosts (never the machine's
// own netns). It drives the netlab executable itself, as a person would, and checks each
// mode's effect; one row per mode, pass/fail, and everything it made is removed at the end.

import CNI
import FoundationEssentials
import Glibc
import Netlink

public struct Demo {
    public static let hostA = "nldemo-a"
    public static let hostOut = "nldemo-out"

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

    /// `netlab ARGS… [--host H] [runArgs]` with output captured.
    @discardableResult
    func netlab(_ sub: [String], host: String? = nil, _ rest: [String] = []) -> Output {
        let args = sub + globalArgs + (host.map { ["--host", $0] } ?? []) + rest
        log("$ netlab " + args.map { $0.contains(" ") || $0.contains("\n") ? "'…'" : $0 }.joined(separator: " "))
        let r = Self.capture([executable] + args)
        for line in (r.out + r.err).split(separator: "\n").prefix(6) { log("  " + line) }
        return r
    }

    static func server(port: Int, reply: String?) -> String {
        """
        import socket
        s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", \(port))); s.listen(16)
        while True:
            c, a = s.accept(); c.sendall(\(reply.map { "b\"\($0)\"" } ?? "a[0].encode()")); c.close()
        """
    }

    static func client(_ host: String, port: Int) -> String {
        """
        import socket, sys, time
        for i in range(60):
            try:
                s = socket.create_connection(("\(host)", \(port)), timeout=2); print(s.recv(200).decode()); sys.exit(0)
            except OSError:
                time.sleep(0.1)
        sys.exit(1)
        """
    }

    /// Removes the demo's hosts, also what a crash in the middle of `host add` left (a netns
    /// or underlay port without a host record).
    func removeHosts() {
        for h in [Self.hostA, Self.hostOut] {
            if netlab(["host", "ls"]).out.split(separator: "\n").contains(where: { $0.hasPrefix(h + " ") }) {
                netlab(["host", "rm", "-f"], host: nil, [h])
            }
            let ns = SimulatedHosts.netnsName(h)
            if NetworkNamespace.isLive(path: NetworkNamespace.path(named: ns)) { try? NetworkNamespace.delete(named: ns) }
            if let underlay = try? RouteSocket(namespace: SimulatedHosts.underlayNetns) {
                try? underlay.deleteLink(named: "u-" + h)
            }
        }
    }

    func underlayAddress(_ host: String) -> String? {
        for line in netlab(["host", "ls"]).out.split(separator: "\n") {
            let f = line.split(separator: " ", omittingEmptySubsequences: true)
            if f.count >= 3, f[0] == host { return f[2].split(separator: "/").first.map(String.init) }
        }
        return nil
    }

    func containerIP(_ host: String, _ name: String, network: String) -> String? {
        let out = netlab(["inspect"], host: host, [name]).out
        guard let v = try? JSONValue.parse(Array(out.utf8)),
              let addr = v["networks"]?[network]?["ips"]?.arrayValue?.first?["address"]?.stringValue else { return nil }
        return addr.split(separator: "/").first.map(String.init)
    }

    /// Runs every row; returns them (the caller prints the table and the exit status).
    public func run() -> [Row] {
        var rows: [Row] = []
        let a = Self.hostA, o = Self.hostOut
        removeHosts()
        defer { removeHosts() }
        guard netlab(["host", "add"], host: nil, [a]).status == 0, netlab(["host", "add"], host: nil, [o]).status == 0,
              let aAddr = underlayAddress(a), let oAddr = underlayAddress(o) else {
            return [Row(mode: "setup", tried: "create simulated hosts \(a), \(o)", passed: false, detail: "host add failed")]
        }

        // none: own netns, only lo, and it is up.
        let none = netlab(["run", "--rm", "--network", "none"], host: a, ["--", "ip", "-o", "link", "show"])
        let noneLines = none.out.split(separator: "\n")
        rows.append(Row(mode: "none", tried: "run --network none -- ip -o link show",
                        passed: none.status == 0 && noneLines.count == 1 && noneLines[0].contains("lo:")
                            && noneLines[0].contains(",UP"),
                        detail: noneLines.count == 1 ? "only lo, UP" : "links: \(noneLines.count)"))

        // host: the simulated host's interfaces, eth0 with its underlay address.
        let host = netlab(["run", "--rm", "--network", "host"], host: a, ["--", "ip", "-o", "-4", "addr", "show", "eth0"])
        rows.append(Row(mode: "host", tried: "run --network host -- ip -4 addr show eth0",
                        passed: host.status == 0 && host.out.contains(aAddr + "/"),
                        detail: "eth0 has \(aAddr) = \(a)'s underlay address"))

        // container: a pod's pause container; a server and a client join its netns.
        var pod = netlab(["run", "-d", "--name", "demo-pod", "--network", "bridge"], host: a, ["pause"]).status == 0
        pod = pod && netlab(["run", "-d", "--name", "demo-srv", "--network", "container:demo-pod"], host: a,
                            ["--", "python3", "-c", Self.server(port: 7000, reply: "hello over 127.0.0.1")]).status == 0
        let cli = netlab(["run", "--rm", "--network", "container:demo-pod"], host: a,
                         ["--", "python3", "-c", Self.client("127.0.0.1", port: 7000)])
        rows.append(Row(mode: "container", tried: "pause pod + server + client in container:demo-pod, 127.0.0.1:7000",
                        passed: pod && cli.status == 0 && cli.out.contains("hello over 127.0.0.1"),
                        detail: "client got: \(cli.out.trimmedLines)"))

        // bridge: container to container by ping.
        let podIP = containerIP(a, "demo-pod", network: "bridge") ?? "?"
        let ping = netlab(["run", "--rm", "--network", "bridge"], host: a, ["--", "ping", "-c", "1", "-W", "2", podIP])
        rows.append(Row(mode: "bridge", tried: "ping demo-pod (\(podIP)) from another container on bridge",
                        passed: ping.status == 0, detail: ping.status == 0 ? "1 packet received" : "ping failed"))

        // bridge: out through masquerade to the outside host, which reports the peer address.
        let echo = netlab(["run", "-d", "--name", "demo-echo", "--network", "host"], host: o,
                          ["--", "python3", "-c", Self.server(port: 9000, reply: nil)]).status == 0
        let masq = netlab(["run", "--rm", "--network", "bridge"], host: a, ["--", "python3", "-c", Self.client(oAddr, port: 9000)])
        let peer = masq.out.trimmedLines
        rows.append(Row(mode: "bridge (masquerade)", tried: "container on \(a) -> \(o) \(oAddr):9000",
                        passed: echo && masq.status == 0 && peer == aAddr,
                        detail: "\(o) saw peer \(peer.isEmpty ? "-" : peer) (want \(aAddr))"))

        // bridge: a published port reached from the outside host.
        let web = netlab(["run", "-d", "--name", "demo-web", "--network", "bridge", "-p", "8080:80"], host: a,
                         ["--", "python3", "-c", Self.server(port: 80, reply: "hello from demo-web:80")]).status == 0
        let pub = netlab(["run", "--rm", "--network", "host"], host: o, ["--", "python3", "-c", Self.client(aAddr, port: 8080)])
        rows.append(Row(mode: "bridge (-p 8080:80)", tried: "\(o) -> \(aAddr):8080",
                        passed: web && pub.status == 0 && pub.out.contains("hello from demo-web:80"),
                        detail: "got: \(pub.out.trimmedLines)"))
        return rows
    }

    /// Runs argv[0] with argv, stdin /dev/null; stdout through a pipe, stderr through a file.
    static func capture(_ argv: [String]) -> Output {
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { return Output(status: -1, out: "", err: "pipe: errno \(errno)") }
        var tmpl = Array("/tmp/netlab-demo-XXXXXX".utf8CString)
        let errFD = mkstemp(&tmpl)
        for fd in fds + [errFD] where fd >= 0 { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        let errPath = String(cString: tmpl)
        unlink(errPath)
        let nullFD = open("/dev/null", O_RDONLY | O_CLOEXEC)
        defer { close(fds[0]); if errFD >= 0 { close(errFD) }; if nullFD >= 0 { close(nullFD) } }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, nullFD, 0)
        posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
        posix_spawn_file_actions_adddup2(&actions, errFD >= 0 ? errFD : fds[1], 2)
        var pid: pid_t = 0
        let rc = withCStrings(argv) { argvp in
            posix_spawn(&pid, argv[0], &actions, nil, UnsafeMutablePointer(mutating: argvp), environ)
        }
        close(fds[1])
        guard rc == 0 else { return Output(status: -1, out: "", err: "posix_spawn \(argv[0]): errno \(rc)") }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buf.withUnsafeMutableBytes { read(fds[0], $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            out += buf[0..<n]
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        var err: [UInt8] = []
        if errFD >= 0 {
            lseek(errFD, 0, SEEK_SET)
            while true {
                let n = buf.withUnsafeMutableBytes { read(errFD, $0.baseAddress, $0.count) }
                if n <= 0 { break }
                err += buf[0..<n]
            }
        }
        let code: Int32 = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return Output(status: code, out: String(decoding: out, as: UTF8.self), err: String(decoding: err, as: UTF8.self))
    }

    /// The rows as a table.
    public static func table(_ rows: [Row]) -> String {
        var cells = [["MODE", "TRIED", "RESULT", "DETAIL"]]
        cells += rows.map { [$0.mode, $0.tried, $0.passed ? "pass" : "FAIL", $0.detail] }
        let widths = (0..<4).map { c in cells.map { $0[c].count }.max()! }
        return cells.map { row in
            row.enumerated().map { i, c in i == 3 ? c : c + String(repeating: " ", count: widths[i] - c.count) }
                .joined(separator: "  ")
        }.joined(separator: "\n")
    }
}

extension String {
    /// Without leading and trailing whitespace and newlines.
    var trimmedLines: String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\n" || $0 == "\t" || $0 == "\r" }
        return String(drop(while: isSpace).reversed().drop(while: isSpace).reversed())
    }
}
