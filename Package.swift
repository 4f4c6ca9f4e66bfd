// swift-tools-version:6.1
import PackageDescription

// netlab: CNI plugins, an overlay daemon and a namespace runtime for Linux.
// Plugins link only NetTypes/CNI/Netlink/NFTables/IPAM (FoundationEssentials at most);
// swift-argument-parser is used by the `netlab` CLI alone.

let package = Package(
    name: "netlab",
    products: [
        .executable(name: "loopback", targets: ["loopback"]),
        .executable(name: "bridge", targets: ["bridge"]),
        .executable(name: "host-local", targets: ["host-local"]),
        .executable(name: "portmap", targets: ["portmap"]),
        .executable(name: "netlab", targets: ["netlab"]),
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

        // Plugin logic, one module per plugin; the executables are thin.
        .target(name: "PluginKit", dependencies: ["CNI", "Netlink", "NFTables", "NetTypes", "SystemKit"]),
        .target(name: "LoopbackPlugin", dependencies: ["CNI", "Netlink", "PluginKit"]),
        .target(name: "HostLocalPlugin", dependencies: ["CNI", "IPAM", "NetTypes"]),
        .target(name: "BridgePlugin", dependencies: ["CNI", "HostLocalPlugin", "Netlink", "NFTables", "NetTypes", "PluginKit", "SystemKit"]),
        .target(name: "PortmapPlugin", dependencies: ["CNI", "Netlink", "NFTables", "NetTypes", "PluginKit", "SystemKit"]),
        .executableTarget(name: "loopback", dependencies: ["LoopbackPlugin"]),
        .executableTarget(name: "host-local", dependencies: ["HostLocalPlugin"]),
        .executableTarget(name: "bridge", dependencies: ["BridgePlugin"]),
        .executableTarget(name: "portmap", dependencies: ["PortmapPlugin"]),

        // The runtime and its CLI.
        .target(name: "Runtime", dependencies: ["CNI", "Netlink", "NetTypes", "CNetlabShims", "SystemKit"]),
        .executableTarget(name: "netlab", dependencies: [
            "Runtime", .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        // Micro benchmark of the Netlink module (veth and address churn in its own netns).
        .executableTarget(name: "netlink-bench", dependencies: ["Netlink", "NetTypes"]),
        // Micro benchmark of nftables map updates, in a private netns.
        .executableTarget(name: "nft-bench", dependencies: ["NFTables", "NetTypes", "SystemKit"]),

        // Benchmark driver: ADD/DEL latency of a conflist through CNIRuntime (scripts/bench-bridge.sh).
        .executableTarget(name: "cni-bench", dependencies: ["CNI"]),

        // A CNI plugin used only by tests: echoes what it received.
        .executableTarget(name: "cni-echo", dependencies: ["CNI", "SystemKit"]),

        // Used only by tests: races create-if-absent on an embedded store from another process.
        .executableTarget(name: "lease-store-race", dependencies: ["OverlayStores", "Overlay"]),

        // Tests.
        .target(name: "TestSupport", dependencies: ["NetTypes"], path: "Tests/TestSupport"),
        .testTarget(name: "SystemKitTests", dependencies: ["SystemKit"]),
        .testTarget(name: "NetTypesTests", dependencies: ["NetTypes"]),
        .testTarget(name: "CNITests", dependencies: ["CNI", "TestSupport"]),
        .testTarget(name: "NetlinkTests", dependencies: ["Netlink", "SystemKit", "TestSupport"]),
        .testTarget(name: "NFTablesTests", dependencies: ["NFTables", "Netlink", "SystemKit", "TestSupport"]),
        .testTarget(name: "IPAMTests", dependencies: ["IPAM", "TestSupport"]),
        .testTarget(name: "PluginTests", dependencies: ["CNI", "TestSupport"]),
        .testTarget(name: "NetlabTests", dependencies: ["TestSupport"]),
        .testTarget(name: "OverlayTests", dependencies: ["Overlay", "NetTypes", "SystemKit"]),
        .testTarget(name: "OverlayStoresTests", dependencies: ["OverlayStores", "Overlay", "SystemKit", "TestSupport"]),
    ]
)
