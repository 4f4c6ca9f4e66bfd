// A world for the tuning plugin's integration tests: a container netns whose eth0 is a veth
// to a host netns, with addresses and a default route as a main plugin leaves them, the
// tuning plugin chained after it, and readers of the interface and the sysctls that fail the
// test when `ip` or `sysctl` fails.

import Foundation
import XCTest
import TestSupport

final class TuningWorld {
    let world: TestWorld
    let host: String
    let dataDir: String
    let network = "tunet"

    init(_ world: TestWorld) {
        self.world = world
        host = world.netns("host")
        dataDir = world.tempDirectory("tuning") + "/data"
    }

    /// A container netns with eth0 (veth to the host) at 10.66.0.N/24 + fd66::N/64 and default
    /// routes; fails the test when the setup fails.
    func container(_ role: String, octet: Int = 2, file: StaticString = #filePath, line: UInt = #line) -> String {
        let ns = world.netns(role)
        let peer = world.shortName("tuv")
        let r = sh("""
        set -e
        ip -n \(host) link add \(peer) type veth peer name eth0 netns \(ns)
        ip -n \(host) addr add 10.66.0.1/24 dev \(peer) 2>/dev/null || true
        ip -n \(host) link set \(peer) up
        ip -n \(ns) addr add 10.66.0.\(octet)/24 dev eth0
        ip -n \(ns) addr add fd66::\(octet)/64 dev eth0 nodad
        ip -n \(ns) link set eth0 up
        ip -n \(ns) route add default via 10.66.0.1
        """)
        XCTAssertTrue(r.ok, "container \(role): \(r)", file: file, line: line)
        return ns
    }

    func prevResult(_ ns: String, mac: String = "02:00:00:00:00:01") -> String {
        #"{"cniVersion":"1.0.0","interfaces":[{"name":"eth0","mac":"\#(mac)","sandbox":"\#(world.path(ns))"}],"ips":[{"address":"10.66.0.2/24","gateway":"10.66.0.1","interface":0}]}"#
    }

    func config(_ options: [String: Any], prevResult: String? = nil, version: String = "1.0.0") -> String {
        var c: [String: Any] = ["cniVersion": version, "name": network, "type": "tuning", "dataDir": dataDir]
        for (k, v) in options { c[k] = v }
        if let prevResult { c["prevResult"] = FirewallWorld.object(prevResult) }
        return FirewallWorld.json(c)
    }

    @discardableResult
    func run(_ command: String, _ config: String, netns: String?, id: String = "tun1", args: String? = nil) -> CommandResult {
        world.runPlugin("tuning", command: command, config: config, containerID: id, netns: netns.map { world.path($0) },
                        ifname: "eth0", args: args, hostNetns: host)
    }

    /// What a test compares: the interface's attributes and a few sysctls of the netns.
    struct State: Equatable, CustomStringConvertible {
        var name: String
        var mac: String
        var mtu: Int
        var promisc: Bool
        var allmulti: Bool
        var txqlen: Int
        var sysctls: [String: String]
        var description: String {
            "\(name) mac \(mac) mtu \(mtu) promisc \(promisc) allmulti \(allmulti) qlen \(txqlen) \(sysctls.sorted { $0.key < $1.key })"
        }
    }

    /// `ip -j -d link show dev NAME` in `ns`; fails the test (and returns [:]) when ip fails.
    func link(_ ns: String, _ name: String, file: StaticString = #filePath, line: UInt = #line) -> [String: Any] {
        let r = runCommand(["ip", "-n", ns, "-j", "-d", "link", "show", "dev", name])
        guard r.ok, let l = r.jsonArray?.first else {
            XCTFail("ip -n \(ns) link show dev \(name): \(r)", file: file, line: line)
            return [:]
        }
        return l
    }

    /// `sysctl -n KEY` inside `ns`; fails the test when sysctl fails.
    func sysctl(_ ns: String, _ key: String, file: StaticString = #filePath, line: UInt = #line) -> String {
        let r = world.exec(in: ns, ["sysctl", "-n", key])
        XCTAssertTrue(r.ok, "sysctl -n \(key) in \(ns): \(r)", file: file, line: line)
        return r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The state of interface `name` and of `keys` (`IFNAME` standing for `name`).
    func state(_ ns: String, _ name: String = "eth0", keys: [String],
               file: StaticString = #filePath, line: UInt = #line) -> State {
        let l = link(ns, name, file: file, line: line)
        let flags = l["flags"] as? [String] ?? []
        var s: [String: String] = [:]
        for k in keys { s[k] = sysctl(ns, k.replacingOccurrences(of: "IFNAME", with: name), file: file, line: line) }
        // `ip -j` leaves out a queue length of 0; sysfs (remounted by `ip netns exec`) always shows it.
        let q = world.exec(in: ns, ["cat", "/sys/class/net/\(name)/tx_queue_len"])
        XCTAssertTrue(q.ok, "tx_queue_len of \(name) in \(ns): \(q)", file: file, line: line)
        return State(name: l["ifname"] as? String ?? "", mac: l["address"] as? String ?? "", mtu: l["mtu"] as? Int ?? -1,
                     promisc: flags.contains("PROMISC"), allmulti: flags.contains("ALLMULTI"),
                     txqlen: Int(q.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1, sysctls: s)
    }

    /// The saved-originals file of an attachment.
    func file(_ id: String = "tun1") -> String { "\(dataDir)/\(id)_eth0.json" }

    /// The files in the data directory ([] when it does not exist yet).
    func files(file: StaticString = #filePath, line: UInt = #line) -> [String] {
        guard FileManager.default.fileExists(atPath: dataDir) else { return [] }
        do {
            return try FileManager.default.contentsOfDirectory(atPath: dataDir).sorted()
        } catch {
            XCTFail("list \(dataDir): \(error)", file: file, line: line)
            return []
        }
    }
}
