// A small world for the bridge plugin's integration tests: a host netns (bridge, nftables,
// sysctls live there), container netns, a temporary host-local data directory, and helpers
// that read the kernel state back with ip/nft.

import Foundation
import XCTest
import TestSupport

final class BridgeWorld {
    let world: TestWorld
    let host: String
    let dataDir: String
    let bridge: String
    let network: String

    init(_ world: TestWorld, network: String = "brnet", role: String = "host") {
        self.world = world
        host = world.netns(role)
        dataDir = world.tempDirectory("ipam")
        bridge = world.shortName("nlbr")
        self.network = network
    }

    /// CNI_PATH for the IPAM delegate: our built host-local when it is a real plugin, else
    /// (until it lands) a directory holding only the reference host-local.
    static let ipamPath: String = {
        let ours = BuiltProducts.path("host-local")
        var env = ["CNI_COMMAND": "VERSION"]
        env["PATH"] = "/usr/bin:/bin"
        let v = runCommand([ours], environment: env, stdin: "{}")
        if v.ok, v.stdout.contains("supportedVersions") { return BuiltProducts.directory }
        let dir = NSTemporaryDirectory() + "nlt-refipam-\(getpid())"
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try? FileManager.default.createSymbolicLink(atPath: dir + "/host-local", withDestinationPath: "/usr/lib/cni/host-local")
        return dir
    }()

    /// A bridge network config: `options` merged over the defaults, `ranges` for host-local.
    func config(_ options: [String: Any] = [:], ranges: [[[String: Any]]]? = [[["subnet": "10.99.0.0/24"]]],
                version: String = "1.0.0", ipamExtra: [String: Any] = [:]) -> String {
        var c: [String: Any] = ["cniVersion": version, "name": network, "type": "bridge", "bridge": bridge]
        if let ranges {
            var ipam: [String: Any] = ["type": "host-local", "dataDir": dataDir, "ranges": ranges]
            for (k, v) in ipamExtra { ipam[k] = v }
            c["ipam"] = ipam
        }
        for (k, v) in options { c[k] = v }
        return Self.json(c)
    }

    static func json(_ o: Any) -> String {
        String(data: try! JSONSerialization.data(withJSONObject: o, options: [.sortedKeys]), encoding: .utf8)!
    }

    @discardableResult
    func run(_ command: String, _ config: String, ctr: String?, id: String, ifname: String = "eth0",
             args: String? = nil, cniPath: String? = nil) -> CommandResult {
        world.runPlugin("bridge", command: command, config: config, containerID: id,
                        netns: ctr.map { $0.hasPrefix("/") ? $0 : world.path($0) }, ifname: ifname, args: args,
                        cniPath: cniPath ?? Self.ipamPath, hostNetns: host)
    }

    /// The config with `prevResult` set (for CHECK/DEL as a runtime sends them).
    func config(_ base: String, prevResult: String) -> String {
        var c = try! JSONSerialization.jsonObject(with: base.data(using: .utf8)!) as! [String: Any]
        c["prevResult"] = try! JSONSerialization.jsonObject(with: prevResult.data(using: .utf8)!)
        return Self.json(c)
    }

    /// Container addresses of an ADD result.
    static func addresses(_ r: CommandResult) -> [String] {
        (r.jsonObject?["ips"] as? [[String: Any]] ?? []).compactMap { $0["address"] as? String }
    }
    static func ip(_ cidr: String) -> String { String(cidr.split(separator: "/")[0]) }

    /// Masquerade map elements in the host netns: (key, comment).
    func masqElements() -> [(key: String, comment: String)] {
        let r = world.exec(in: host, ["nft", "-j", "list", "table", "inet", "netlab"])
        guard r.ok, let obj = r.jsonObject, let items = obj["nftables"] as? [[String: Any]] else { return [] }
        var out: [(String, String)] = []
        for item in items {
            guard let m = item["map"] as? [String: Any], let name = m["name"] as? String, name.hasPrefix("masq_"),
                  let elems = m["elem"] as? [Any] else { continue }
            for e in elems {
                // [ {"elem": {"val": "10.0.0.2", "comment": "..."}}, {"jump": {...}} ]
                guard let pair = e as? [Any], let k = pair.first as? [String: Any],
                      let inner = k["elem"] as? [String: Any] else { continue }
                out.append(("\(inner["val"] ?? "")", inner["comment"] as? String ?? ""))
            }
        }
        return out
    }

    /// Lease files of the network in the data directory (host-local's `<ip>` files).
    func leases() -> [String] {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: dataDir + "/" + network)) ?? []
        return files.filter { !$0.hasPrefix("last_reserved_ip") && $0 != "lock" }
    }

    /// veth links in the host netns.
    func hostVeths() -> [String] {
        world.ipJSON(host, ["link", "show", "type", "veth"]).compactMap { $0["ifname"] as? String }
    }

    func ping(from ns: String, _ ip: String) -> CommandResult {
        world.exec(in: ns, ["ping", ip.contains(":") ? "-6" : "-4", "-c", "1", "-W", "2", ip], timeout: 10)
    }
}
