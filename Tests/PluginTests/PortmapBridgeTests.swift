import Foundation
import XCTest
import TestSupport

/// End to end with conf/bridge.conflist: bridge + host-local, then portmap with the
/// bridge's result as prevResult, chained the way libcni chains them (ADD in order, DEL in
/// reverse), inside a host netns with an outside netns on an underlay veth.
final class PortmapBridgeTests: PortmapTestCase {
    /// The shipped conflist with a private bridge name and IPAM data directory.
    func plugins() throws -> (name: String, bridgeName: String, plugins: [[String: Any]]) {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let data = try Data(contentsOf: root.appendingPathComponent("conf/bridge.conflist"))
        let list = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
        var plugins = try XCTUnwrap(list["plugins"] as? [[String: Any]])
        XCTAssertEqual(plugins.compactMap { $0["type"] as? String }, ["loopback", "bridge", "portmap"])
        let br = world.shortName("nlbr")
        plugins[1]["bridge"] = br
        var ipam = try XCTUnwrap(plugins[1]["ipam"] as? [String: Any])
        ipam["dataDir"] = world.tempDirectory("ipam")
        // PortmapWorld's hand-built bridge already holds 10.88.0.0/24 in this host netns.
        ipam["ranges"] = [[["subnet": "10.89.0.0/16"]]]
        plugins[1]["ipam"] = ipam
        return (try XCTUnwrap(list["name"] as? String), br, plugins)
    }

    func json(_ o: Any) -> String { String(decoding: try! JSONSerialization.data(withJSONObject: o), as: UTF8.self) }

    /// One plugin's config as libcni builds it: name and cniVersion from the list, prevResult,
    /// runtimeConfig for the capabilities the plugin declares.
    func conf(_ plugin: [String: Any], name: String, prev: Any?, ports: [[String: Any]]) -> String {
        var c = plugin
        c["cniVersion"] = "1.0.0"
        c["name"] = name
        if let prev { c["prevResult"] = prev }
        if (plugin["capabilities"] as? [String: Bool])?["portMappings"] == true {
            c["runtimeConfig"] = ["portMappings": ports]
        }
        return json(c)
    }

    func add(_ list: (name: String, bridgeName: String, plugins: [[String: Any]]), ctr: String, id: String,
             ports: [[String: Any]]) -> CommandResult? {
        var prev: Any?
        var last: CommandResult?
        for p in list.plugins {
            let ifname = p["type"] as? String == "loopback" ? "lo" : "eth0"
            last = world.runPlugin(p["type"] as! String, command: "ADD", config: conf(p, name: list.name, prev: prev, ports: ports),
                                   containerID: id, netns: ctr, ifname: ifname, hostNetns: pm.host)
            guard last?.ok == true else { return last }
            if p["type"] as? String != "loopback" { prev = last?.json }
        }
        return last
    }

    func del(_ list: (name: String, bridgeName: String, plugins: [[String: Any]]), ctr: String, id: String,
             ports: [[String: Any]]) {
        for p in list.plugins.reversed() {
            let ifname = p["type"] as? String == "loopback" ? "lo" : "eth0"
            let r = world.runPlugin(p["type"] as! String, command: "DEL", config: conf(p, name: list.name, prev: nil, ports: ports),
                                    containerID: id, netns: ctr, ifname: ifname, hostNetns: pm.host)
            XCTAssertEqual(r.status, 0, "\(p["type"]!) DEL: \(r)")
        }
    }

    func testConflistPublishesPortsOnEveryPath() throws {
        let list = try plugins()
        let c1 = world.netns("c1"), c2 = world.netns("c2")
        let id1 = "e2e-c1-\(world.tag)", id2 = "e2e-c2-\(world.tag)"
        let ports1: [[String: Any]] = [["hostPort": 8080, "containerPort": 80, "protocol": "tcp"],
                                       ["hostPort": 8080, "containerPort": 80, "protocol": "udp"]]
        let r1 = try XCTUnwrap(add(list, ctr: c1, id: id1, ports: ports1))
        XCTAssertEqual(r1.status, 0, r1.description)
        let r2 = try XCTUnwrap(add(list, ctr: c2, id: id2, ports: [["hostPort": 8081, "containerPort": 80, "protocol": "tcp"]]))
        XCTAssertEqual(r2.status, 0, r2.description)
        // portmap passes the bridge's result on.
        let ips = (r1.jsonObject?["ips"] as? [[String: Any]] ?? []).compactMap { $0["address"] as? String }
        XCTAssertTrue(ips.first?.hasPrefix("10.89.") == true, r1.stdout)
        let gw = "10.89.0.1"

        pm.serve(c1, port: 80, name: "c1")
        pm.serve(c2, port: 80, name: "c2")
        XCTAssertEqual(pm.connect(from: pm.outside, PortmapWorld.hostUnderlayV4, 8080), "c1 ::ffff:192.168.77.1")
        XCTAssertEqual(pm.connect(from: pm.outside, PortmapWorld.hostUnderlayV4, 8080, udp: true)?.hasPrefix("c1 "), true)
        XCTAssertEqual(pm.connect(from: pm.outside, PortmapWorld.hostUnderlayV4, 8081)?.hasPrefix("c2 "), true)
        // Hairpin from the neighbour and from the container itself (bridge hairpinMode).
        XCTAssertEqual(pm.connect(from: c2, PortmapWorld.hostUnderlayV4, 8080), "c1 ::ffff:\(gw)")
        XCTAssertEqual(pm.connect(from: c1, gw, 8080), "c1 ::ffff:\(gw)")
        XCTAssertEqual(pm.connect(from: c1, PortmapWorld.hostUnderlayV4, 8080, udp: true), "c1 ::ffff:\(gw)")
        // The host's localhost.
        XCTAssertEqual(pm.connect(from: pm.host, "127.0.0.1", 8080)?.hasPrefix("c1 "), true)
        XCTAssertEqual(pm.connect(from: pm.host, "127.0.0.1", 8081)?.hasPrefix("c2 "), true)
        // The bridge's masquerade and portmap's maps live side by side in the one table.
        let text = pm.ruleset()
        XCTAssertTrue(text.contains("masq_v4") && text.contains("pm_v4") && text.contains("\"\(list.bridgeName)\""), text)

        del(list, ctr: c1, id: id1, ports: ports1)
        XCTAssertFalse(pm.elements().contains { $0.comment?.contains(id1) == true }, pm.ruleset())
        XCTAssertNil(pm.connect(from: pm.outside, PortmapWorld.hostUnderlayV4, 8080))
        XCTAssertNil(pm.connect(from: pm.host, "127.0.0.1", 8080))
        XCTAssertEqual(pm.connect(from: pm.outside, PortmapWorld.hostUnderlayV4, 8081)?.hasPrefix("c2 "), true)
        del(list, ctr: c2, id: id2, ports: [])
        XCTAssertTrue(pm.elements().isEmpty, pm.ruleset())
    }
}
