// A multi-host world for the overlay's kernel side, built in namespaces the test makes and
// removes: an underlay netns with a bridge, and host netns attached to it by veth (`eth0`,
// 198.18.0.1N/24 and fd00:198:18::1N/64), each with a veth `pods0` holding the first
// address of its subnet. The VTEPs are made only through OverlayKernel; `ip`, `bridge` and
// `nft` only read state back (and build the world around the VTEPs).

import Foundation
import NetTypes
import OverlayKernel
import TestSupport
import XCTest

/// A read-back tool that failed: the test fails instead of seeing "nothing there".
struct ToolFailure: Error, CustomStringConvertible {
    var description: String
}

/// Runs a command and throws when it fails.
@discardableResult
func must(_ argv: [String]) throws -> CommandResult {
    let r = runCommand(argv)
    guard r.ok else { throw ToolFailure(description: "`\(argv.joined(separator: " "))` failed: \(r)") }
    return r
}

/// Runs a command that prints a JSON array (`ip -j …`, `bridge -j …`, `nft -j …` answers);
/// throws when it fails or prints anything else.
func jsonArray(_ argv: [String]) throws -> [[String: Any]] {
    let r = try must(argv)
    guard let a = r.jsonArray else { throw ToolFailure(description: "`\(argv.joined(separator: " "))` printed no JSON array: \(r)") }
    return a
}

struct SimulatedHost {
    var index: Int
    var netns: String
    var path: String
    var publicIP: IPAddress
    var publicIPv6: IPAddress
    var subnet: CIDR
    var subnetV6: CIDR
    var mac: MACAddress
    var macV6: MACAddress
    /// The first address of the subnet, on `pods0`.
    var podAddress: IPAddress { subnet.networkAddress.next! }
    var podAddressV6: IPAddress { subnetV6.networkAddress.next! }

    var peer: OverlayPeer { OverlayPeer(subnet: subnet, publicIP: publicIP, vtepMAC: mac) }
    var peerV6: OverlayPeer { OverlayPeer(subnet: subnetV6, publicIP: publicIPv6, vtepMAC: macV6) }

    func config(mtu: UInt32? = nil, port: UInt16 = VTEPConfig.defaultPort, directRouting: Bool = false) -> VTEPConfig {
        VTEPConfig(port: port, underlay: "eth0", publicIP: publicIP, subnet: subnet, network: OverlayWorld.network,
                   mac: mac, mtu: mtu, directRouting: directRouting)
    }

    func configV6() -> VTEPConfig {
        VTEPConfig(underlay: "eth0", publicIP: publicIPv6, subnet: subnetV6, network: OverlayWorld.networkV6, mac: macV6)
    }

    /// `ip -n HOST ARGS…` run strictly.
    @discardableResult
    func ip(_ args: String...) throws -> CommandResult { try must(["ip", "-n", netns] + args) }
    func ipJSON(_ args: String...) throws -> [[String: Any]] { try jsonArray(["ip", "-n", netns, "-j"] + args) }
    func bridgeJSON(_ args: String...) throws -> [[String: Any]] { try jsonArray(["bridge", "-n", netns, "-j"] + args) }
    func exec(_ argv: String...) -> CommandResult { runCommand(["ip", "netns", "exec", netns] + argv) }
}

final class OverlayWorld {
    static let network = CIDR("10.244.0.0/16")!
    static let networkV6 = CIDR("fd10:244::/56")!

    let world: TestWorld
    let underlay: String
    private(set) var hosts: [SimulatedHost] = []

    /// Builds the underlay and `count` hosts; everything goes when the test ends.
    init(_ test: XCTestCase, hosts count: Int) throws {
        world = TestWorld()
        let w = world
        test.addTeardownBlock { w.cleanup() }
        underlay = world.netns("under")
        try must(["ip", "-n", underlay, "link", "add", "br0", "type", "bridge"])
        try must(["ip", "-n", underlay, "addr", "add", "198.18.0.254/24", "dev", "br0"])
        try must(["ip", "-n", underlay, "link", "set", "br0", "up"])
        for i in 1...count { hosts.append(try addHost(i)) }
    }

    private func addHost(_ i: Int) throws -> SimulatedHost {
        let ns = world.netns("h\(i)")
        let random = (0..<4).map { _ in UInt8.random(in: 0...255) }
        let host = SimulatedHost(
            index: i, netns: ns, path: world.path(ns),
            publicIP: IPAddress("198.18.0.\(10 + i)")!, publicIPv6: IPAddress("fd00:198:18::\(10 + i)")!,
            subnet: CIDR("10.244.\(i).0/24")!, subnetV6: CIDR("fd10:244:0:\(i)::/64")!,
            mac: MACAddress(bytes: [0x0e, UInt8(i)] + random)!, macV6: MACAddress(bytes: [0x0e, 0x60 + UInt8(i)] + random)!)
        try must(["ip", "-n", underlay, "link", "add", "u\(i)", "type", "veth", "peer", "name", "eth0", "netns", ns])
        try must(["ip", "-n", underlay, "link", "set", "u\(i)", "master", "br0", "up"])
        try host.ip("addr", "add", "\(host.publicIP)/24", "dev", "eth0")
        try host.ip("addr", "add", "\(host.publicIPv6)/64", "dev", "eth0", "nodad")
        try host.ip("link", "set", "eth0", "up")
        // A veth whose peer stays in the host: always carrier (this kernel has no dummy driver).
        try host.ip("link", "add", "pods0", "type", "veth", "peer", "name", "pods0p")
        try host.ip("link", "set", "pods0p", "up")
        try host.ip("addr", "add", "\(host.podAddress)/\(host.subnet.prefixLength)", "dev", "pods0")
        try host.ip("addr", "add", "\(host.podAddressV6)/\(host.subnetV6.prefixLength)", "dev", "pods0", "nodad")
        try host.ip("link", "set", "pods0", "up")
        return host
    }

    /// A world whose hosts are connected already, each to all others.
    static func connected(_ test: XCTestCase, hosts count: Int) throws -> OverlayWorld {
        let world = try OverlayWorld(test, hosts: count)
        try world.connectAll()
        return world
    }

    /// Every other host, as a peer.
    func peers(of host: SimulatedHost, v6: Bool = false) -> [OverlayPeer] {
        hosts.filter { $0.index != host.index }.map { v6 ? $0.peerV6 : $0.peer }
    }

    /// A VTEP on every host, ensured and reconciled with all others as peers.
    @discardableResult
    func connectAll(v6: Bool = false, directRouting: Bool = false) throws -> [VTEP] {
        try hosts.map { h in
            let vtep = try VTEP(v6 ? h.configV6() : h.config(directRouting: directRouting), namespace: h.path)
            try vtep.ensure()
            let summary = try vtep.reconcile(peers(of: h, v6: v6))
            XCTAssertEqual(summary.conflicts, [], "host \(h.index)")
            return vtep
        }
    }

    /// Pings `to` from `host` with source `source`; the result, for assertions with output.
    func ping(from host: SimulatedHost, source: IPAddress, to: IPAddress) -> CommandResult {
        host.exec("ping", to.isV4 ? "-4" : "-6", "-c", "1", "-W", "1", "-I", "\(source)", "\(to)")
    }

    /// Pings `to`'s pod address from `from`'s (the IPv6 ones with `v6`).
    func pingPods(_ from: SimulatedHost, _ to: SimulatedHost, v6: Bool = false) -> CommandResult {
        v6 ? ping(from: from, source: from.podAddressV6, to: to.podAddressV6)
            : ping(from: from, source: from.podAddress, to: to.podAddress)
    }
}

extension SimulatedHost {
    /// The kernel's view of the VTEP's peer entries, as `ip`/`bridge` print them.
    func neighbours(_ dev: String) throws -> [String: String] {
        var out: [String: String] = [:]
        for n in try ipJSON("neigh", "show", "dev", dev, "nud", "permanent") {
            if let dst = n["dst"] as? String { out[dst] = n["lladdr"] as? String ?? "" }
        }
        return out
    }

    /// FDB entries of the device: MAC → destinations.
    func fdb(_ dev: String) throws -> [String: [String]] {
        var out: [String: [String]] = [:]
        for e in try bridgeJSON("fdb", "show", "dev", dev) {
            guard let mac = e["mac"] as? String else { continue }
            out[mac, default: []].append(e["dst"] as? String ?? "")
        }
        return out
    }

    /// Main-table routes of a family, keyed by destination.
    func routes(v6: Bool = false) throws -> [String: [String: Any]] {
        var out: [String: [String: Any]] = [:]
        for r in try jsonArray(["ip", "-n", netns, "-j", v6 ? "-6" : "-4", "route", "show", "table", "main"]) {
            if let dst = r["dst"] as? String { out[dst] = r }
        }
        return out
    }

    func ifindex(_ name: String) throws -> Int? { try link(name)["ifindex"] as? Int }

    func link(_ name: String) throws -> [String: Any] {
        guard let l = try ipJSON("-d", "link", "show", "dev", name).first else {
            throw ToolFailure(description: "no link \(name) in \(netns)")
        }
        return l
    }

    /// TX packets of a device (`ip -s link`).
    func txPackets(_ dev: String) throws -> Int {
        let l = try ipJSON("-s", "link", "show", "dev", dev).first
        guard let stats = l?["stats64"] as? [String: Any], let tx = stats["tx"] as? [String: Any],
              let packets = tx["packets"] as? Int else {
            throw ToolFailure(description: "no stats64 for \(dev): \(String(describing: l))")
        }
        return packets
    }
}

/// Asserts that a command succeeded, showing its output when it did not.
func assertSucceeds(_ r: CommandResult, _ message: String = "", file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertTrue(r.ok, "\(message) \(r)", file: file, line: line)
}
