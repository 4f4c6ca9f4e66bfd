// A small world for the bridge plugin's integration tests: a host netns (bridge, nftables,
// sysctls live there), container netns, a temporary host-local data directory, and helpers
// that read the kernel state back with ip/nft and fail the running test when those fail.

import Foundation
import XCTest
import TestSupport

final class BridgeWorld {
    let world: TestWorld
    let host: String
    let dataDir: String
    let bridge: String
    let network: String

    init(_ world: TestWorld, network: String = "brnet", role: String = "host") {
        self.world = world
        host = world.netns(role)
        dataDir = world.tempDirectory("ipam")
        bridge = world.shortName("nlbr")
        self.network = network
    }

    /// A bridge network config: `options` merged over the defaults, `ranges` for host-local.
    func config(_ options: [String: Any] = [:], ranges: [[[String: Any]]]? = [[["subnet": "10.99.0.0/24"]]],
                version: String = "1.0.0", ipamExtra: [String: Any] = [:]) -> String {
        var c: [String: Any] = ["cniVersion": version, "name": network, "type": "bridge", "bridge": bridge]
        if let ranges {
            var ipam: [String: Any] = ["type": "host-local", "dataDir": dataDir, "ranges": ranges]
            for (k, v) in ipamExtra { ipam[k] = v }
            c["ipam"] = ipam
        }
        for (k, v) in options { c[k] = v }
        return Self.json(c)
    }

    static func json(_ o: Any) -> String {
        String(data: try! JSONSerialization.data(withJSONObject: o, options: [.sortedKeys]), encoding: .utf8)!
    }

    @discardableResult
    func run(_ command: String, _ config: String, ctr: String?, id: String, ifname: String = "eth0",
             args: String? = nil, cniPath: String? = nil) -> CommandResult {
        world.runPlugin("bridge", command: command, config: config, containerID: id,
                        netns: ctr.map { $0.hasPrefix("/") ? $0 : world.path($0) }, ifname: ifname, args: args,
                        cniPath: cniPath, hostNetns: host)
    }

    /// The config with `prevResult` set (for CHECK/DEL as a runtime sends them).
    func config(_ base: String, prevResult: String) -> String {
        var c = try! JSONSerialization.jsonObject(with: base.data(using: .utf8)!) as! [String: Any]
        c["prevResult"] = try! JSONSerialization.jsonObject(with: prevResult.data(using: .utf8)!)
        return Self.json(c)
    }

    /// Container addresses of an ADD result.
    static func addresses(_ r: CommandResult) -> [String] {
        (r.jsonObject?["ips"] as? [[String: Any]] ?? []).compactMap { $0["address"] as? String }
    }
    static func ip(_ cidr: String) -> String { String(cidr.split(separator: "/")[0]) }

    /// Masquerade map elements in the host netns: (key, comment; "" without one). A failing
    /// `nft` fails the running test.
    func masqElements(file: StaticString = #filePath, line: UInt = #line) -> [(key: String, comment: String)] {
        world.ruleset(host, file: file, line: line).sets(table: "netlab", family: "inet")
            .filter { $0.name.hasPrefix("masq_") }
            .flatMap { $0.elements.map { ($0.key, $0.comment ?? "") } }
    }

    /// Lease files of the network in the data directory (host-local's `<ip>` files); none
    /// while the network's directory does not exist yet. An unreadable data directory fails
    /// the running test.
    func leases(file: StaticString = #filePath, line: UInt = #line) -> [String] {
        TestFailures.reporting([], file: file, line: line) { try hostLocalReservations(dataDir: dataDir, network: network) }
    }

    /// veth links in the host netns (a failing `ip` fails the running test).
    func hostVeths(file: StaticString = #filePath, line: UInt = #line) -> [String] {
        world.ipJSON(host, ["link", "show", "type", "veth"], file: file, line: line).compactMap { $0["ifname"] as? String }
    }

    func ping(from ns: String, _ ip: String) -> CommandResult {
        world.exec(in: ns, ["ping", ip.contains(":") ? "-6" : "-4", "-c", "1", "-W", "2", ip], timeout: 10)
    }
}
