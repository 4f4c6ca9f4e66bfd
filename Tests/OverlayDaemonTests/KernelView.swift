// What a person checks on a host of the overlay, read back with `ip` and `bridge`: the
// VTEP, and per peer the neighbour entry, the FDB entry and the onlink route; and the
// traffic itself (ping, TCP through nc) between the hosts' pod addresses.

import Foundation
import NetTypes
import TestSupport
import XCTest

/// What the kernel must hold for one peer.
struct ExpectedPeer: CustomStringConvertible {
    var subnet: CIDR
    var publicIP: IPAddress
    var mac: String
    var description: String { "\(subnet) at \(publicIP) (\(mac))" }
}

extension DaemonHost {
    /// flannel.1 as `ip -d link` shows it.
    func vtep(_ name: String = "flannel.1") throws -> (mac: String, mtu: Int, vni: Int?, learning: Bool?) {
        guard let link = try ipJSON("-d", "link", "show", "dev", name).first else { throw TestError("no \(name) on host \(index)") }
        let info = (link["linkinfo"] as? [String: Any])?["info_data"] as? [String: Any]
        return (link["address"] as? String ?? "", link["mtu"] as? Int ?? 0, info?["id"] as? Int, info?["learning"] as? Bool)
    }

    /// The device's IPv4 addresses ("10.244.3.0/32").
    func vtepAddresses(_ name: String = "flannel.1") throws -> [String] {
        let entries = try ipJSON("-4", "addr", "show", "dev", name)
        return entries.flatMap { ($0["addr_info"] as? [[String: Any]]) ?? [] }.compactMap { a in
            guard let local = a["local"] as? String, let len = a["prefixlen"] as? Int else { return nil }
            return "\(local)/\(len)"
        }
    }

    /// Permanent neighbours of the device: address → MAC.
    func neighbours(_ name: String = "flannel.1") throws -> [String: String] {
        var out: [String: String] = [:]
        for n in try ipJSON("neigh", "show", "dev", name, "nud", "permanent") {
            if let dst = n["dst"] as? String { out[dst] = n["lladdr"] as? String ?? "" }
        }
        return out
    }

    /// FDB entries of the device: MAC → destination.
    func fdb(_ name: String = "flannel.1") throws -> [String: String] {
        var out: [String: String] = [:]
        for e in try runChecked(["bridge", "-n", netns, "-j", "fdb", "show", "dev", name]).checkedJSONArray() {
            if let mac = e["mac"] as? String, let dst = e["dst"] as? String { out[mac] = dst }
        }
        return out
    }

    /// IPv4 main-table routes by destination.
    func routes() throws -> [String: [String: Any]] {
        var out: [String: [String: Any]] = [:]
        for r in try ipJSON("-4", "route", "show", "table", "main") {
            if let dst = r["dst"] as? String { out[dst] = r }
        }
        return out
    }

    /// Whether the kernel holds exactly these peers' entries on flannel.1 (nothing missing,
    /// nothing stale, and no route of the overlay beyond them).
    func hasExactly(_ peers: [ExpectedPeer], device: String = "flannel.1") throws -> Bool {
        let neighbours = try neighbours(device), fdb = try fdb(device), routes = try routes()
        for p in peers {
            let gateway = "\(p.subnet.networkAddress)"
            guard neighbours[gateway] == p.mac, fdb[p.mac] == "\(p.publicIP)" else { return false }
            guard let r = routes["\(p.subnet)"], r["gateway"] as? String == gateway, r["dev"] as? String == device,
                  (r["flags"] as? [String])?.contains("onlink") == true else { return false }
        }
        let overlayRoutes = routes.filter { ($0.value["dev"] as? String) == device }
        return neighbours.count == peers.count && fdb.count == peers.count && overlayRoutes.count == peers.count
    }

    /// The pod address: the first address of the leased subnet, on pods0.
    func podAddress() throws -> IPAddress { try subnet().networkAddress.next! }
}

extension DaemonWorld {
    /// What every other host's kernel must hold for `host`, from its subnet.env and device.
    func expectedPeer(_ host: DaemonHost, device: String = "flannel.1") throws -> ExpectedPeer {
        ExpectedPeer(subnet: try host.subnet(), publicIP: host.publicIP, mac: try host.vtep(device).mac)
    }

    /// Waits until every host holds exactly the entries of every other running host.
    func waitForFullMesh(_ hosts: [DaemonHost]? = nil, device: String = "flannel.1", timeout: Double = 5) throws {
        let members = hosts ?? self.hosts
        let expected = try Dictionary(uniqueKeysWithValues: members.map { ($0.index, try expectedPeer($0, device: device)) })
        for h in members {
            let peers = members.filter { $0.index != h.index }.map { expected[$0.index]! }
            try eventually("host \(h.index) holding \(peers) on \(device)", timeout: timeout) { try h.hasExactly(peers, device: device) }
        }
    }

    /// One ping from `from`'s pod address to `to`'s.
    func ping(_ from: DaemonHost, _ to: DaemonHost) throws -> CommandResult {
        from.exec(["ping", "-c", "1", "-W", "1", "-I", "\(try from.podAddress())", "\(try to.podAddress())"])
    }

    /// A TCP connection from `from`'s pod address to a listener on `to`'s: the line sent arrives.
    func tcpReaches(_ from: DaemonHost, _ to: DaemonHost, port: Int = 7070) throws -> Bool {
        let received = to.directory + "/nc-received-\(from.index)"
        let listener = try StartedProcess(["/usr/sbin/ip", "netns", "exec", to.netns, "nc", "-d", "-l", "-s", "\(try to.podAddress())",
                                           "-p", "\(port)"], log: received)
        defer { listener.stop(grace: 1) }
        let line = "hello from host \(from.index)"
        try eventually("nc listening on host \(to.index)", timeout: 5) {
            to.exec(["ss", "-Htln", "sport", "= :\(port)"]).stdout.contains(":\(port)")
        }
        let r = from.exec(["sh", "-c", "echo '\(line)' | nc -q 1 -w 3 -s \(try from.podAddress()) \(try to.podAddress()) \(port)"])
        guard r.ok else { throw TestError("nc from host \(from.index) to \(to.index) failed: \(r)") }
        try eventually("the line on host \(to.index)", timeout: 3) { listener.output.contains(line) }
        return true
    }
}

/// Runs `ping -i 0.05 -c COUNT` from one pod address to another in the background; `wait`
/// gives transmitted and received.
final class PingLoop: @unchecked Sendable {
    let process: StartedProcess
    let count: Int
    let name: String

    init(_ world: DaemonWorld, from: DaemonHost, to: DaemonHost, count: Int) throws {
        self.count = count
        name = "ping \(from.index)→\(to.index)"
        process = try StartedProcess(["/usr/sbin/ip", "netns", "exec", from.netns, "ping", "-i", "0.05", "-c", "\(count)",
                                      "-W", "1", "-I", "\(try from.podAddress())", "\(try to.podAddress())"],
                                     log: world.directory + "/ping-\(from.index)-\(to.index)-\(UInt32.random(in: 0...UInt32.max)).log")
        world.own(process)
    }

    /// Waits for the loop to end; (transmitted, received).
    func wait() throws -> (transmitted: Int, received: Int) {
        process.process.waitUntilExit()
        let out = process.output
        guard let summary = out.split(separator: "\n").first(where: { $0.contains("packets transmitted") }) else {
            throw TestError("\(name) printed no summary: \(out)")
        }
        let numbers = summary.split(separator: " ").compactMap { Int($0) }
        guard numbers.count >= 2 else { throw TestError("\(name): unreadable summary \(summary)") }
        return (numbers[0], numbers[1])
    }
}
