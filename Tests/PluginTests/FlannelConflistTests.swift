import Foundation
import XCTest
import TestSupport

/// conf/flannel.conflist as shipped (loopback, flannel, portmap), run by a runtime (cni-run:
/// CNIRuntime) inside a host netns, with only the file locations made the test's own.
final class FlannelConflistTests: FlannelTestCase {
    func testShippedConflistAddsChecksAndDeletes() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let data = try Data(contentsOf: root.appendingPathComponent("conf/flannel.conflist"))
        var list = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
        XCTAssertEqual(list["cniVersion"] as? String, "1.0.0")
        var plugins = try XCTUnwrap(list["plugins"] as? [[String: Any]])
        XCTAssertEqual(plugins.compactMap { $0["type"] as? String }, ["loopback", "flannel", "portmap"])
        let network = try XCTUnwrap(list["name"] as? String)
        plugins[1]["subnetFile"] = fw.subnetFile
        plugins[1]["dataDir"] = fw.dataDir
        plugins[1]["ipam"] = ["dataDir": fw.bw.dataDir]
        list["plugins"] = plugins
        let path = world.tempDirectory("conf") + "/flannel.conflist"
        try JSONSerialization.data(withJSONObject: list).write(to: URL(fileURLWithPath: path))

        let c1 = world.netns("c1")
        let cache = world.tempDirectory("cache")
        func cniRun(_ verb: String) -> CommandResult {
            world.exec(in: fw.host, [BuiltProducts.path("cni-run"), verb, path, "fl-list", world.path(c1), cache],
                       environment: ["CNI_PATH": BuiltProducts.directory, "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
                                     "CAP_ARGS": #"{"portMappings":[{"hostPort":8080,"containerPort":80,"protocol":"tcp"}]}"#])
        }
        let add = cniRun("add")
        XCTAssertEqual(add.status, 0, add.description)
        let addresses = BridgeWorld.addresses(add)
        XCTAssertEqual(addresses.count, 1, add.stdout)
        XCTAssertTrue(addresses.first?.hasPrefix("10.244.7.") ?? false, add.stdout)
        XCTAssertEqual(fw.eth0(c1)["mtu"] as? Int, 1410)
        XCTAssertEqual(fw.routes(c1, to: "default").first?["gateway"] as? String, "10.244.7.1")
        XCTAssertNotNil(world.links(fw.host)["cni0"])
        XCTAssertTrue(fw.saved("fl-list")?.contains(#""name":"\#(network)""#) ?? false, fw.saved("fl-list") ?? "none")
        let check = cniRun("check")
        XCTAssertEqual(check.status, 0, check.description)

        let del = cniRun("del")
        XCTAssertEqual(del.status, 0, del.description)
        XCTAssertEqual(fw.bw.hostVeths(), [])
        XCTAssertEqual(try hostLocalReservations(dataDir: fw.bw.dataDir, network: network), [])
        XCTAssertEqual(fw.savedNames(), [])
    }
}
