// host add/ls/rm: simulated hosts, each a netns on a shared underlay.

import ArgumentParser
import Glibc
import Runtime
import SystemKit

struct HostCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "host", abstract: "Manage simulated hosts (a netns each, on a shared underlay bridge).",
        subcommands: [HostAdd.self, HostList.self, HostRemove.self])
}

struct HostOptions: ParsableArguments {
    @Option(help: ArgumentHelp("State directory (default $NETLAB_RUN_DIR or /run/netlab).", valueName: "dir"))
    var runDir: String?

    @Option(help: ArgumentHelp("CNI plugin directories (used to remove a host's containers).", valueName: "dirs"))
    var cniPath: String?

    func hosts() throws -> SimulatedHosts {
        SimulatedHosts(base: try RunDirectory.resolve(runDir: runDir, host: nil, environment: Environment.current).path,
                       hint: CommandHint(globalOptions: runDir.map { ["--run-dir", $0] } ?? []))
    }
}

struct HostAdd: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "add", abstract: "Create a simulated host.")

    @OptionGroup var options: HostOptions

    @Argument var name: String

    func run() throws {
        guard Glibc.geteuid() == 0 else { throw RuntimeError.notRoot(operation: "netlab host add") }
        let h = try options.hosts().add(name)
        try printOut("\(h.name)\t\(h.netns)\t\(h.address)")
    }
}

struct HostList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ls", abstract: "List simulated hosts.")

    @OptionGroup var options: HostOptions

    func run() throws {
        let hosts = try options.hosts()
        var rows = [["NAME", "NETNS", "ADDRESS", "CONTAINERS"]]
        for h in try hosts.list() {
            let dir = RunDirectory(path: hosts.directory(h.name))
            rows.append([h.name, h.netns, h.address.description, String(try ContainerRuntime(runDirectory: dir).list(all: true).count)])
        }
        try printTable(rows)
    }
}

struct HostRemove: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rm", abstract: "Remove simulated hosts (refused while containers exist on one, unless -f).")

    @OptionGroup var options: HostOptions

    @Flag(name: .shortAndLong, help: "Remove the host's containers first.")
    var force = false

    @Argument var names: [String]

    func run() throws {
        guard Glibc.geteuid() == 0 else { throw RuntimeError.notRoot(operation: "netlab host rm") }
        let hosts = try options.hosts()
        for name in names {
            _ = try hosts.get(name)
            let global = try GlobalOptions.parse((options.runDir.map { ["--run-dir", $0] } ?? []) + ["--host", name]
                                                 + (options.cniPath.map { ["--cni-path", $0] } ?? []))
            let runtime = try global.makeRuntime()
            let existing = try runtime.list(all: true)
            if !existing.isEmpty {
                guard force else {
                    throw RuntimeError.invalidArgument(
                        "host \(name) has containers (\(existing.map(\.name).joined(separator: ", "))): remove them "
                        + "or use \(hosts.hint("host rm", "-f", name))")
                }
            }
            try runtime.removeAll()
            try hosts.remove(name)
            try printOut(name)
        }
    }
}
