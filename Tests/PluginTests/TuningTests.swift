import Foundation
import XCTest
import TestSupport

/// Base of the tuning tests: a fresh host netns per test, removed at teardown also when the
/// test fails.
class TuningTestCase: XCTestCase {
    var world: TestWorld!
    var tw: TuningWorld!

    override func setUp() {
        world = TestWorld()
        addTeardownBlock { [world] in world?.cleanup() }
        tw = TuningWorld(world)
    }
}

/// The tuning plugin run as a runtime runs it: every value read back inside the container's
/// netns, the originals put back by DEL, bad input refused with its code.
final class TuningTests: TuningTestCase {
    let keys = ["net.core.somaxconn", "net.ipv4.conf.IFNAME.arp_filter", "net.ipv6.conf.IFNAME.hop_limit", "net.ipv4.ping_group_range"]
    let everything: [String: Any] = [
        "sysctl": ["net.core.somaxconn": "512", "net.ipv4.conf.IFNAME.arp_filter": "1",
                   "net.ipv6.conf.IFNAME.hop_limit": "33", "net.ipv4.ping_group_range": "0 1000"],
        "mac": "02:42:ac:11:00:09", "mtu": 1400, "promisc": true, "allmulti": true, "txQLen": 77, "ifName": "net1",
    ]

    func testAddSetsEveryValueAndDelPutsEveryOriginalBack() throws {
        let ns = tw.container("c1")
        let before = tw.state(ns, keys: keys)
        let add = tw.run("ADD", tw.config(everything, prevResult: tw.prevResult(ns), version: "1.1.0"), netns: ns)
        XCTAssertEqual(add.status, 0, add.description)
        let after = tw.state(ns, "net1", keys: keys)
        XCTAssertEqual(after, TuningWorld.State(name: "net1", mac: "02:42:ac:11:00:09", mtu: 1400, promisc: true, allmulti: true,
                                                txqlen: 77, sysctls: ["net.core.somaxconn": "512", "net.ipv4.conf.IFNAME.arp_filter": "1",
                                                                      "net.ipv6.conf.IFNAME.hop_limit": "33",
                                                                      "net.ipv4.ping_group_range": "0\t1000"]))
        let gone = runCommand(["ip", "-n", ns, "link", "show", "dev", "eth0"])
        XCTAssertTrue(!gone.ok && gone.stderr.contains("does not exist"), "eth0 was renamed: \(gone)")
        // The addresses and the default route stay with the renamed interface.
        XCTAssertEqual(world.ipJSON(ns, ["route", "show", "default"]).first?["dev"] as? String, "net1")
        let addrs = world.ipJSON(ns, ["addr", "show", "dev", "net1"]).flatMap { ($0["addr_info"] as? [[String: Any]]) ?? [] }
        XCTAssertTrue(addrs.contains { $0["local"] as? String == "fd66::2" }, "\(addrs)")
        // The result: prevResult with the interface's new MAC, MTU (1.1.0) and name.
        let iface = (add.jsonObject?["interfaces"] as? [[String: Any]])?.first ?? [:]
        XCTAssertEqual(iface["mac"] as? String, "02:42:ac:11:00:09")
        XCTAssertEqual(iface["mtu"] as? Int, 1400)
        XCTAssertEqual(iface["name"] as? String, "net1")
        XCTAssertEqual(add.jsonObject.map { FirewallWorld.json($0["ips"] ?? []) },
                       #"[{"address":"10.66.0.2\/24","gateway":"10.66.0.1","interface":0}]"#)

        // The originals on disk: private, in the reference's format plus what it does not keep.
        let attrs = try FileManager.default.attributesOfItem(atPath: tw.file())
        XCTAssertEqual((attrs[.posixPermissions] as? NSNumber)?.intValue, 0o600)
        let dirAttrs = try FileManager.default.attributesOfItem(atPath: tw.dataDir)
        XCTAssertEqual((dirAttrs[.posixPermissions] as? NSNumber)?.intValue, 0o700)
        let saved = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: tw.file()))) as? [String: Any] ?? [:]
        XCTAssertEqual(saved["mac"] as? String, before.mac)
        XCTAssertEqual(saved["mtu"] as? Int, before.mtu)
        XCTAssertEqual(saved["txQLen"] as? Int, before.txqlen)
        XCTAssertEqual(saved["promisc"] as? Bool, false)
        XCTAssertEqual(saved["allmulti"] as? Bool, false)
        XCTAssertEqual(saved["ifName"] as? String, "net1")
        XCTAssertEqual((saved["sysctl"] as? [String: String])?["net/ipv4/conf/eth0/arp_filter"], before.sysctls["net.ipv4.conf.IFNAME.arp_filter"])

        let del = tw.run("DEL", tw.config([:]), netns: ns)
        XCTAssertEqual(del.status, 0, del.description)
        XCTAssertEqual(tw.state(ns, keys: keys), before)
        XCTAssertEqual(tw.files(), [], "DEL removes the originals")
        let again = tw.run("DEL", tw.config([:]), netns: ns)
        XCTAssertEqual(again.status, 0, "a second DEL: \(again)")
        XCTAssertEqual(tw.state(ns, keys: keys), before)
    }

    func testCheckVerifiesEveryValueAndNamesWhatDiffers() throws {
        let ns = tw.container("c1")
        let conf = tw.config(everything, prevResult: tw.prevResult(ns))
        XCTAssertEqual(tw.run("ADD", conf, netns: ns).status, 0)
        let ok = tw.run("CHECK", conf, netns: ns)
        XCTAssertEqual(ok.status, 0, ok.description)
        let changes: [([String], String)] = [
            (["ip", "-n", ns, "link", "set", "net1", "mtu", "1300"], "MTU of net1 is 1300, configured 1400"),
            (["ip", "-n", ns, "link", "set", "net1", "allmulticast", "off"], "all-multicast mode of net1 is false, configured true"),
            (["ip", "-n", ns, "link", "set", "net1", "txqueuelen", "5"], "transmit queue length of net1 is 5, configured 77"),
            (["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.conf.net1.arp_filter=0"],
             "sysctl net.ipv4.conf.IFNAME.arp_filter (/proc/sys/net/ipv4/conf/net1/arp_filter) is \"0\", configured \"1\""),
        ]
        for (command, text) in changes {
            XCTAssertTrue(runCommand(command).ok, "\(command)")
            let bad = tw.run("CHECK", conf, netns: ns)
            XCTAssertEqual(bad.status, 1, bad.description)
            XCTAssertEqual(bad.jsonObject?["code"] as? Int, 999, bad.stdout)
            XCTAssertTrue((bad.jsonObject?["msg"] as? String ?? "").contains(text), "want \(text): \(bad.stdout)")
            // Put the value back for the next case: DEL and ADD again.
            XCTAssertEqual(tw.run("DEL", tw.config([:]), netns: ns).status, 0)
            XCTAssertEqual(tw.run("ADD", conf, netns: ns).status, 0)
        }
        let noPrev = tw.run("CHECK", tw.config(everything), netns: ns)
        XCTAssertEqual(noPrev.jsonObject?["code"] as? Int, 7, noPrev.stdout)
    }

    func testRefusedKeysAndValuesAreCode7NamingThemAndChangeNothing() throws {
        let ns = tw.container("c1")
        let before = tw.state(ns, keys: keys)
        let cases: [([String: Any], String)] = [
            (["sysctl": ["kernel.hostname": "x"]], "key \"kernel.hostname\" is not a network sysctl"),
            (["sysctl": ["net"]], ""),
            (["sysctl": ["net": "1"]], "key \"net\" is not a network sysctl"),
            (["sysctl": ["net..core.somaxconn": "1"]], "key \"net..core.somaxconn\" is not a plain dotted name"),
            (["sysctl": ["net/core/somaxconn": "1"]], "key \"net/core/somaxconn\" is not a network sysctl"),
            (["sysctl": ["net.ipv4.conf/../../../kernel/hostname": "x"]], "key \"net.ipv4.conf/../../../kernel/hostname\" is not a plain dotted name"),
            (["sysctl": ["../net.core.somaxconn": "1"]], "key \"../net.core.somaxconn\" is not a network sysctl"),
            (["sysctl": ["net.core.somaxconn": "1\n2"]], "value of \"net.core.somaxconn\" contains a newline"),
            (["sysctl": ["net.ipv4.conf.eth0.arp_filter": "1", "net.ipv4.conf.IFNAME.arp_filter": "0"]], "name the same sysctl with different values"),
            (["mac": "01:00:5e:00:00:01"], "mac: invalid unicast MAC address \"01:00:5e:00:00:01\""),
            (["mac": "nonsense"], "mac: invalid unicast MAC address"),
            (["mtu": 10], "mtu: 10 is out of range 68-65535"),
            (["txQLen": -1], "txQLen: -1 is out of range"),
            (["ifName": "a/b"], "ifName: \"a/b\" is not a valid interface name"),
            (["ifName": "sixteen-letters!"], "is not a valid interface name"),
            (["dataDir": "relative/dir"], "dataDir: \"relative/dir\" must be an absolute path"),
            (["dataDir": "/run/../etc"], "must be an absolute path without"),
            (["args": ["cni": ["sysctl": ["kernel.pid_max": "9"]]]], "key \"kernel.pid_max\" is not a network sysctl"),
        ]
        for (options, text) in cases {
            let r = tw.run("ADD", tw.config(options, prevResult: tw.prevResult(ns)), netns: ns)
            XCTAssertEqual(r.status, 1, "\(options): \(r)")
            if text.isEmpty {
                // A list where a map belongs: the config does not decode.
                XCTAssertEqual(r.jsonObject?["code"] as? Int, 6, "\(options): \(r.stdout)")
                continue
            }
            XCTAssertEqual(r.jsonObject?["code"] as? Int, 7, "\(options): \(r.stdout)")
            XCTAssertTrue((r.jsonObject?["msg"] as? String ?? "").contains(text), "\(options): want \(text): \(r.stdout)")
        }
        XCTAssertEqual(tw.state(ns, keys: keys), before)
        XCTAssertEqual(tw.files(), [])
        let noPrev = tw.run("ADD", tw.config(["mtu": 1400]), netns: ns)
        XCTAssertEqual(noPrev.jsonObject?["code"] as? Int, 7, noPrev.stdout)
        XCTAssertTrue((noPrev.jsonObject?["msg"] as? String ?? "").contains("prevResult"), noPrev.stdout)
    }

    /// Runs the plugin with `allowlist` as /etc/cni/tuning/allowlist.conf, seen only by the
    /// plugin: /etc is an overlay in a mount namespace of its own, so the machine's /etc is
    /// never written.
    func runWithAllowlist(_ allowlist: String, _ command: String, _ config: String, netns: String) -> CommandResult {
        let scratch = world.tempDirectory("overlay")
        XCTAssertTrue(FileManager.default.createFile(atPath: scratch + "/allowlist", contents: Data(allowlist.utf8)))
        let script = """
        set -e
        mkdir -p \(scratch)/upper \(scratch)/work
        mount --make-rprivate /
        mount -t overlay overlay -o lowerdir=/etc,upperdir=\(scratch)/upper,workdir=\(scratch)/work /etc
        mkdir -p /etc/cni/tuning
        cp \(scratch)/allowlist /etc/cni/tuning/allowlist.conf
        exec ip netns exec \(tw.host) "$0"
        """
        let env = ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "CNI_COMMAND": command, "CNI_CONTAINERID": "tun1",
                   "CNI_NETNS": world.path(netns), "CNI_IFNAME": "eth0", "CNI_PATH": BuiltProducts.directory]
        return runCommand(["unshare", "-m", "sh", "-c", script, BuiltProducts.path("tuning")], environment: env, stdin: config)
    }

    /// What the machine's /etc/cni holds (nil when there is none): podman's package, for one,
    /// installs /etc/cni/net.d/87-podman-bridge.conflist.
    private func machineEtcCNI() throws -> [String]? {
        guard FileManager.default.fileExists(atPath: "/etc/cni") else { return nil }
        return try FileManager.default.subpathsOfDirectory(atPath: "/etc/cni").sorted()
    }

    func testTheAdministratorsAllowlistIsHonoured() throws {
        let ns = tw.container("c1")
        XCTAssertFalse(FileManager.default.fileExists(atPath: "/etc/cni/tuning/allowlist.conf"), "this machine has an allowlist")
        let etcBefore = try machineEtcCNI()
        let allow = "^net\\.core\\.somaxconn$\n  net\\.ipv4\\.conf\\.IFNAME\\.\n"
        let refused = runWithAllowlist(allow, "ADD", tw.config(["sysctl": ["net.core.somaxconn": "600", "net.ipv4.ip_forward": "1"]],
                                                               prevResult: tw.prevResult(ns)), netns: ns)
        XCTAssertEqual(refused.status, 1, refused.description)
        XCTAssertEqual(refused.jsonObject?["code"] as? Int, 7, refused.description)
        XCTAssertTrue((refused.jsonObject?["msg"] as? String ?? "").contains("key \"net.ipv4.ip_forward\" is not allowed by /etc/cni/tuning/allowlist.conf"),
                      refused.stdout)
        XCTAssertEqual(tw.sysctl(ns, "net.core.somaxconn"), "4096", "nothing was written")
        let allowed = runWithAllowlist(allow, "ADD", tw.config(["sysctl": ["net.core.somaxconn": "600", "net.ipv4.conf.IFNAME.arp_filter": "1"]],
                                                               prevResult: tw.prevResult(ns)), netns: ns)
        XCTAssertEqual(allowed.status, 0, allowed.description)
        XCTAssertEqual(tw.sysctl(ns, "net.core.somaxconn"), "600")
        XCTAssertEqual(tw.sysctl(ns, "net.ipv4.conf.eth0.arp_filter"), "1")
        let broken = runWithAllowlist("net\\.(", "ADD", tw.config(["sysctl": ["net.core.somaxconn": "700"]], prevResult: tw.prevResult(ns)), netns: ns)
        XCTAssertEqual(broken.jsonObject?["code"] as? Int, 999, broken.description)
        XCTAssertTrue((broken.jsonObject?["msg"] as? String ?? "").contains("pattern 1 \"net\\.(\" is not a regular expression"), broken.stdout)
        XCTAssertEqual(try machineEtcCNI(), etcBefore, "the machine's /etc stays as it was")
    }

    func testMACFromTheRuntimeFormsInTheReferenceOrder() throws {
        let ns = tw.container("c1")
        let mac = { self.tw.link(ns, "eth0")["address"] as? String }
        // config < CNI_ARGS MAC < runtimeConfig.mac < args.cni.mac
        var options: [String: Any] = ["mac": "02:00:00:00:00:0a"]
        let steps: [(String?, String)] = [(nil, "02:00:00:00:00:0a"), ("IgnoreUnknown=1;MAC=02:00:00:00:00:0b", "02:00:00:00:00:0b")]
        for (args, want) in steps {
            let r = tw.run("ADD", tw.config(options, prevResult: tw.prevResult(ns)), netns: ns, args: args)
            XCTAssertEqual(r.status, 0, r.description)
            XCTAssertEqual(mac(), want)
            XCTAssertEqual((r.jsonObject?["interfaces"] as? [[String: Any]])?.first?["mac"] as? String, want)
        }
        options["runtimeConfig"] = ["mac": "02:00:00:00:00:0c"]
        var r = tw.run("ADD", tw.config(options, prevResult: tw.prevResult(ns)), netns: ns, args: "MAC=02:00:00:00:00:0b")
        XCTAssertEqual(r.status, 0, r.description)
        XCTAssertEqual(mac(), "02:00:00:00:00:0c")
        options["args"] = ["cni": ["mac": "02:00:00:00:00:0d", "mtu": 1280, "txQLen": 0]]
        r = tw.run("ADD", tw.config(options, prevResult: tw.prevResult(ns)), netns: ns, args: "MAC=02:00:00:00:00:0b")
        XCTAssertEqual(r.status, 0, r.description)
        XCTAssertEqual(mac(), "02:00:00:00:00:0d")
        XCTAssertEqual(tw.link(ns, "eth0")["mtu"] as? Int, 1280)
        XCTAssertEqual(tw.state(ns, keys: []).txqlen, 0)
    }

    func testRepeatedAddKeepsTheFirstOriginals() throws {
        let ns = tw.container("c1")
        let before = tw.state(ns, keys: keys)
        XCTAssertEqual(tw.run("ADD", tw.config(["mtu": 1400], prevResult: tw.prevResult(ns)), netns: ns).status, 0)
        XCTAssertEqual(tw.run("ADD", tw.config(["mtu": 1300, "promisc": true], prevResult: tw.prevResult(ns)), netns: ns).status, 0)
        XCTAssertEqual(tw.link(ns, "eth0")["mtu"] as? Int, 1300)
        XCTAssertEqual(tw.run("DEL", tw.config([:]), netns: ns).status, 0)
        XCTAssertEqual(tw.state(ns, keys: keys), before, "the MTU from before the first ADD")
    }

    func testFailedAddPutsBackWhatItChanged() throws {
        let ns = tw.container("c1")
        // The new name is taken: the rename, the last step, fails after everything else was set.
        XCTAssertTrue(runCommand(["ip", "-n", ns, "link", "add", "net1", "type", "veth", "peer", "name", "net1p"]).ok)
        let before = tw.state(ns, keys: keys)
        let r = tw.run("ADD", tw.config(everything, prevResult: tw.prevResult(ns)), netns: ns)
        XCTAssertEqual(r.status, 1, r.description)
        XCTAssertEqual(r.jsonObject?["code"] as? Int, 999, r.stdout)
        XCTAssertTrue((r.jsonObject?["msg"] as? String ?? "").contains("rename to net1"), r.stdout)
        XCTAssertEqual(tw.state(ns, keys: keys), before)
        XCTAssertEqual(tw.files(), [], "the originals file goes with the rest")
    }

    func testDelWithoutANetnsOrAfterItIsGoneRemovesTheOriginals() throws {
        let ns = tw.container("c1")
        XCTAssertEqual(tw.run("ADD", tw.config(everything, prevResult: tw.prevResult(ns)), netns: ns).status, 0)
        XCTAssertEqual(tw.files(), ["tun1_eth0.json"])
        let path = world.path(ns)
        XCTAssertTrue(runCommand(["ip", "netns", "del", ns]).ok)
        let d = world.runPlugin("tuning", command: "DEL", config: tw.config([:]), containerID: "tun1", netns: path,
                                ifname: "eth0", hostNetns: tw.host)
        XCTAssertEqual(d.status, 0, d.description)
        XCTAssertEqual(tw.files(), [])
        let ns2 = tw.container("c2")
        XCTAssertEqual(tw.run("ADD", tw.config(["mtu": 1400], prevResult: tw.prevResult(ns2)), netns: ns2, id: "tun2").status, 0)
        let d2 = tw.run("DEL", tw.config([:]), netns: nil, id: "tun2")
        XCTAssertEqual(d2.status, 0, d2.description)
        XCTAssertEqual(tw.files(), [])
        // DEL that never had an ADD, with no data directory at all.
        let missing = tw.dataDir + "-never-made"
        XCTAssertEqual(tw.run("DEL", tw.config(["dataDir": missing]), netns: ns2, id: "never").status, 0)
        XCTAssertFalse(FileManager.default.fileExists(atPath: missing), "DEL creates no directory")
    }

    func testPlantedSymlinksAreNeverFollowed() throws {
        let ns = tw.container("c1")
        let before = tw.state(ns, keys: keys)
        let target = world.tempDirectory("target") + "/victim"
        XCTAssertTrue(FileManager.default.createFile(atPath: target, contents: Data("keep".utf8)))
        try FileManager.default.createDirectory(atPath: tw.dataDir, withIntermediateDirectories: true)
        func refused(_ r: CommandResult, file: StaticString = #filePath, line: UInt = #line) {
            XCTAssertEqual(r.status, 1, r.description, file: file, line: line)
            XCTAssertEqual(r.jsonObject?["code"] as? Int, 5, r.stdout, file: file, line: line)
            XCTAssertTrue((r.jsonObject?["msg"] as? String ?? "").contains("ELOOP"), r.stdout, file: file, line: line)
            XCTAssertEqual(try String(contentsOfFile: target, encoding: .utf8), "keep", file: file, line: line)
        }
        // A link in the originals file's place: ADD neither reads nor writes through it, and
        // changes nothing.
        try FileManager.default.createSymbolicLink(atPath: tw.file(), withDestinationPath: target)
        refused(tw.run("ADD", tw.config(["mtu": 1400], prevResult: tw.prevResult(ns)), netns: ns))
        XCTAssertEqual(tw.state(ns, keys: keys), before)
        try FileManager.default.removeItem(atPath: tw.file())
        // A link planted between ADD and DEL: DEL refuses it and leaves the values as they are.
        XCTAssertEqual(tw.run("ADD", tw.config(["mtu": 1400], prevResult: tw.prevResult(ns)), netns: ns).status, 0)
        try FileManager.default.removeItem(atPath: tw.file())
        try FileManager.default.createSymbolicLink(atPath: tw.file(), withDestinationPath: target)
        refused(tw.run("DEL", tw.config([:]), netns: ns))
        XCTAssertEqual(tw.state(ns, keys: keys).mtu, 1400)
        try FileManager.default.removeItem(atPath: tw.file())
        // A data directory that is a symlink is refused before anything changes.
        let linkedDir = world.tempDirectory("linked") + "/data"
        try FileManager.default.createSymbolicLink(atPath: linkedDir, withDestinationPath: world.tempDirectory("elsewhere"))
        let now = tw.state(ns, keys: keys)
        refused(tw.run("ADD", tw.config(["mtu": 1300, "dataDir": linkedDir], prevResult: tw.prevResult(ns)), netns: ns))
        XCTAssertEqual(tw.state(ns, keys: keys), now)
    }

    func testGCRemovesTheOriginalsOfStaleAttachmentsOfThisNetworkOnly() throws {
        let ns1 = tw.container("c1"), ns2 = tw.container("c2", octet: 3)
        XCTAssertEqual(tw.run("ADD", tw.config(["mtu": 1400], prevResult: tw.prevResult(ns1)), netns: ns1, id: "keep").status, 0)
        XCTAssertEqual(tw.run("ADD", tw.config(["mtu": 1400], prevResult: tw.prevResult(ns2)), netns: ns2, id: "stale").status, 0)
        // A file of another network and one the reference plugin wrote (no network recorded).
        let other = #"{"mtu": 1500, "network": "othernet"}"#, reference = #"{"mtu": 1500}"#
        XCTAssertTrue(FileManager.default.createFile(atPath: tw.file("other"), contents: Data(other.utf8)))
        XCTAssertTrue(FileManager.default.createFile(atPath: tw.file("ref"), contents: Data(reference.utf8)))
        var c = FirewallWorld.object(tw.config([:], version: "1.1.0")) as! [String: Any]
        c["cni.dev/valid-attachments"] = [["containerID": "keep", "ifname": "eth0"]]
        let gc = world.runPlugin("tuning", command: "GC", config: FirewallWorld.json(c), containerID: nil, netns: nil,
                                 ifname: nil, hostNetns: tw.host)
        XCTAssertEqual(gc.status, 0, gc.description)
        XCTAssertEqual(tw.files(), ["keep_eth0.json", "other_eth0.json", "ref_eth0.json"])
    }
}
