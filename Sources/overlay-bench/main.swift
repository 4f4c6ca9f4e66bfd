// overlay-bench: programs N peers (default 1,000) into a VTEP through OverlayKernel and
// prints the time and the process's peak RSS, then reconciles the same peers again (which
// must change nothing) and prints that time. Runs in a private network namespace (unshare),
// never in the machine's own; nothing leaves it.
//
//     overlay-bench [peers]

import Glibc
import Netlink
import NetTypes
import OverlayKernel
import SystemKit

let count = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1]) ?? 1000 : 1000
let maxPeers = 65_000   // subnets 10.a.b.0/24 of 10.0.0.0/8, a.b from the peer's number

do {
    try Namespaces.unshareNetwork()
} catch {
    print("overlay-bench: \(error) (needs root)")
    exit(1)
}
guard count > 0, count <= maxPeers else {
    print("overlay-bench: peers must be 1...\(maxPeers)")
    exit(2)
}

/// Peer `i` (1-based): subnet 10.a.b.0/24, public IP 198.18.a.b, MAC 0e:00:00:00:a:b.
func peer(_ i: Int) -> OverlayPeer {
    let (hi, lo) = (UInt8(i >> 8), UInt8(i & 0xff))
    return OverlayPeer(subnet: CIDR("10.\(hi).\(lo).0/24")!, publicIP: IPAddress("198.18.\(hi).\(lo)")!,
                       vtepMAC: MACAddress(bytes: [0x0e, 0, 0, 0, hi, lo])!)
}

func milliseconds(_ d: Duration) -> String {
    let ms = Double(d.components.seconds) * 1e3 + Double(d.components.attoseconds) / 1e15
    return String(Int(ms.rounded()))
}

/// Peak resident set size of this process, in MiB (getrusage reports KiB on Linux).
func peakRSS() -> String {
    var usage = rusage()
    guard getrusage(RUSAGE_SELF.rawValue, &usage) == 0 else { return "?" }
    let tenths = Int(usage.ru_maxrss) * 10 / 1024
    return "\(tenths / 10).\(tenths % 10)"
}

do {
    // The underlay: a bridge holding this host's public address.
    let socket = try RouteSocket()
    try socket.addBridge(name: "under0")
    let underlay = try socket.requireLink(named: "under0")
    try socket.addAddress(underlay.index, CIDR("198.19.0.1/16")!)
    try socket.setUp(underlay.index)

    let config = VTEPConfig(underlay: "under0", publicIP: IPAddress("198.19.0.1")!, subnet: CIDR("10.255.255.0/24")!,
                            network: CIDR("10.0.0.0/8")!, mac: MACAddress("0e:ff:00:00:00:01")!)
    let vtep = try VTEP(config)
    let peers = (1...count).map(peer)
    let clock = ContinuousClock()
    var first: ReconcileSummary?
    var second: ReconcileSummary?
    let programmed = try clock.measure {
        try vtep.ensure()
        first = try vtep.reconcile(peers)
    }
    let rssAfterProgramming = peakRSS()
    let unchanged = try clock.measure { second = try vtep.reconcile(peers) }
    guard let first, let second else { fatalError("measured closures ran") }
    print("overlay-bench: \(count) peers on \(config.name) in a private netns")
    print("  ensure + first reconcile: \(milliseconds(programmed)) ms, \(first.changes.count) kernel changes, peak RSS \(rssAfterProgramming) MiB")
    print("  second reconcile:         \(milliseconds(unchanged)) ms, \(second.changes.count) kernel changes, peak RSS \(peakRSS()) MiB")
    if !first.conflicts.isEmpty || !second.changes.isEmpty {
        print("overlay-bench: unexpected: \(first.conflicts.count) conflicts, \(second.changes.count) changes on the second pass")
        exit(1)
    }
} catch {
    print("overlay-bench: \(error)")
    exit(1)
}
