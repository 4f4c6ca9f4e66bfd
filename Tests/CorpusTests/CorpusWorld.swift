// The world the corpus runs in, one per plugin: a netns playing the host (with a bridge's
// name reserved, a veth parent for macvlan/ipvlan), a container netns, and one temporary
// root holding every data directory and flannel's subnet.env. `State` is everything a failed
// call must leave as it found it: links and addresses of both netns, both nft rulesets, and
// every file under the data root.

import Foundation
import SystemKit
import TestSupport

final class CorpusWorld {
    static let corpusRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Corpus").path
    /// Longest a single case may take before it counts as a hang.
    static let timeout = 10.0
    /// The text of "@LONG10K@".
    static let longText = String(repeating: "x", count: 10 * 1024)
    static let defaultSubnetEnv = "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.7.1/24\nFLANNEL_MTU=1410\nFLANNEL_IPMASQ=true\n"

    let world: TestWorld
    let plugin: String
    let host: String
    let container: String
    let bridge: String
    let master: String
    let root: String
    /// A regular file, a plain directory and an empty CNI_PATH directory for the environment cases.
    let regularFile: String
    let plainDirectory: String
    let emptyPluginDir: String

    init(_ world: TestWorld, plugin: String) throws {
        self.world = world
        self.plugin = plugin
        host = try world.makeNetns("host")
        container = try world.makeNetns("ctr")
        bridge = world.shortName("nlcb")
        master = world.shortName("nlcm")
        // A veth end as the parent (this kernel may lack the dummy driver).
        let peer = world.shortName("nlcp")
        try runChecked(["ip", "-n", host, "link", "add", master, "type", "veth", "peer", "name", peer])
        try runChecked(["ip", "-n", host, "link", "set", master, "up"])
        try runChecked(["ip", "-n", host, "link", "set", peer, "up"])
        root = world.tempDirectory("corpus")
        for dir in ["data", "tuning", "flannel", "run", "misc/dir", "emptypath"] {
            try FileManager.default.createDirectory(atPath: root + "/" + dir, withIntermediateDirectories: true)
        }
        regularFile = root + "/misc/regular"
        plainDirectory = root + "/misc/dir"
        emptyPluginDir = root + "/emptypath"
        try Data("not a namespace\n".utf8).write(to: URL(fileURLWithPath: regularFile))
        try writeSubnetEnv(Self.defaultSubnetEnv)
    }

    var subnetFile: String { root + "/run/subnet.env" }

    func writeSubnetEnv(_ text: String) throws {
        try Data(text.utf8).write(to: URL(fileURLWithPath: subnetFile))
    }

    /// Placeholders of configs and environment values.
    func replace(_ s: String) -> String {
        guard s.contains("@") else { return s }
        let dataDir = plugin == "tuning" ? root + "/tuning" : root + "/data"
        return s.replacingOccurrences(of: "@LONG10K@", with: Self.longText)
            .replacingOccurrences(of: "@DATADIR@", with: dataDir)
            .replacingOccurrences(of: "@FLANNELDIR@", with: root + "/flannel")
            .replacingOccurrences(of: "@SUBNETFILE@", with: subnetFile)
            .replacingOccurrences(of: "@BRIDGE@", with: bridge)
            .replacingOccurrences(of: "@MASTER@", with: master)
            .replacingOccurrences(of: "@NETNS@", with: world.path(container))
            .replacingOccurrences(of: "@REGULARFILE@", with: regularFile)
            .replacingOccurrences(of: "@DIRECTORY@", with: plainDirectory)
            .replacingOccurrences(of: "@EMPTYPATH@", with: emptyPluginDir)
            .replacingOccurrences(of: "@BINDIR@", with: BuiltProducts.directory)
            .replacingOccurrences(of: "@ROOT@", with: root)
    }

    /// The stdin text of `c` for this plugin.
    func stdin(_ c: CorpusCase) throws -> String {
        if let raw = c.raw { return replace(raw) }
        let baseName = c.base == "@plugin" ? plugin : c.base
        let data = try Data(contentsOf: URL(fileURLWithPath: Self.corpusRoot + "/bases/" + baseName + ".json"))
        var config = try JSONSerialization.jsonObject(with: data)
        if let patch = c.patch { config = mergePatch(config, patch) }
        config = substitute(config, replace)
        let out = try JSONSerialization.data(withJSONObject: config, options: [.sortedKeys, .withoutEscapingSlashes])
        return String(decoding: out, as: UTF8.self)
    }

    /// The environment of `c`: a runtime's defaults, then the case's overrides.
    func environment(_ c: CorpusCase) -> [String: String] {
        var env = ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "CNI_COMMAND": c.command, "CNI_CONTAINERID": "corpus-ctr",
                   "CNI_NETNS": world.path(container), "CNI_IFNAME": "eth0", "CNI_PATH": BuiltProducts.directory]
        for (k, v) in c.env {
            if let s = v as? String { env[k] = replace(s) } else { env.removeValue(forKey: k) }
        }
        return env
    }

    /// Runs the plugin for `c` inside the host netns.
    func run(_ c: CorpusCase, command: String? = nil) throws -> CommandResult {
        let input = try stdin(c)
        if let text = c.subnetEnv { try writeSubnetEnv(replace(text)) }
        var env = environment(c)
        if let command { env["CNI_COMMAND"] = command }
        return runCommand(["ip", "netns", "exec", host, BuiltProducts.path(plugin)],
                          environment: env, stdin: input, timeout: Self.timeout)
    }

    struct State: Equatable {
        var hostAddresses: String
        var containerAddresses: String
        var hostRuleset: String
        var containerRuleset: String
        /// Path below the root → mode and bytes (or the link target).
        var files: [String: String]
    }

    func state() throws -> State {
        State(hostAddresses: try runChecked(["ip", "-n", host, "-j", "addr", "show"]).stdout,
              containerAddresses: try runChecked(["ip", "-n", container, "-j", "addr", "show"]).stdout,
              hostRuleset: try Self.text(NFTRuleset.read(in: host)),
              containerRuleset: try Self.text(NFTRuleset.read(in: container)),
              files: try files())
    }

    static func text(_ r: NFTRuleset) throws -> String {
        String(decoding: try JSONSerialization.data(withJSONObject: r.entries, options: [.sortedKeys]), as: UTF8.self)
    }

    /// Every entry below the root, read without following symlinks; an unreadable one throws.
    func files() throws -> [String: String] {
        var out: [String: String] = [:]
        func walk(_ dir: String) throws {
            for name in try Files.list(dir) {
                let path = dir + "/" + name
                var st = stat()
                guard lstat(path, &st) == 0 else { throw SystemError(operation: "lstat", object: path, errno: errno) }
                let mode = String(st.st_mode, radix: 8)
                switch st.st_mode & S_IFMT {
                case S_IFDIR:
                    out[path] = "dir \(mode)"
                    try walk(path)
                case S_IFLNK:
                    out[path] = "link -> " + (try FileManager.default.destinationOfSymbolicLink(atPath: path))
                default:
                    out[path] = "file \(mode) " + String(decoding: try Files.read(path), as: UTF8.self)
                }
            }
        }
        try walk(root)
        return out
    }
}
