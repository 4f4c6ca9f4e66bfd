// network create/ls/inspect/rm, check, gc, status: thin over Runtime.

import ArgumentParser
import Runtime

struct NetworkCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "network", abstract: "Manage networks (CNI configuration lists).",
        subcommands: [NetworkCreate.self, NetworkList.self, NetworkInspect.self, NetworkRemove.self])
}

struct NetworkCreate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create", abstract: "Create a bridge network: bridge + host-local + portmap.")

    @OptionGroup var global: GlobalOptions

    @Option(help: "Network driver (bridge).")
    var driver = "bridge"

    @Option(help: ArgumentHelp("Subnet in CIDR form (repeatable; default: a free 10.89.N.0/24).", valueName: "CIDR"))
    var subnet: [String] = []

    @Option(help: "Gateway address (default: the subnet's first address).")
    var gateway: String?

    @Flag(help: "Add an IPv6 subnet (a free fd89:0:0:N::/64 unless one is given).")
    var ipv6 = false

    @Argument(help: "The network's name.")
    var name: String

    func run() throws {
        let runtime = try global.makeRuntime()
        guard let cni = runtime.cni else { throw RuntimeError.invalidArgument("no network backend") }
        let list = try cni.networks.create(name: name, subnets: subnet, gateway: gateway, ipv6: ipv6, driver: driver)
        try printOut(list.name)
    }
}

struct NetworkList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ls", abstract: "List networks.")

    @OptionGroup var global: GlobalOptions

    func run() throws {
        let runtime = try global.makeRuntime()
        guard let cni = runtime.cni else { return }
        var rows = [["NAME", "BRIDGE", "SUBNETS", "CONTAINERS"]]
        for list in try cni.networks.list() {
            rows.append([list.name, NetworkStore.bridgeName(of: list) ?? "-",
                         NetworkStore.subnets(of: list).map(\.description).joined(separator: ","),
                         String(try runtime.containers(onNetwork: list.name).count)])
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
        let runtime = try global.makeRuntime()
        try printOut(try runtime.inspectNetwork(name))
    }
}

struct NetworkRemove: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rm", abstract: "Remove networks no container uses.")

    @OptionGroup var global: GlobalOptions

    @Argument var names: [String]

    func run() throws {
        let runtime = try global.makeRuntime()
        for n in names {
            try runtime.removeNetwork(n)
            try printOut(n)
        }
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
