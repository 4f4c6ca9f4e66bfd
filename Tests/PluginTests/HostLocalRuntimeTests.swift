// host-local driven by the CNI runtime library, as `netlab` and libcni drive it: capability
// arguments reach it as runtimeConfig, and the runtime's GC reaches it with the valid set.

import Foundation
import XCTest
import CNI
import TestSupport

final class HostLocalRuntimeTests: XCTestCase {
    func testRuntimeAddCheckGCStatusDel() throws {
        let h = HostLocalHarness(self)
        let runtime = CNIRuntime(pluginDirectories: [BuiltProducts.directory], cacheDirectory: h.world.tempDirectory("cache"))
        let list = try NetworkConfigList(bytes: Array(#"""
            {"cniVersion": "1.1.0", "name": "rtnet", "plugins": [
              {"type": "host-local", "capabilities": {"ips": true, "ipRanges": true},
               "ipam": {"type": "host-local", "subnet": "10.95.0.0/24", "dataDir": "\#(h.dataDir)"}}]}
            """#.utf8))
        func rt(_ id: String, caps: [String: JSONValue] = [:]) -> RuntimeConf {
            RuntimeConf(containerID: id, netns: HostLocalHarness.netns, ifName: "eth0", capabilityArgs: caps)
        }

        let pinned = try runtime.addNetworkList(list, rt("c1", caps: ["ips": ["10.95.0.50/24"]]))
        XCTAssertEqual(pinned.ips.map(\.address.description), ["10.95.0.50/24"])
        XCTAssertEqual(pinned.ips.first?.gateway?.description, "10.95.0.1")
        let next = try runtime.addNetworkList(list, rt("c2"))
        XCTAssertEqual(next.ips.map(\.address.description), ["10.95.0.51/24"])
        let ranged = try runtime.addNetworkList(list, rt("c3", caps: ["ipRanges": [[["subnet": "10.96.0.0/24"]]]]))
        // The runtime's range set comes first, so the configured one is range set 1 here, with
        // its own cursor (last_reserved_ip.1), as in the reference.
        XCTAssertEqual(ranged.ips.map(\.address.description), ["10.96.0.2/24", "10.95.0.2/24"])
        XCTAssertNoThrow(try runtime.checkNetworkList(list, rt("c2")))
        XCTAssertNoThrow(try runtime.statusNetworkList(list))

        // An address whose container the runtime has forgotten (no cache entry).
        try "lost\r\neth0".write(toFile: h.networkDir("rtnet") + "/10.95.0.99", atomically: false, encoding: .utf8)
        // GC keeps c1 and c2: the runtime DELs c3 from its cache, host-local's GC frees "lost".
        try runtime.gcNetworkList(list, validAttachments: [Attachment(containerID: "c1", ifname: "eth0"),
                                                            Attachment(containerID: "c2", ifname: "eth0")])
        XCTAssertEqual(h.addressFiles("rtnet"), ["10.95.0.50", "10.95.0.51"])

        try runtime.delNetworkList(list, rt("c1"))
        try runtime.delNetworkList(list, rt("c2"))
        try runtime.delNetworkList(list, rt("c2"))
        XCTAssertEqual(h.addressFiles("rtnet"), [])
        XCTAssertThrowsError(try runtime.checkNetworkList(list, rt("c2")))
    }
}
