// network create/ls/inspect/rm, check, gc, status: thin over Runtime.

import ArgumentParser
import CNI
import Runtime

struct NetworkCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "network", abstract: "Manage networks (CNI configuration lists).",
        subcommands: [NetworkCreate.self, NetworkList.self, NetworkInspect.self, NetworkRemove.self])
}

struct NetworkCreate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create",
        abstract: "Create a network: bridge (bridge + host-local + portmap on one host) or overlay (overlayd on every simulated host, flannel + portmap).")

    @OptionGroup var global: GlobalOptions

    @Option(help: "Network driver: bridge, or overlay (spans every simulated host).")
    var driver = "bridge"

    @Option(help: ArgumentHelp("Subnet in CIDR form (repeatable; default: a free 10.89.N.0/24).", valueName: "CIDR"))
    var subnet: [String] = []

    @Option(help: "Gateway address (default: the subnet's first address).")
    var gateway: String?

    @Flag(help: "Add an IPv6 subnet (a free fd89:0:0:N::/64 unless one is given).")
    var ipv6 = false

    @Option(help: ArgumentHelp("With --driver overlay: etcd endpoints for the leases (default: an embedded store under the run directory).", valueName: "urls"))
    var etcdEndpoints: String?

    @Argument(help: "The network's name.")
    var name: String

    func run() throws {
        if driver == "overlay" { return try createOverlay() }
        if etcdEndpoints != nil {
            throw RuntimeError.invalidArgument("--etcd-endpoints only applies to --driver overlay (a \(driver) network keeps no leases)")
        }
        let runtime = try global.makeRuntime()
        guard let cni = runtime.cni else { throw RuntimeError.invalidArgument("no network backend") }
        let list = try cni.networks.create(name: name, subnets: subnet, gateway: gateway, ipv6: ipv6, driver: driver)
        try printOut(list.name)
    }

    func createOverlay() throws {
        if gateway != nil {
            throw RuntimeError.invalidArgument("--gateway cannot be used with --driver overlay: each host's daemon leases its own subnet, and the gateway is that subnet's first address on each host")
        }
        if ipv6 { throw RuntimeError.invalidArgument("--ipv6 is not supported with --driver overlay yet") }
        if subnet.count > 1 { throw RuntimeError.invalidArgument("--driver overlay takes one --subnet (the cluster network)") }
        let network = try global.overlayNetworks().create(name: name, subnet: subnet.first, etcdEndpoints: etcdEndpoints)
        try printOut(network.name)
    }
}

struct NetworkList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ls", abstract: "List networks.")

    @OptionGroup var global: GlobalOptions

    func run() throws {
        let runtime = try global.makeRuntime()
        guard let cni = runtime.cni else { return }
        let overlays = try global.overlayNetworks()
        var rows = [["NAME", "DRIVER", "BRIDGE", "SUBNETS", "CONTAINERS"]]
        for list in try cni.networks.list() {
            var driver = "bridge", bridge = NetworkStore.bridgeName(of: list) ?? "-"
            var subnets = NetworkStore.subnets(of: list).map(\.description).joined(separator: ",")
            if let o = try overlays.get(list.name) {
                driver = "overlay"
                bridge = NetworkStore.deriveBridgeName(o.name)
                let leased = try global.host.flatMap { try overlays.leasedSubnet($0, o.name) }
                subnets = leased.map { "\($0) of \(o.subnet)" } ?? o.subnet.description
            }
            rows.append([list.name, driver, bridge, subnets, String(try runtime.containers(onNetwork: list.name).count)])
        }
        try printTable(rows)
    }
}

struct NetworkInspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect", abstract: "Show a network's conflist and the containers attached to it.")

    @OptionGroup var global: GlobalOptions

    @Argument var name: String

    func run() throws {
        let overlays = try global.overlayNetworks()
        guard let o = try overlays.get(name) else { return try printOut(try global.makeRuntime().inspectNetwork(name)) }
        // An overlay network's conflist lives on the hosts: without --host, the first host's.
        var options = global
        if options.host == nil { options.host = try overlays.hosts.list().first?.name }
        let runtime = try options.makeRuntime()
        var leases: [String: JSONValue] = [:]
        for h in try overlays.hosts.list() {
            leases[h.name] = try overlays.leasedSubnet(h.name, name).map { .string($0.description) } ?? .null
        }
        let overlay: JSONValue = ["subnet": .string(o.subnet.description), "vni": .number(Double(o.vni)),
                                  "store": .string(o.etcdEndpoints.map { "etcd " + $0 } ?? "embedded"),
                                  "leases": .object(leases)]
        try printOut(try runtime.inspectNetwork(name, driver: "overlay", overlay: overlay))
    }
}

struct NetworkRemove: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rm", abstract: "Remove networks no container uses.")

    @OptionGroup var global: GlobalOptions

    @Argument var names: [String]

    func run() throws {
        let runtime = try global.makeRuntime()
        let overlays = try global.overlayNetworks()
        for n in names {
            if try overlays.get(n) != nil {
                try removeOverlay(n, overlays)
                try printOut(n)
                continue
            }
            try runtime.removeNetwork(n)
            try printOut(n)
        }
    }
}

extension NetworkRemove {
    /// An overlay network spans every simulated host: refused while a container of any host uses it.
    func removeOverlay(_ name: String, _ overlays: OverlayNetworks) throws {
        var users: [(host: String, containers: [String])] = []
        for h in try overlays.hosts.list() {
            let names = try ContainerRuntime(runDirectory: RunDirectory(path: overlays.hosts.directory(h.name)))
                .containers(onNetwork: name).map(\.name)
            if !names.isEmpty { users.append((h.name, names)) }
        }
        try overlays.remove(name, hostsWithContainers: users)
    }
}

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "CNI CHECK of every running container's network attachments (or one container's).")

    @OptionGroup var global: GlobalOptions

    @Argument(help: "A container (default: all running).")
    var container: String?

    func run() throws {
        let results = try global.makeRuntime().check(container)
        var failed = 0
        for (c, problem) in results {
            try printOut("\(c.name)\t\(c.networkMode)\t\(problem.map { "FAIL: " + $0 } ?? "ok")")
            if problem != nil { failed += 1 }
        }
        if failed > 0 { throw RuntimeError.invalidArgument("\(failed) container(s) failed CHECK") }
    }
}

struct GC: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gc",
        abstract: "Remove containers that are not running and CNI-GC every network (what a crash left behind).")

    @OptionGroup var global: GlobalOptions

    func run() throws {
        for name in try global.makeRuntime().gc() { try printOut("removed \(name)") }
    }
}

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "CNI STATUS of every network.")

    @OptionGroup var global: GlobalOptions

    func run() throws {
        let runtime = try global.makeRuntime()
        guard let cni = runtime.cni else { return }
        var notReady = 0
        for list in try cni.networks.list() {
            let problem = cni.status(list)
            try printOut("\(list.name)\t\(problem.map { "not ready: " + $0 } ?? "ready")")
            if problem != nil { notReady += 1 }
        }
        if notReady > 0 { throw RuntimeError.invalidArgument("\(notReady) network(s) not ready") }
    }
}
