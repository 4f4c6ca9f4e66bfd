// Micro benchmark of the Netlink module: median cost over N runs of
//   1. create + delete a veth pair with the peer created directly in another netns,
//   2. add + delete one IPv4 address,
// plus opening a RouteSocket inside a netns and one withNetworkNamespace round trip.
// It creates its own two named netns and removes them; the machine's own netns is untouched.
// Usage: netlink-bench [N]   (default 200; needs CAP_NET_ADMIN / CAP_SYS_ADMIN)

import Netlink
import NetTypes
import Glibc

func now() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

func measure(_ label: String, runs: Int, _ body: () throws -> Void) throws {
    var samples: [UInt64] = []
    samples.reserveCapacity(runs)
    for _ in 0..<runs {
        let t0 = now()
        try body()
        samples.append(now() - t0)
    }
    samples.sort()
    func us(_ ns: UInt64) -> String {
        let tenths = (ns + 50) / 100
        return "\(tenths / 10).\(tenths % 10) µs"
    }
    let median = samples[samples.count / 2]
    let p90 = samples[min(samples.count - 1, samples.count * 9 / 10)]
    print("\(label): median \(us(median)), p90 \(us(p90)), min \(us(samples[0])) over \(runs) runs")
}

let runs = CommandLine.arguments.count > 1 ? max(1, Int(CommandLine.arguments[1]) ?? 200) : 200
let tag = "nlbench\(getpid())"
let hostName = tag + "-host", ctrName = tag + "-ctr"

nonisolated(unsafe) var created: [String] = []
func cleanup() {
    for n in created.reversed() {
        do { try NetworkNamespace.delete(named: n) } catch { print("cleanup: \(error)") }
    }
    created = []
}

do {
    try NetworkNamespace.create(named: hostName); created.append(hostName)
    try NetworkNamespace.create(named: ctrName); created.append(ctrName)
    let host = try RouteSocket(namespace: hostName)
    let ctr = try NetworkNamespace.open(path: NetworkNamespace.path(named: ctrName))

    try measure("veth pair create+delete (peer in other netns)", runs: runs) {
        try host.addVethPair(name: "bench0", peerName: "eth0", peerNamespace: ctr)
        try host.deleteLink(named: "bench0")
    }

    // The same, split: how much of it is the create and how much the delete.
    var createNs: [UInt64] = [], deleteNs: [UInt64] = []
    for _ in 0..<runs {
        let t0 = now()
        try host.addVethPair(name: "bench0", peerName: "eth0", peerNamespace: ctr)
        let t1 = now()
        try host.deleteLink(named: "bench0")
        createNs.append(t1 - t0); deleteNs.append(now() - t1)
    }
    createNs.sort(); deleteNs.sort()
    print("  of which create: median \(createNs[runs / 2] / 1000) µs, delete: median \(deleteNs[runs / 2] / 1000) µs")

    try host.addVethPair(name: "bench1", peerName: "bench1p")
    let link = try host.requireLink(named: "bench1")
    try host.setUp(link.index)
    let cidr = CIDR("10.123.0.2/24")!
    try measure("address add+delete", runs: runs) {
        try host.addAddress(link.index, cidr)
        try host.deleteAddress(link.index, cidr)
    }

    try measure("RouteSocket open inside a netns", runs: runs) {
        _ = try RouteSocket(namespace: ctrName)
    }
    try measure("withNetworkNamespace round trip", runs: runs) {
        try withNetworkNamespace(ctrName) { }
    }
    try measure("link lookup by name", runs: runs) {
        _ = try host.link(named: "bench1")
    }
    cleanup()
} catch {
    print("netlink-bench: \(error)")
    cleanup()
    exit(1)
}
