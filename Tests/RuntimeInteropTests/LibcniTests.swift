// The conflists containerd and cri-o document as their defaults, and the one podman writes,
// run through libcni itself (Debian's golang-github-appc-cni-dev, built into a small client
// here) on our plugins alone: ADD, CHECK and DEL with the CNI_ARGS and capability arguments
// those runtimes send, the kernel state read back, and nothing left after DEL.

import Foundation
import TestSupport
import XCTest

final class LibcniTests: XCTestCase {
    static let libcniSource = "/usr/share/gocode/src/github.com/containernetworking/cni/libcni"
    static let clientSource = URL(fileURLWithPath: #filePath).deletingLastPathComponent().path + "/libcni-client/main.go"

    var world: TestWorld!
    var plugins: PluginLinks!
    var client = ""
    var state = ""
    var host = "", ctr = ""

    override func setUpWithError() throws {
        guard let go = findExecutable("go") else { throw XCTSkip("golang-go is not installed (scripts/setup.sh installs it)") }
        guard FileManager.default.fileExists(atPath: Self.libcniSource) else {
            throw XCTSkip("golang-github-appc-cni-dev is not installed (scripts/setup.sh installs it)")
        }
        world = TestWorld()
        plugins = try PluginLinks()
        state = world.tempDirectory("libcni")
        client = state + "/libcni-client"
        // GOPATH mode over the Debian source tree: nothing is downloaded.
        try runChecked([go, "build", "-o", client, Self.clientSource], environment: [
            "GO111MODULE": "off", "GOPATH": state + "/gopath:/usr/share/gocode", "GOCACHE": state + "/gocache",
            "HOME": state, "PATH": "/usr/bin:/bin", "GOFLAGS": "",
        ], timeout: 600)
        host = try world.makeNetns("host")
        ctr = try world.makeNetns("ctr")
    }

    override func tearDown() {
        world?.cleanup()
        XCTAssertNoThrow(try plugins?.remove())
    }

    /// Runs the client in the host netns.
    private func libcni(_ cmd: String, _ conflist: String, id: String, _ extra: [String] = []) -> CommandResult {
        world.exec(in: host, [client, "-cmd", cmd, "-conflist", conflist, "-netns", world.path(ctr), "-id", id,
                              "-path", plugins.directory, "-cache", state + "/cache"] + extra)
    }

    /// Writes a conflist with host-local's leases kept in the test's directory.
    private func writeConflist(_ name: String, _ text: String) throws -> String {
        let path = state + "/" + name + ".conflist"
        try text.replacingOccurrences(of: "@DATADIR@", with: state + "/leases").write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    private func containerAddresses() throws -> [String] {
        try world.readIPJSON(ctr, ["addr", "show", "eth0"]).flatMap { link in
            (link["addr_info"] as? [[String: Any]] ?? []).filter { $0["scope"] as? String == "global" }
                .compactMap { a in (a["local"] as? String).map { "\($0)/\(a["prefixlen"] as? Int ?? -1)" } }
        }
    }

    private func leases() throws -> [String] {
        let dir = state + "/leases"
        guard FileManager.default.fileExists(atPath: dir) else { return [] }
        // host-local names a reservation after its address; last_reserved_ip.N and lock stay.
        return try FileManager.default.subpathsOfDirectory(atPath: dir).filter { path in
            let name = (path as NSString).lastPathComponent
            return !name.hasPrefix("last_reserved_ip") && (name.contains(".") || name.contains(":"))
        }
    }

    /// ADD, CHECK, DEL of one conflist; returns ADD's result. Asserts nothing is left.
    private func lifecycle(_ conflist: String, id: String, version: String, extra: [String] = [],
                           whileAdded: ([String: Any]) throws -> Void) throws {
        let add = libcni("ADD", conflist, id: id, extra)
        XCTAssertEqual(add.status, 0, "\(add)")
        let result = try XCTUnwrap(add.jsonObject, "\(add)")
        XCTAssertEqual(result["cniVersion"] as? String, version, "the result at the list's version")
        try whileAdded(result)
        let check = libcni("CHECK", conflist, id: id, extra)
        XCTAssertEqual(check.status, 0, "\(check)")
        let del = libcni("DEL", conflist, id: id, extra)
        XCTAssertEqual(del.status, 0, "\(del)")
        XCTAssertEqual(try world.readIPJSON(host, ["link", "show", "type", "veth"]).count, 0, "no veth left")
        XCTAssertEqual(try leases(), [], "no lease left")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: state + "/cache/results"), [], "libcni's cache emptied")
        let elements = try NFTRuleset.read(in: host).sets(table: "netlab").flatMap(\.elements)
        XCTAssertEqual(elements.count, 0, "no nftables element left")
    }

    /// containerd's documented default (its 10-containerd-net.conflist): bridge with
    /// dual-stack host-local and portmap.
    func testContainerdDefaultConflist() throws {
        let path = try writeConflist("containerd-net", """
            {"cniVersion": "1.0.0", "name": "containerd-net", "plugins": [
              {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": true, "promiscMode": true,
               "ipam": {"type": "host-local", "dataDir": "@DATADIR@",
                        "ranges": [[{"subnet": "10.88.0.0/16"}], [{"subnet": "2001:4860:4860::/64"}]],
                        "routes": [{"dst": "0.0.0.0/0"}, {"dst": "::/0"}]}},
              {"type": "portmap", "capabilities": {"portMappings": true}}]}
            """)
        let ports = #"[{"hostPort":8081,"containerPort":80,"protocol":"tcp"}]"#
        try lifecycle(path, id: "containerd-pod-1", version: "1.0.0", extra: ["-ports", ports]) { result in
            let ips = (result["ips"] as? [[String: Any]] ?? []).compactMap { $0["address"] as? String }
            XCTAssertTrue(ips.contains { $0.hasPrefix("10.88.") } && ips.contains { $0.hasPrefix("2001:4860:4860:") }, "\(ips)")
            XCTAssertEqual(Set(try containerAddresses()), Set(ips))
            let dnat = try NFTRuleset.read(in: host).sets(table: "netlab").flatMap(\.elements).filter { $0.key.contains("8081") }
            XCTAssertFalse(dnat.isEmpty, "portMappings capability became a mapping")
        }
    }

    /// cri-o's documented default (its 10-crio-bridge.conflist), with CNI_ARGS IP= as a
    /// static address request (ignored keys: IgnoreUnknown=1 and the K8S_* keys).
    func testCrioDefaultConflistWithCNIArgsIP() throws {
        let path = try writeConflist("crio", """
            {"cniVersion": "1.0.0", "name": "crio", "plugins": [
              {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": true, "hairpinMode": true,
               "ipam": {"type": "host-local", "dataDir": "@DATADIR@",
                        "routes": [{"dst": "0.0.0.0/0"}, {"dst": "::/0"}],
                        "ranges": [[{"subnet": "10.85.0.0/16"}], [{"subnet": "1100:200::/24"}]]}}]}
            """)
        try lifecycle(path, id: "crio-pod-1", version: "1.0.0", extra: ["-args", "IP=10.85.0.77"]) { result in
            let ips = (result["ips"] as? [[String: Any]] ?? []).compactMap { $0["address"] as? String }
            XCTAssertTrue(ips.contains("10.85.0.77/16"), "CNI_ARGS IP=: \(ips)")
            XCTAssertTrue(try containerAddresses().contains("10.85.0.77/16"))
        }
    }

    /// The conflist podman 4.3 writes (CNI 0.4.0: bridge with the ips capability, portmap,
    /// firewall, tuning), with the ips and mac capabilities as a runtime fills them.
    func testPodmanConflistThroughLibcni() throws {
        let path = try writeConflist("podnet", """
            {"cniVersion": "0.4.0", "name": "podnet", "plugins": [
              {"type": "bridge", "bridge": "cni-podman9", "isGateway": true, "ipMasq": true, "hairpinMode": true,
               "ipam": {"type": "host-local", "dataDir": "@DATADIR@", "routes": [{"dst": "0.0.0.0/0"}],
                        "ranges": [[{"subnet": "10.89.9.0/24", "gateway": "10.89.9.1"}]]},
               "capabilities": {"ips": true}},
              {"type": "portmap", "capabilities": {"portMappings": true}},
              {"type": "firewall", "backend": ""},
              {"type": "tuning", "capabilities": {"mac": true}}]}
            """)
        let mac = "02:42:0a:59:09:2a"
        try lifecycle(path, id: "podman-ctr-1", version: "0.4.0", extra: ["-ips", "10.89.9.42/24", "-mac", mac]) { result in
            let ips = result["ips"] as? [[String: Any]] ?? []
            XCTAssertEqual(ips.first?["address"] as? String, "10.89.9.42/24", "ips capability")
            XCTAssertEqual(ips.first?["version"] as? String, "4", "0.4.0 results carry the address version")
            let link = try world.readIPJSON(ctr, ["link", "show", "eth0"]).first
            XCTAssertEqual(link?["address"] as? String, mac, "mac capability (tuning)")
        }
    }
}
