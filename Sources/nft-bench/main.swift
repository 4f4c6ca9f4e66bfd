// nft-bench: median cost of adding and deleting one element of a port map (the portmap
// plugin's hot path) in an empty map and in a map of 10,000 elements. Runs in a private
// network namespace (unshare), never in the machine's own.
//
//     nft-bench [iterations] [fill]

import NFTables
import NetTypes
import SystemKit
import Glibc

let args = CommandLine.arguments
let iterations = args.count > 1 ? Int(args[1]) ?? 300 : 300
let fill = args.count > 2 ? Int(args[2]) ?? 10_000 : 10_000

do {
    try Namespaces.unshareNetwork()
} catch {
    print("nft-bench: \(error) (needs root)")
    exit(1)
}

let table = Table(family: .inet, name: "netlab-bench")
let pre = Chain(table: table, name: "prerouting", type: .nat, hook: .prerouting, priority: -100, policy: .accept)
let map = NFTSet(table: table, name: "portmap_v4", keyType: [.inetProto, .inetService],
                 data: .values([.ipv4Addr, .inetService]))

func element(_ i: Int, comment: Bool = true) -> SetElement {
    let port = UInt16(1024 + i % 60000)
    let proto: KeyPart = i < 60000 ? .tcp : .udp
    return SetElement(key: [proto, .port(port)],
                      value: .data([.address(.v4(0x0a58_0000 | UInt32(i % 65000 + 2))), .port(80)]),
                      comment: comment ? "ctr-\(i)" : nil)
}

func median(_ xs: [Double]) -> Double {
    let s = xs.sorted()
    return s.isEmpty ? 0 : (s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2)
}

func microseconds(_ d: Duration) -> Double {
    Double(d.components.seconds) * 1e6 + Double(d.components.attoseconds) / 1e12
}

do {
    let sock = try NFTSocket()
    var setup = Batch()
    setup.add(table); setup.add(pre); setup.add(map)
    setup.add(Rule(chain: pre) { $0.fibDaddrTypeLocal().dnat(.v4, key: [.l4proto, .thDport], map: "portmap_v4") })
    try sock.apply(setup)

    let clock = ContinuousClock()
    func measure(label: String) throws -> (add: Double, del: Double) {
        var adds: [Double] = [], dels: [Double] = []
        let probe = element(fill + 500)  // a key never used by the fill
        for _ in 0..<iterations {
            var a = Batch(); a.addElements(map, [probe])
            var d = Batch(); d.deleteElements(map, [probe])
            adds.append(microseconds(try clock.measure { try sock.apply(a) }))
            dels.append(microseconds(try clock.measure { try sock.apply(d) }))
        }
        return (median(adds), median(dels))
    }

    _ = try measure(label: "warm-up")
    let empty = try measure(label: "empty")
    var chunk: [SetElement] = []
    for i in 0..<fill {
        chunk.append(element(i))
        if chunk.count == 1000 || i == fill - 1 {
            var b = Batch(); b.addElements(map, chunk); try sock.apply(b)
            chunk.removeAll()
        }
    }
    let full = try measure(label: "full")
    let count = try sock.elements(of: map).count
    print("nft-bench: \(iterations) iterations, one element per batch (median, microseconds)")
    print("  map size      add     delete")
    print("  0        \(String(format6(empty.add)))  \(String(format6(empty.del)))")
    print("  \(count)    \(String(format6(full.add)))  \(String(format6(full.del)))")
    print("  ratio (full/empty): add \(format2(full.add / empty.add))x, delete \(format2(full.del / empty.del))x")
} catch {
    print("nft-bench: \(error)")
    exit(1)
}

func format6(_ v: Double) -> String {
    let s = String(Int(v.rounded()))
    return String(repeating: " ", count: max(0, 7 - s.count)) + s
}
func format2(_ v: Double) -> String {
    let r = (v * 100).rounded() / 100
    return "\(r)"
}
