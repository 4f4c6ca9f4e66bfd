// The container commands: run, start, ps, inspect, exec, logs, stop, rm.

import ArgumentParser
import Glibc
import Runtime
import SystemKit

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a command in a new container.",
        discussion: """
            The container gets its own mount, uts, ipc and pid namespaces (its command is pid 1's \
            only child), and a network namespace per --network: none (own netns, only lo), host, \
            container:NAME (share another container's netns) or a network's name. The command \
            `pause` alone runs the built-in pause init, which waits for a signal.
            """)

    @OptionGroup var global: GlobalOptions

    @Flag(name: .shortAndLong, help: "Run in the background; output goes to the container's log.")
    var detach = false

    @Flag(name: .customLong("rm"), help: "Remove the container when it exits.")
    var autoRemove = false

    @Option(help: "The container's name (default: derived from its id).")
    var name: String?

    @Option(help: "The container's hostname (default: the short id).")
    var hostname: String?

    @Option(help: "none, host, container:NAME, or a network's name.")
    var network: String = "none"

    @Option(name: [.customShort("p"), .customLong("publish")],
            help: ArgumentHelp("Publish a port: [hostIP:]hostPort:containerPort[/tcp|udp|sctp].", valueName: "mapping"))
    var publish: [String] = []

    @Option(help: "Request this IP address on the network.")
    var ip: String?

    @Option(help: "Request this MAC address on the network.")
    var mac: String?

    @Option(help: ArgumentHelp("Chroot into this root filesystem directory.", valueName: "dir"))
    var rootfs: String?

    @Option(name: [.customShort("e"), .customLong("env")], help: ArgumentHelp("Set an environment variable.", valueName: "KEY=VALUE"))
    var env: [String] = []

    @Argument(parsing: .captureForPassthrough, help: "The command and its arguments (after --).")
    var command: [String] = []

    func run() throws {
        if isHelpRequest(command) { throw CleanExit.helpRequest(self) }
        let runtime = try global.makeRuntime()
        var req = RunRequest(command: commandArguments(command))
        guard !req.command.isEmpty else { throw ValidationError("missing command (use pause for the built-in pause process)") }
        req.name = name
        req.hostname = hostname
        req.networkMode = try NetworkMode(parsing: network)
        req.ports = try publish.map(PortMapping.init(parsing:))
        if let ip { req.ip = try validatedIP(ip) }
        if let mac { req.mac = try validatedMAC(mac) }
        req.rootfs = rootfs
        req.environment = env
        req.detach = detach
        req.autoRemove = autoRemove
        switch try runtime.run(req) {
        case .started(let record):
            do {
                try startReaper(runtime, record, global)
            } catch {
                // Best effort: the reaper's failure is what is reported.
                _ = try? runtime.remove(record.name, force: true)
                throw error
            }
            try printOut(record.id)
        case .exited(let code): if code != 0 { throw ExitCode(code) }
        }
    }
}

/// Something must outlive us to release a detached container's networks when it exits (and
/// remove it, with `--rm`): `netlab __reap NAME`.
func startReaper(_ runtime: ContainerRuntime, _ record: ContainerRecord, _ global: GlobalOptions) throws {
    guard runtime.needsReaper(record) else { return }
    try runtime.startReaper([selfExecutable(), "__reap"] + global.arguments + [record.name])
}

struct Start: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Start stopped containers again (detached, attached to their network anew).",
        discussion: """
            A stopped container holds no address, veth or published port (they are released when \
            it stops). start runs its command again in a new network namespace, attached to its \
            network with the same -p, --ip and --mac; its output is appended to its log.
            """)

    @OptionGroup var global: GlobalOptions

    @Argument(help: "Container names or id prefixes.")
    var containers: [String]

    func run() throws {
        let runtime = try global.makeRuntime()
        for c in containers {
            let before = try runtime.container(c)
            let record = try runtime.start(c)
            if before.status != .running {
                do {
                    try startReaper(runtime, record, global)
                } catch {
                    // Best effort: the reaper's failure is what is reported.
                    _ = try? runtime.stop(record.name, timeout: 0)
                    throw error
                }
            }
            try printOut(record.name)
        }
    }
}

struct PS: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ps", abstract: "List containers.")

    @OptionGroup var global: GlobalOptions

    @Flag(name: .shortAndLong, help: "Show exited containers too.")
    var all = false

    @Option(help: "table or json.")
    var format: String = "table"

    func run() throws {
        let list = try global.makeRuntime().list(all: all)
        if format == "json" { try printOut(try ContainerRecord.json(list)); return }
        guard format == "table" else { throw ValidationError("--format must be table or json") }
        var rows = [["CONTAINER ID", "NAME", "STATUS", "PID", "NETWORK", "PORTS", "COMMAND"]]
        for r in list {
            let status = r.status == .exited ? "exited (\(r.exitCode ?? -1))" : r.status.rawValue
            // A stopped container's ports are released: shown again once it runs (Docker's way).
            let ports = r.status == .running ? r.ports.map(\.description).joined(separator: ",") : ""
            rows.append([r.shortID, r.name, status, r.status == .running ? r.pid.map(String.init) ?? "-" : "-",
                         r.networkMode.description, ports,
                         r.command.isEmpty ? "pause" : r.command.joined(separator: " ")])
        }
        try printTable(rows)
    }
}

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show a container's record as JSON.")

    @OptionGroup var global: GlobalOptions

    @Argument(help: "Container name or id prefix.")
    var container: String

    func run() throws {
        try printOut(try ContainerRecord.json(try global.makeRuntime().container(container)))
    }
}

struct Exec: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a command inside a running container's namespaces.")

    @OptionGroup var global: GlobalOptions

    @Flag(name: .shortAndLong, help: "Keep stdin attached.")
    var interactive = false

    @Option(name: [.customShort("e"), .customLong("env")], help: ArgumentHelp("Set an environment variable.", valueName: "KEY=VALUE"))
    var env: [String] = []

    @Argument(help: "Container name or id prefix.")
    var container: String

    @Argument(parsing: .captureForPassthrough, help: "The command and its arguments (after --).")
    var command: [String] = []

    func run() throws {
        if container == "-h" || container == "--help" || isHelpRequest(command) { throw CleanExit.helpRequest(self) }
        let code = try global.makeRuntime().exec(container, command: commandArguments(command), environment: env,
                                                 interactive: interactive)
        if code != 0 { throw ExitCode(code) }
    }
}

struct Logs: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print a detached container's output.")

    @OptionGroup var global: GlobalOptions

    @Argument(help: "Container name or id prefix.")
    var container: String

    func run() throws {
        let bytes = try global.makeRuntime().logs(container)
        try FileDescriptor.standardOutput.writeAll(bytes, context: "stdout")
    }
}

struct Stop: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Stop containers: SIGTERM, then SIGKILL after a timeout; their networks are released.")

    @OptionGroup var global: GlobalOptions

    @Option(name: [.customShort("t"), .customLong("time")], help: "Seconds to wait before SIGKILL.")
    var time: Double = 10

    @Argument(help: "Container names or id prefixes.")
    var containers: [String]

    func run() throws {
        let runtime = try global.makeRuntime()
        for c in containers {
            let (record, sharers) = try runtime.stop(c, timeout: time)
            warnLostNetwork(sharers, owner: record.name)
            try printOut(record.name)
        }
    }
}

struct Remove: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rm", abstract: "Remove containers, their network attachments and their state.")

    @OptionGroup var global: GlobalOptions

    @Flag(name: .shortAndLong, help: "Kill running containers first; remove one whose netns others share.")
    var force = false

    @Argument(help: "Container names or id prefixes.")
    var containers: [String]

    func run() throws {
        let runtime = try global.makeRuntime()
        for c in containers {
            let sharers = try runtime.remove(c, force: force)
            warnLostNetwork(sharers, owner: c)
            try printOut(c)
        }
    }
}

func validatedIP(_ text: String) throws -> String {
    guard ipIsValid(text) else { throw RuntimeError.invalidArgument("invalid --ip \"\(text)\"") }
    return text
}

func validatedMAC(_ text: String) throws -> String {
    guard macIsValid(text) else { throw RuntimeError.invalidArgument("invalid --mac \"\(text)\"") }
    return text
}

/// Hidden: waits for a detached container to exit, then releases its networks (or removes it,
/// with `--rm`).
struct Reap: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "__reap", shouldDisplay: false)

    @OptionGroup var global: GlobalOptions

    @Argument var container: String

    func run() throws {
        try global.makeRuntime().superviseUntilExit(container)
    }
}

/// The running netlab binary, for re-executing itself.
func selfExecutable() -> String {
    var buf = [CChar](repeating: 0, count: 4096)
    let n = readlink("/proc/self/exe", &buf, buf.count - 1)
    guard n > 0 else { return CommandLine.arguments[0] }
    return String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
