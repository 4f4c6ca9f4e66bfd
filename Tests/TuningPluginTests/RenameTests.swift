import XCTest
import Netlink
import NetTypes
import TestSupport
@testable import TuningPlugin

/// The rename path for kernels that refuse to rename a link that is up (before Linux 6.2):
/// down, rename, up, and the addresses and routes the kernel dropped put back. Run directly,
/// whatever this kernel would do, in a netns the test makes.
final class RenameTests: XCTestCase {
    func testRenameThroughDownAndUpKeepsAddressesAndRoutes() throws {
        let world = TestWorld()
        defer { world.cleanup() }
        let ns = world.netns("rename")
        let setup = sh("""
        set -e
        ip -n \(ns) link add eth0 type veth peer name peer0
        ip -n \(ns) link set peer0 up
        ip -n \(ns) addr add 10.9.0.2/24 dev eth0
        ip -n \(ns) addr add fd09::2/64 dev eth0 nodad
        ip -n \(ns) link set eth0 up
        ip -n \(ns) route add default via 10.9.0.1
        ip -n \(ns) route add 192.0.2.0/24 via 10.9.0.3 metric 7
        ip -n \(ns) -6 route add default via fd09::1
        """)
        XCTAssertTrue(setup.ok, setup.description)
        func state(_ dev: String) -> [String] {
            let addrs = world.ipJSON(ns, ["addr", "show", "dev", dev]).flatMap { ($0["addr_info"] as? [[String: Any]]) ?? [] }
                .filter { $0["scope"] as? String != "link" }.compactMap { $0["local"] as? String }
            let routes = (world.ipJSON(ns, ["route", "show", "dev", dev]) + world.ipJSON(ns, ["-6", "route", "show", "dev", dev]))
                .filter { $0["protocol"] as? String != "kernel" }
                .map { "\($0["dst"] ?? "") via \($0["gateway"] ?? "-") metric \($0["metric"] ?? 0)" }
            return (addrs + routes).sorted()
        }
        let before = state("eth0")
        XCTAssertEqual(before.count, 5, "\(before)")
        let tuner = try LinkTuner(netns: world.path(ns))
        try tuner.renameDown(try tuner.link("eth0"), to: "net1")
        let gone = runCommand(["ip", "-n", ns, "link", "show", "dev", "eth0"])
        XCTAssertTrue(!gone.ok && gone.stderr.contains("does not exist"), "eth0 was renamed: \(gone)")
        XCTAssertEqual((world.links(ns)["net1"]?["flags"] as? [String])?.contains("UP"), true)
        XCTAssertEqual(state("net1"), before)
    }
}
