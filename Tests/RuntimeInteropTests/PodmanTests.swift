// podman's CNI backend on our plugins alone: the conflists podman writes itself
// (`podman network create`), containers run as a person runs them, and the kernel state read
// back in the sandbox's host netns. The plugin directory holds only links to netlab-cni.

import Foundation
import TestSupport
import XCTest

final class PodmanTests: XCTestCase {
    var sandbox: PodmanSandbox!
    var plugins: PluginLinks!

    override func setUpWithError() throws {
        if let missing = PodmanSandbox.missingTools() { throw XCTSkip(missing) }
        plugins = try PluginLinks()
        sandbox = try PodmanSandbox(plugins: plugins.directory)
    }

    override func tearDown() {
        sandbox?.tearDown()
        XCTAssertNoThrow(try plugins?.remove())
    }

    private var image: String { PodmanSandbox.image }

    /// `podman run --rm` on a network, the command's stdout.
    private func runOn(_ network: String, _ extra: [String] = [], _ command: [String]) throws -> String {
        try sandbox.podmanChecked(["run", "--rm", "--network", network] + extra + [image] + command).stdout
    }

    /// The IPv4 addresses (with prefix) of eth0 as `ip -o -4 addr` in a container prints them.
    private func addresses(_ ipOutput: String) -> [String] {
        ipOutput.split(separator: "\n").compactMap { line in
            let f = line.split(separator: " ")
            guard let i = f.firstIndex(of: "inet"), i + 1 < f.count else { return nil }
            return String(f[i + 1])
        }
    }

    /// Nothing of a container or a network is left: no veth, no reservation, no nftables
    /// element of the suite, no tuning data, no cached result.
    private func assertNothingLeft(networks: [String], testVeths: [String] = [],
                                   file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertEqual(try sandbox.hostVeths().filter { !testVeths.contains($0) }, [], "veths left in the host netns", file: file, line: line)
        for n in networks {
            XCTAssertEqual(try sandbox.reservations(n), [], "host-local reservations left for \(n)", file: file, line: line)
        }
        XCTAssertEqual(try sandbox.tuningData(), [], "tuning data left", file: file, line: line)
        XCTAssertEqual(try sandbox.cachedResults(), [], "libcni cached results left", file: file, line: line)
        let elements = try sandbox.ruleset().sets(table: "netlab").flatMap { s in s.elements.map { "\(s.name): \($0.key) \($0.comment ?? "")" } }
        XCTAssertEqual(elements, [], "nftables elements left in table netlab", file: file, line: line)
    }

    func testBridgeNetworksPodmanWritesCarryContainersAndLeaveNothing() throws {
        try sandbox.podmanChecked(["network", "create", "plain"])
        try sandbox.podmanChecked(["network", "create", "--subnet", "10.89.40.0/24", "sub"])
        try sandbox.podmanChecked(["network", "create", "--subnet", "10.89.41.0/24", "--internal", "--disable-dns", "inner"])
        // What podman 4.3 writes: bridge, portmap, firewall, tuning, at CNI 0.4.0.
        for n in ["plain", "sub", "inner"] {
            XCTAssertEqual(try sandbox.pluginTypes(n), ["bridge", "portmap", "firewall", "tuning"], n)
            XCTAssertEqual(try sandbox.conflist(n)["cniVersion"] as? String, "0.4.0", n)
        }

        let plain = addresses(try runOn("plain", [], ["ip", "-o", "-4", "addr", "show", "eth0"]))
        XCTAssertEqual(plain.count, 1, "one address on the default-subnet network: \(plain)")
        XCTAssertTrue(plain.first?.hasPrefix("10.89.0.") ?? false, "podman's first free subnet 10.89.0.0/24: \(plain)")
        XCTAssertEqual(addresses(try runOn("sub", [], ["ip", "-o", "-4", "addr", "show", "eth0"])).first?.hasPrefix("10.89.40."), true)

        // --internal: an address, no gateway, so no default route.
        let inner = try runOn("inner", [], ["sh", "-c", "ip -o -4 addr show eth0; echo ROUTES; ip -4 route"])
        XCTAssertTrue(inner.contains("10.89.41."), inner)
        XCTAssertFalse(inner.components(separatedBy: "ROUTES").last?.contains("default") ?? true, "internal network has no default route: \(inner)")

        // --ip and --mac-address: podman 4.3 sends them as CNI_ARGS IP= and MAC=.
        let fixed = try runOn("sub", ["--ip", "10.89.40.77", "--mac-address", "02:42:0a:59:28:4d"],
                              ["sh", "-c", "ip -o -4 addr show eth0; cat /sys/class/net/eth0/address"])
        XCTAssertTrue(fixed.contains("10.89.40.77/24"), "--ip: \(fixed)")
        XCTAssertTrue(fixed.contains("02:42:0a:59:28:4d"), "--mac-address: \(fixed)")

        // --sysctl lands in the container's netns (runc writes it; the netns is ours).
        let fwd = try runOn("sub", ["--sysctl", "net.ipv4.ip_forward=1"], ["cat", "/proc/sys/net/ipv4/ip_forward"])
        XCTAssertEqual(fwd.trimmingCharacters(in: .whitespacesAndNewlines), "1")

        try sandbox.podmanChecked(["network", "rm", "plain", "sub", "inner"])
        try assertNothingLeft(networks: ["plain", "sub", "inner"])
    }

    func testPublishedPortAnswersFromTheHostAndContainersPingEachOther() throws {
        try sandbox.podmanChecked(["network", "create", "--subnet", "10.89.42.0/24", "web"])
        // busybox ping needs a raw socket: CAP_NET_RAW, which podman does not grant by default.
        try sandbox.podmanChecked(["run", "-d", "--name", "www", "--network", "web", "-p", "8080:80", "--cap-add", "NET_RAW",
                                   image, "httpd", "-f", "-p", "80", "-h", "/www"])
        try sandbox.podmanChecked(["run", "-d", "--name", "peer", "--network", "web", "--cap-add", "NET_RAW", image, "sleep", "600"])
        let www = try sandbox.address(of: "www", on: "web")
        XCTAssertTrue(www.hasPrefix("10.89.42."), www)

        // The published port, from the host netns: its loopback and the bridge's gateway address.
        for host in ["127.0.0.1", "10.89.42.1"] {
            let page = sandbox.run(["curl", "-s", "--max-time", "5", "http://\(host):8080/index.html"])
            XCTAssertEqual(page.stdout, PodmanSandbox.page, "8080 on \(host): \(page)")
        }
        // Container to container on the bridge, both ways.
        let peer = try sandbox.address(of: "peer", on: "web")
        try sandbox.podmanChecked(["exec", "peer", "ping", "-c", "1", "-W", "2", www])
        try sandbox.podmanChecked(["exec", "www", "ping", "-c", "1", "-W", "2", peer])

        try sandbox.podmanChecked(["rm", "--force", "--time", "0", "www", "peer"])
        let gone = sandbox.run(["curl", "-s", "--max-time", "2", "http://127.0.0.1:8080/index.html"])
        XCTAssertFalse(gone.ok, "the port map went with the container: \(gone)")
        try sandbox.podmanChecked(["network", "rm", "web"])
        try assertNothingLeft(networks: ["web"])
    }

    /// Podman 4.3 asks for isolation with `--opt isolate=true` (the firewall's
    /// `ingressPolicy: same-bridge`): containers of two such networks cannot reach each other,
    /// while each still reaches its own network.
    func testIsolatedNetworksCannotReachEachOther() throws {
        try sandbox.podmanChecked(["network", "create", "--opt", "isolate=true", "--subnet", "10.89.43.0/24", "blue"])
        try sandbox.podmanChecked(["network", "create", "--opt", "isolate=true", "--subnet", "10.89.44.0/24", "red"])
        let fw = try XCTUnwrap((try sandbox.conflist("blue")["plugins"] as? [[String: Any]])?.first { $0["type"] as? String == "firewall" })
        XCTAssertEqual(fw["ingressPolicy"] as? String, "same-bridge")
        for (name, net) in [("b1", "blue"), ("b2", "blue"), ("r1", "red")] {
            try sandbox.podmanChecked(["run", "-d", "--name", name, "--network", net, "--cap-add", "NET_RAW", image, "sleep", "600"])
        }
        let b2 = try sandbox.address(of: "b2", on: "blue"), r1 = try sandbox.address(of: "r1", on: "red")
        try sandbox.podmanChecked(["exec", "b1", "ping", "-c", "1", "-W", "2", b2])
        XCTAssertFalse(sandbox.podman(["exec", "b1", "ping", "-c", "1", "-W", "2", r1]).ok, "blue reached red")
        XCTAssertFalse(sandbox.podman(["exec", "r1", "ping", "-c", "1", "-W", "2", b2]).ok, "red reached blue")
        try sandbox.podmanChecked(["rm", "--force", "--time", "0", "b1", "b2", "r1"])
        try sandbox.podmanChecked(["network", "rm", "blue", "red"])
        try assertNothingLeft(networks: ["blue", "red"])
    }

    /// `--driver macvlan`: containers are hosts of the parent's segment. The segment is a veth
    /// from the sandbox's host netns to a netns of the test holding one other host.
    func testMacvlanNetworkPutsContainersOnTheParentsSegment() throws {
        let lan = try sandbox.world.makeNetns("lan")
        let parent = sandbox.world.shortName("mvp")
        // Made in the lan netns and moved into the sandbox's host netns from outside (inside the
        // sandbox /run/netns is podman's own).
        try sandbox.world.exec(in: lan, ["ip", "link", "add", parent, "type", "veth", "peer", "name", "eth9"]).checked()
        try sandbox.world.exec(in: lan, ["ip", "link", "set", parent, "netns", sandbox.world.path(sandbox.hostNetns)]).checked()
        try sandbox.runChecked(["ip", "link", "set", parent, "up"])
        try sandbox.world.exec(in: lan, ["ip", "addr", "add", "192.168.77.200/24", "dev", "eth9"]).checked()
        try sandbox.world.exec(in: lan, ["ip", "link", "set", "eth9", "up"]).checked()

        try sandbox.podmanChecked(["network", "create", "--driver", "macvlan", "-o", "parent=\(parent)", "--subnet", "192.168.77.0/24", "seg"])
        XCTAssertEqual(try sandbox.pluginTypes("seg"), ["macvlan"])
        let out = try runOn("seg", ["--cap-add", "NET_RAW"], ["sh", "-c", "ip -o -4 addr show eth0; ping -c 1 -W 2 192.168.77.200 >/dev/null && echo REACHED"])
        XCTAssertTrue(addresses(out).first?.hasPrefix("192.168.77.") ?? false, out)
        XCTAssertTrue(out.contains("REACHED"), "the other host of the segment answers: \(out)")
        try sandbox.podmanChecked(["network", "rm", "seg"])
        try assertNothingLeft(networks: ["seg"], testVeths: [parent])
    }

    /// `--driver ipvlan` (podman 4.3 writes `"master": ""`: the host's default-route
    /// interface). On a kernel without CONFIG_IPVLAN podman reports our plugin's refusal.
    func testIpvlanNetwork() throws {
        let parent = sandbox.world.shortName("ivp").prefix(13).description
        try sandbox.runChecked(["ip", "link", "add", parent, "type", "veth", "peer", "name", parent + "p"])
        try sandbox.runChecked(["ip", "addr", "add", "192.168.78.2/24", "dev", parent])
        try sandbox.runChecked(["ip", "link", "set", parent, "up"])
        try sandbox.runChecked(["ip", "link", "set", parent + "p", "up"])
        try sandbox.runChecked(["ip", "route", "add", "default", "via", "192.168.78.254", "dev", parent])
        try sandbox.podmanChecked(["network", "create", "--driver", "ipvlan", "--subnet", "192.168.78.0/24", "ipv"])
        XCTAssertEqual(try sandbox.pluginTypes("ipv"), ["ipvlan"])
        let r = sandbox.podman(["run", "--rm", "--network", "ipv", image, "ip", "-o", "-4", "addr", "show", "eth0"])
        if try kernelHasIpvlan(parent: parent) {
            XCTAssertTrue(r.ok, "\(r)")
            XCTAssertTrue(addresses(r.stdout).first?.hasPrefix("192.168.78.") ?? false, r.stdout)
        } else {
            XCTAssertFalse(r.ok)
            XCTAssertTrue(r.stderr.contains("the kernel has no ipvlan support"), "podman shows the plugin's refusal: \(r.stderr)")
        }
        try sandbox.podmanChecked(["network", "rm", "ipv"])
        try assertNothingLeft(networks: ["ipv"], testVeths: [parent, parent + "p"])
    }

    /// Whether the kernel makes ipvlan links: tried on the test's own parent, in the sandbox.
    private func kernelHasIpvlan(parent: String) throws -> Bool {
        let probe = sandbox.world.shortName("ivq")
        let r = sandbox.run(["ip", "link", "add", probe, "link", parent, "type", "ipvlan"])
        if r.ok { try sandbox.runChecked(["ip", "link", "del", probe]); return true }
        // iproute2's answer when the kernel has no such link kind; anything else is a broken probe.
        guard r.stderr.contains("Unknown device type") else { throw CommandFailure(r, "failed unexpectedly") }
        return false
    }
}
