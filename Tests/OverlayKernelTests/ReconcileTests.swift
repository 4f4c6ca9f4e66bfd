// Reconcile and ensure against a kernel that is right, wrong, or missing pieces: what is
// right is left alone (proved with `ip monitor`), what is wrong is fixed, what belongs to
// no peer goes, and what is not the overlay's stays.

import Foundation
import NetTypes
import OverlayKernel
import TestSupport
import XCTest

final class ReconcileTests: XCTestCase {
    func testASecondEnsureAndReconcileMakeNoKernelChange() throws {
        let world = try OverlayWorld.connected(self, hosts: 3)
        let host = world.hosts[0]
        let before = try KernelSnapshot(host)
        let monitor = try NetlinkMonitor(netns: host.netns, directory: world.world.tempDirectory("monitor"))
        defer { monitor.stop() }
        XCTAssertTrue(try monitor.isListening(host), "ip monitor saw the first probe: \(monitor.text)")

        // The same VTEP object, and a new one as after a daemon restart.
        for _ in 0..<2 {
            let vtep = try VTEP(host.config(), namespace: host.path)
            XCTAssertEqual(try vtep.ensure().changes, [])
            XCTAssertEqual(try vtep.reconcile(world.peers(of: host)).changes, [])
        }

        try host.ip("link", "add", "probe1", "type", "bridge")
        XCTAssertTrue(monitor.wait(for: "probe1"), "ip monitor saw the second probe: \(monitor.text)")
        XCTAssertEqual(monitor.lines(between: "probe0", and: "probe1"), [], "no netlink event between the probes")
        XCTAssertEqual(try KernelSnapshot(host), before)
    }

    func testReconcileFixesWhatIsWrongRemovesStalePeersAndKeepsOthersEntries() throws {
        let world = try OverlayWorld.connected(self, hosts: 3)
        let (a, b, c) = (world.hosts[0], world.hosts[1], world.hosts[2])
        // Damage: b's neighbour points at a wrong MAC, b's FDB entry at a wrong host.
        try a.ip("neigh", "replace", "\(b.subnet.networkAddress)", "lladdr", "0e:ff:ff:ff:ff:01", "dev", "flannel.1", "nud", "permanent")
        try must(["bridge", "-n", a.netns, "fdb", "replace", "\(b.mac)", "dev", "flannel.1", "dst", "198.18.0.99", "self", "permanent"])
        // Left over from a peer that has gone: route, neighbour, FDB entry.
        try a.ip("neigh", "add", "10.244.77.0", "lladdr", "0e:77:00:00:00:01", "dev", "flannel.1", "nud", "permanent")
        try must(["bridge", "-n", a.netns, "fdb", "add", "0e:77:00:00:00:01", "dev", "flannel.1", "dst", "198.18.0.77", "self", "permanent"])
        try a.ip("route", "add", "10.244.77.0/24", "via", "10.244.77.0", "dev", "flannel.1", "onlink")
        // Not the overlay's: inside the network on another device, outside it on the VTEP.
        try a.ip("route", "add", "10.244.200.0/24", "dev", "pods0")
        try a.ip("route", "add", "192.0.2.0/24", "dev", "flannel.1")

        let vtep = try VTEP(a.config(), namespace: a.path)
        let summary = try vtep.reconcile([b.peer])     // c is no longer a peer
        XCTAssertEqual(summary.changes.count, 8, "\(summary.changes)")
        XCTAssertEqual(try a.neighbours("flannel.1"), ["\(b.subnet.networkAddress)": "\(b.mac)"])
        XCTAssertEqual(try a.fdb("flannel.1"), ["\(b.mac)": ["\(b.publicIP)"]])
        let routes = try a.routes()
        XCTAssertEqual(routes["\(b.subnet)"]?["gateway"] as? String, "\(b.subnet.networkAddress)")
        XCTAssertNil(routes["\(c.subnet)"])
        XCTAssertNil(routes["10.244.77.0/24"])
        XCTAssertEqual(routes["10.244.200.0/24"]?["dev"] as? String, "pods0")
        XCTAssertEqual(routes["192.0.2.0/24"]?["dev"] as? String, "flannel.1")
        assertSucceeds(world.pingPods(a, b))
        XCTAssertFalse(world.pingPods(a, c).ok, "c is no peer any more")
        XCTAssertEqual(try vtep.reconcile([b.peer]).changes, [])
    }

    func testADeletedDeviceComesBackWithTheSameMACAndEveryEntry() throws {
        let world = try OverlayWorld(self, hosts: 3)
        let vteps = try world.connectAll()
        let (a, b) = (world.hosts[0], world.hosts[1])
        try a.ip("link", "del", "flannel.1")
        XCTAssertFalse(world.pingPods(b, a).ok)

        let device = try vteps[0].ensure()
        XCTAssertEqual(device.changes.first, .created)
        XCTAssertEqual(try a.link("flannel.1")["address"] as? String, "\(a.mac)")
        XCTAssertEqual(try vteps[0].reconcile(world.peers(of: a)).changes.count, 6, "three entries for each of two peers")
        XCTAssertEqual(try a.neighbours("flannel.1").count, 2)
        XCTAssertEqual(try a.fdb("flannel.1").count, 2)
        assertSucceeds(world.pingPods(b, a), "b's entries for a still hold: same MAC")
    }

    func testMTUAndMACChangesAreMadeInPlace() throws {
        let world = try OverlayWorld.connected(self, hosts: 2)
        let (a, b) = (world.hosts[0], world.hosts[1])
        let index = try a.ifindex("flannel.1")

        var config = a.config(mtu: 1400)
        let mtuChange = try VTEP(config, namespace: a.path).ensure()
        XCTAssertEqual(mtuChange.changes, [.mtu(from: 1450, to: 1400)])
        XCTAssertFalse(mtuChange.needsReconcile)
        XCTAssertEqual(try a.neighbours("flannel.1").count, 1, "peer entries survive an MTU change")
        XCTAssertEqual(try a.link("flannel.1")["mtu"] as? Int, 1400)

        // A new MAC: the kernel flushes the device's neighbour entries, reconcile restores
        // them, and the peer learns the MAC from the lease.
        let newMAC = MACAddress("0e:aa:bb:cc:dd:01")!
        config.mac = newMAC
        let vtep = try VTEP(config, namespace: a.path)
        let macChange = try vtep.ensure()
        XCTAssertEqual(macChange.changes, [.mac(from: a.mac, to: newMAC)])
        XCTAssertTrue(macChange.needsReconcile)
        XCTAssertEqual(try vtep.reconcile(world.peers(of: a)).changes.count, 1, "the flushed neighbour entry")
        var moved = a.peer
        moved.vtepMAC = newMAC
        XCTAssertEqual(try VTEP(b.config(), namespace: b.path).reconcile([moved]).changes.count, 3,
                       "b's neighbour replaced, an FDB entry for the new MAC, the old MAC's removed")

        let link = try a.link("flannel.1")
        XCTAssertEqual(link["ifindex"] as? Int, index, "the same device")
        XCTAssertEqual(link["address"] as? String, "\(newMAC)")
        assertSucceeds(world.pingPods(a, b))
    }

    func testChangedVXLANSettingsOrAForeignDeviceAreRecreated() throws {
        let world = try OverlayWorld.connected(self, hosts: 2)
        let (a, b) = (world.hosts[0], world.hosts[1])
        let index = try a.ifindex("flannel.1")

        let changes = try VTEP(a.config(port: 4789), namespace: a.path).ensure().changes
        guard case .recreated(let reason)? = changes.first else { return XCTFail("\(changes)") }
        XCTAssertTrue(reason.contains("dstport 8472"), reason)
        let link = try a.link("flannel.1")
        XCTAssertNotEqual(link["ifindex"] as? Int, index)
        XCTAssertEqual(((link["linkinfo"] as? [String: Any])?["info_data"] as? [String: Any])?["port"] as? Int, 4789)
        XCTAssertEqual(link["address"] as? String, "\(a.mac)")

        try b.ip("link", "del", "flannel.1")
        try b.ip("link", "add", "flannel.1", "type", "bridge")
        let foreign = try VTEP(b.config(), namespace: b.path).ensure().changes
        XCTAssertEqual(foreign.first, .recreated(reason: "kind bridge, not vxlan"))
        let kind = (try b.link("flannel.1")["linkinfo"] as? [String: Any])?["info_kind"] as? String
        XCTAssertEqual(kind, "vxlan")
    }
}

/// The overlay-relevant kernel state of a host, for before/after comparisons.
struct KernelSnapshot: Equatable {
    var neighbours: [String: String]
    var fdb: [String: [String]]
    var routes: [String]
    var link: String

    init(_ host: SimulatedHost) throws {
        neighbours = try host.neighbours("flannel.1")
        fdb = try host.fdb("flannel.1")
        routes = try must(["ip", "-n", host.netns, "route", "show", "table", "all"]).stdout
            .split(separator: "\n").map(String.init).sorted()
        link = try must(["ip", "-n", host.netns, "-d", "link", "show", "dev", "flannel.1"]).stdout
    }
}

/// `ip -o monitor` in a host, writing its one-line events to a file of the test world. It
/// is ended by its pid when the test is done.
final class NetlinkMonitor {
    private let process = Process()
    private let file: String

    init(netns: String, directory: String) throws {
        file = directory + "/monitor.txt"
        guard FileManager.default.createFile(atPath: file, contents: nil) else {
            throw ToolFailure(description: "cannot create \(file)")
        }
        process.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
        process.arguments = ["-o", "-n", netns, "monitor", "link", "address", "neigh", "route"]
        process.standardOutput = FileHandle(forWritingAtPath: file)
        process.standardError = FileHandle(forWritingAtPath: file)
        try process.run()
    }

    var text: String {
        let content = (try? String(contentsOfFile: file, encoding: .utf8)) ?? "<unreadable \(file)>"
        return process.isRunning ? content : content + "<ip monitor exited \(process.terminationStatus)>"
    }

    /// Waits up to `seconds` for a line containing `needle`.
    func wait(for needle: String, seconds: Int = 5) -> Bool {
        for _ in 0..<(seconds * 100) {
            if text.contains(needle) { return true }
            usleep(10_000)
        }
        return false
    }

    /// Adds a bridge `probe0` to the host until the monitor reports it (it may subscribe only
    /// after the first one was made), deleting it between attempts.
    func isListening(_ host: SimulatedHost) throws -> Bool {
        for _ in 0..<10 {
            try host.ip("link", "add", "probe0", "type", "bridge")
            if wait(for: "probe0", seconds: 1) { return true }
            try host.ip("link", "del", "probe0")
        }
        return false
    }

    /// The events after the last line mentioning `first` and before the first mentioning `second`.
    func lines(between first: String, and second: String) -> [String] {
        let lines = text.split(separator: "\n").map(String.init)
        guard let start = lines.lastIndex(where: { $0.contains(first) }),
              let end = lines.firstIndex(where: { $0.contains(second) }), start < end else { return ["<probes not seen in order>"] }
        return Array(lines[(start + 1)..<end])
    }

    func stop() {
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
    }
}
