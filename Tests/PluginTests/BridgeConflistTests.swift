import Foundation
import XCTest
import TestSupport

/// conf/bridge.conflist as shipped, run by a runtime (cni-bench: CNIRuntime) inside a host netns.
final class BridgeConflistTests: XCTestCase {
    func testShippedConflistAddsAndDeletes() throws {
        let world = TestWorld()
        addTeardownBlock { world.cleanup() }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let data = try Data(contentsOf: root.appendingPathComponent("conf/bridge.conflist"))
        var list = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
        XCTAssertEqual(list["cniVersion"] as? String, "1.0.0")
        var plugins = try XCTUnwrap(list["plugins"] as? [[String: Any]])
        XCTAssertEqual(plugins.compactMap { $0["type"] as? String }, ["loopback", "bridge", "portmap"])
        // Private state for the test; everything else as shipped.
        let dataDir = world.tempDirectory("data")
        var ipam = try XCTUnwrap(plugins[1]["ipam"] as? [String: Any])
        ipam["dataDir"] = dataDir
        plugins[1]["ipam"] = ipam
        list["plugins"] = plugins
        let dir = world.tempDirectory("conf")
        let path = dir + "/net.conflist"
        try JSONSerialization.data(withJSONObject: list).write(to: URL(fileURLWithPath: path))

        let host = world.netns("host")
        let ctrs = [world.netns("c1"), world.netns("c2")]
        let r = world.exec(in: host, [BuiltProducts.path("cni-bench"), path, BuiltProducts.directory,
                                      world.tempDirectory("cache")] + ctrs.map { world.path($0) })
        XCTAssertEqual(r.status, 0, r.description)
        XCTAssertTrue(r.stdout.contains("ADD ") && r.stdout.contains("DEL "), r.stdout)
        // After ADD+DEL for both: the bridge stays, no veth, no lease, no masquerade element.
        XCTAssertNotNil(world.links(host)["netlab0"])
        XCTAssertEqual(world.ipJSON(host, ["link", "show", "type", "veth"]).count, 0)
        XCTAssertEqual(try hostLocalReservations(dataDir: dataDir, network: "netlab"), [])
        let nft = try world.exec(in: host, ["nft", "list", "table", "inet", "netlab"]).checked().stdout
        XCTAssertTrue(nft.contains("masq-netlab0") && !nft.contains("comment"), nft)
    }
}
