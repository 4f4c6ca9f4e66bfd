// swift-tools-version:6.1
import Foundation
import PackageDescription

// netlab: CNI plugins, an overlay daemon and a namespace runtime for Linux.
// Plugins link only NetTypes/CNI/Netlink/NFTables/IPAM (FoundationEssentials at most);
// swift-argument-parser is used by the `netlab` CLI alone.

/// Linker flags that link the C++ runtime (which the static Swift runtime needs) statically
/// into netlab-cni and netlab: `Sources/netlab-cni/static-libstdc++` holds only a link to Debian 12's
/// libstdc++.a, and searched first it makes the Swift runtime's `-lstdc++` take the archive.
/// Loading libstdc++.so and applying its relocations was the largest part of a plugin's
/// start-up beyond the Go reference's. Where the link does not resolve (another toolchain),
/// nothing changes and libstdc++.so is used.
let staticCxxRuntime: [String] = {
    let dir = Context.packageDirectory + "/Sources/netlab-cni/static-libstdc++"
    return FileManager.default.fileExists(atPath: dir + "/libstdc++.a") ? ["-L", dir] : []
}()

let package = Package(
    name: "netlab",
    products: [
        .executable(name: "loopback", targets: ["loopback"]),
        .executable(name: "bridge", targets: ["bridge"]),
        .executable(name: "host-local", targets: ["host-local"]),
        .executable(name: "portmap", targets: ["portmap"]),
        .executable(name: "firewall", targets: ["firewall"]),
        .executable(name: "tuning", targets: ["tuning"]),
        .executable(name: "macvlan", targets: ["macvlan"]),
        .executable(name: "ipvlan", targets: ["ipvlan"]),
        .executable(name: "vxlan", targets: ["vxlan"]),
        .executable(name: "flannel", targets: ["flannel"]),
        .executable(name: "netlab", targets: ["netlab"]),
        .executable(name: "overlayd", targets: ["overlayd"]),
        // Every plugin above in one executable, installed with a hard link per plugin name.
        .executable(name: "netlab-cni", targets: ["netlab-cni"]),
        .library(name: "CNI", targets: ["CNI"]),
        .library(name: "Netlink", targets: ["Netlink"]),
        .library(name: "NFTables", targets: ["NFTables"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        // The etcd v3 store's HTTP client (OverlayStores only; no plugin links it).
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.100.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.30.0"),
        // overlayd's logs (on stderr, for journald).
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
    ],
    targets: [
        // C libraries, one system library target each, and one shim for what Swift cannot import.
        .systemLibrary(name: "CNetlink", pkgConfig: "libnl-route-3.0",
                       providers: [.apt(["libnl-3-dev", "libnl-route-3-dev"])]),
        .systemLibrary(name: "CNFTables", pkgConfig: "libnftnl",
                       providers: [.apt(["libnftnl-dev", "libmnl-dev"])]),
        .target(name: "CNetlabShims"),

        // The system layer every other module stands on: syscalls, descriptors, files, locks,
        // threads and namespaces, processes, SystemError.
        .target(name: "SystemKit", dependencies: ["CNetlabShims"]),

        // Shared Swift modules.
        .target(name: "NetTypes"),
        .target(name: "CNI", dependencies: ["NetTypes", "SystemKit"]),
        .target(name: "Netlink", dependencies: ["CNetlink", "NetTypes", "SystemKit"]),
        .target(name: "NFTables", dependencies: ["CNFTables", "NetTypes", "SystemKit"]),
        .target(name: "IPAM", dependencies: ["CNI", "NetTypes", "SystemKit"]),
        // The kernel side of overlayd: the VXLAN device and per-peer neighbour/FDB/route entries.
        .target(name: "OverlayKernel", dependencies: ["Netlink", "NFTables", "NetTypes", "SystemKit"]),

        // The overlay's formats and rules, flannel's exactly: network config, lease keys and
        // values, subnet.env, the subnet choice, and the lease-store protocol. Pure Swift; the
        // flannel plugin links it, so FoundationEssentials at most.
        .target(name: "Overlay", dependencies: ["NetTypes", "SystemKit"]),
        // The lease stores behind that protocol: an embedded SQLite file and etcd v3 over its JSON
        // gateway. Linked by overlayd and netlab only, never by a plugin.
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        .target(name: "OverlayStores", dependencies: [
            "Overlay", "CSQLite", "SystemKit",
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
        ]),

        // overlayd: the flannel-compatible daemon (leases from a store, the VTEP and its peers
        // reconciled, subnet.env, /healthz); the executable is thin.
        .target(name: "OverlayDaemon", dependencies: [
            "Overlay", "OverlayStores", "OverlayKernel", "Netlink", "NFTables", "NetTypes", "SystemKit",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
        ]),
        .executableTarget(name: "overlayd", dependencies: ["OverlayDaemon"]),

        // Plugin logic, one module per plugin; the executables are thin.
        .target(name: "PluginKit", dependencies: ["CNI", "HostLocalPlugin", "Netlink", "NFTables", "NetTypes", "SystemKit"]),
        .target(name: "LoopbackPlugin", dependencies: ["CNI", "Netlink", "PluginKit", "SystemKit"]),
        .target(name: "HostLocalPlugin", dependencies: ["CNI", "IPAM", "NetTypes"]),
        .target(name: "BridgePlugin", dependencies: ["CNI", "Netlink", "NFTables", "NetTypes", "PluginKit", "SystemKit"]),
        .target(name: "PortmapPlugin", dependencies: ["CNI", "Netlink", "NFTables", "NetTypes", "PluginKit", "SystemKit"]),
        .executableTarget(name: "loopback", dependencies: ["LoopbackPlugin"]),
        .executableTarget(name: "host-local", dependencies: ["HostLocalPlugin"]),
        .executableTarget(name: "bridge", dependencies: ["BridgePlugin"]),
        .executableTarget(name: "portmap", dependencies: ["PortmapPlugin"]),
        .target(name: "FirewallPlugin", dependencies: ["CNI", "NFTables", "NetTypes", "PluginKit", "SystemKit"]),
        .target(name: "TuningPlugin", dependencies: ["CNI", "Netlink", "NetTypes", "PluginKit", "SystemKit"]),
        .executableTarget(name: "firewall", dependencies: ["FirewallPlugin"]),
        .executableTarget(name: "tuning", dependencies: ["TuningPlugin"]),
        // Containers on the parent's segment: macvlan (own MAC) and ipvlan (the parent's MAC).
        .target(name: "MacvlanPlugin", dependencies: ["CNI", "Netlink", "NetTypes", "PluginKit"]),
        .target(name: "IpvlanPlugin", dependencies: ["CNI", "Netlink", "NetTypes", "PluginKit"]),
        .executableTarget(name: "macvlan", dependencies: ["MacvlanPlugin"]),
        .executableTarget(name: "ipvlan", dependencies: ["IpvlanPlugin"]),
        // One L2 segment across hosts: bridge's attachment on a bridge with a VXLAN device.
        .target(name: "VxlanPlugin", dependencies: ["BridgePlugin", "CNI", "Netlink", "NetTypes", "PluginKit", "SystemKit"]),
        .executableTarget(name: "vxlan", dependencies: ["VxlanPlugin"]),
        // flannel's CNI meta plugin: the host's subnet from subnet.env (Overlay's reader), the
        // work delegated to bridge + host-local. Light modules only: never OverlayStores.
        .target(name: "FlannelPlugin", dependencies: ["CNI", "Overlay", "NetTypes", "SystemKit"]),
        .executableTarget(name: "flannel", dependencies: ["FlannelPlugin"]),
        // The plugins as one multi-call executable (argv[0] picks the plugin), what
        // scripts/install.sh ships. Linked as a fixed-position executable: a static Swift
        // runtime in a PIE carries tens of thousands of relocations the loader applies at every
        // start, and a plugin starts once per container (docs/benchmarks.md).
        .executableTarget(name: "netlab-cni", dependencies: [
            "CNI", "LoopbackPlugin", "BridgePlugin", "HostLocalPlugin", "PortmapPlugin",
            "FirewallPlugin", "TuningPlugin", "MacvlanPlugin", "IpvlanPlugin", "VxlanPlugin", "FlannelPlugin",
        ], exclude: ["static-libstdc++"], linkerSettings: [.unsafeFlags(["-Xlinker", "-no-pie", "-Xclang-linker", "-static-libgcc"] + staticCxxRuntime)]),

        // The runtime and its CLI.
        .target(name: "Runtime", dependencies: ["CNI", "Netlink", "NetTypes", "CNetlabShims", "SystemKit"]),
        // `netlab demo`'s end-to-end driver: it runs the netlab executable as a person would.
        .target(name: "NetlabDemo", dependencies: ["CNI", "Netlink", "Runtime", "SystemKit"]),
        .executableTarget(name: "netlab", dependencies: [
            "NetlabDemo", "Runtime", "SystemKit", .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], linkerSettings: [.unsafeFlags(["-Xclang-linker", "-static-libgcc"] + staticCxxRuntime)]),

        // Micro benchmark of the Netlink module (veth and address churn in its own netns).
        .executableTarget(name: "netlink-bench", dependencies: ["Netlink", "NetTypes"]),
        // Micro benchmark of nftables map updates, in a private netns.
        .executableTarget(name: "nft-bench", dependencies: ["NFTables", "NetTypes", "SystemKit"]),

        // Benchmark of OverlayKernel: 1,000 peers programmed and reconciled in a private netns.
        .executableTarget(name: "overlay-bench", dependencies: ["OverlayKernel", "Netlink", "NetTypes", "SystemKit"]),

        // Benchmark driver: ADD/DEL latency of a conflist through CNIRuntime (scripts/bench-bridge.sh).
        .executableTarget(name: "cni-bench", dependencies: ["CNI", "SystemKit"]),

        // A CNI plugin used only by tests: echoes what it received.
        .executableTarget(name: "cni-echo", dependencies: ["CNI", "SystemKit"]),

        // A runtime for tests: one conflist ADD/DEL/CHECK through CNIRuntime per process.
        .executableTarget(name: "cni-run", dependencies: ["CNI", "SystemKit"]),
        // Stops for good between the write and the rename of an atomic file write; tests only.
        .executableTarget(name: "atomic-write-probe", dependencies: ["SystemKit"]),
        // Used only by tests: races create-if-absent on an embedded store from another process.
        .executableTarget(name: "lease-store-race", dependencies: ["OverlayStores", "Overlay"]),

        // Tests.
        .target(name: "TestSupport", dependencies: ["NetTypes", "SystemKit"], path: "Tests/TestSupport"),
        .testTarget(name: "SystemKitTests", dependencies: ["SystemKit", "TestSupport"]),
        .testTarget(name: "NetTypesTests", dependencies: ["NetTypes"]),
        .testTarget(name: "CNITests", dependencies: ["CNI", "SystemKit", "TestSupport"]),
        .testTarget(name: "NetlinkTests", dependencies: ["Netlink", "SystemKit", "TestSupport"]),
        .testTarget(name: "NFTablesTests", dependencies: ["NFTables", "Netlink", "SystemKit", "TestSupport"]),
        .testTarget(name: "IPAMTests", dependencies: ["IPAM", "SystemKit", "TestSupport"]),
        .testTarget(name: "PluginTests", dependencies: ["CNI", "TestSupport"]),
        // The bad-input corpus (Tests/Corpus) run against every plugin's executable.
        .testTarget(name: "CorpusTests", dependencies: ["SystemKit", "TestSupport"]),
        .testTarget(name: "NetlabTests", dependencies: ["NetlabDemo", "TestSupport"]),
        // Hundreds of containers at once through the runtime, then nothing left.
        .testTarget(name: "StressTests", dependencies: ["SystemKit", "TestSupport"]),
        // Faults: plugins killed mid-operation, a full or read-only data dir, few descriptors.
        .testTarget(name: "FaultTests", dependencies: ["CNI", "SystemKit", "TestSupport"]),
        .testTarget(name: "OverlayKernelTests", dependencies: ["OverlayKernel", "Netlink", "NFTables", "NetTypes", "SystemKit", "TestSupport"]),
        .testTarget(name: "TuningPluginTests", dependencies: ["TuningPlugin", "CNI", "Netlink", "NetTypes", "SystemKit", "TestSupport"]),
        .testTarget(name: "OverlayTests", dependencies: ["Overlay", "NetTypes", "SystemKit"]),
        // Real runtimes on the plugins alone: podman's CNI backend, a libcni client, the installer.
        .testTarget(name: "RuntimeInteropTests", dependencies: ["SystemKit", "TestSupport"], exclude: ["libcni-client"]),
        .testTarget(name: "OverlayStoresTests", dependencies: ["OverlayStores", "Overlay", "SystemKit", "TestSupport"]),
        // overlayd as a process per simulated host, on the embedded store and on a real etcd.
        .testTarget(name: "OverlayDaemonTests", dependencies: [
            "OverlayDaemon", "OverlayStores", "Overlay", "NetTypes", "SystemKit", "TestSupport",
        ]),
    ]
)
