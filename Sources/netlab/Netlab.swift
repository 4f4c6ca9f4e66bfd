// netlab: run processes as containers in their own namespaces and wire their networks.
// The commands are thin: the work happens in the Runtime module.

import ArgumentParser
import Glibc
import Runtime
import SystemKit

@main
struct Netlab: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "netlab",
        abstract: "Run processes as containers in their own namespaces and wire their networks.",
        subcommands: [Run.self, Start.self, PS.self, Inspect.self, Exec.self, Logs.self, Stop.self, Remove.self,
                      NetworkCommand.self, Check.self, GC.self, Status.self, HostCommand.self, Demo.self, Reap.self])

    /// Errors from the runtime and the system are one line a person can act on; everything
    /// else (usage errors, exit codes) is ArgumentParser's.
    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch let error as RuntimeError {
            fail(error)
        } catch let error as SystemError {
            fail(error)
        } catch {
            exit(withError: error)
        }
    }

    static func fail(_ error: any Error) -> Never {
        printError("netlab: error: \(error)")
        Glibc.exit(1)
    }
}

/// Options every command takes: where the state lives and which (simulated) host is meant.
struct GlobalOptions: ParsableArguments {
    @Option(help: ArgumentHelp("State directory (default $NETLAB_RUN_DIR or /run/netlab).", valueName: "dir"))
    var runDir: String?

    @Option(help: ArgumentHelp("Work on a simulated host: its state lives in <run-dir>/hosts/<host>.", valueName: "host"))
    var host: String?

    @Option(help: ArgumentHelp("CNI plugin directories, ':'-separated (default $NETLAB_CNI_PATH, else netlab's own directory, /opt/cni/bin, /usr/libexec/cni).", valueName: "dirs"))
    var cniPath: String?

    /// These options as arguments again (for re-executing netlab).
    var arguments: [String] {
        (runDir.map { ["--run-dir", $0] } ?? []) + (host.map { ["--host", $0] } ?? []) + (cniPath.map { ["--cni-path", $0] } ?? [])
    }

    /// The base run directory (not a host's).
    func baseDirectory() throws -> RunDirectory {
        try RunDirectory.resolve(runDir: runDir, host: nil, environment: Environment.current)
    }

    /// The runtime for these options. Networking and simulated hosts plug in here: set
    /// `runtime.attacher` (CNI) and `runtime.hostNetnsPath` (the simulated host's netns).
    func makeRuntime() throws -> ContainerRuntime {
        let env = Environment.current
        let dir = try RunDirectory.resolve(runDir: runDir, host: host, environment: env)
        var hostNetns: String?
        if let host { hostNetns = try SimulatedHosts(base: try baseDirectory().path, hint: hint.withoutHost).get(host).netnsPath }
        let dirs = CNINetworkAttacher.pluginDirectories(option: cniPath, environment: env, executable: selfExecutable())
        let attacher = CNINetworkAttacher(networks: NetworkStore(hostDirectory: dir.path, hint: hint), pluginDirectories: dirs,
                                          hostNetnsPath: hostNetns)
        return ContainerRuntime(runDirectory: dir, attacher: attacher, hostNetnsPath: hostNetns, hostName: host, hint: hint)
    }

    /// Suggested commands repeat the options the user gave, so they act on the same host.
    var hint: CommandHint { CommandHint(globalOptions: arguments) }
}

/// Drops the `--` that separates netlab's options from the command.
func commandArguments(_ args: [String]) -> [String] {
    args.first == "--" ? Array(args.dropFirst()) : args
}

/// One line on stdout. A failed write (stdout closed) is an error: the output is the result.
func printOut(_ s: String) throws {
    try FileDescriptor.standardOutput.writeAll((s + "\n").utf8, context: "stdout")
}

/// `netlab: warning: …` on stderr for each container that lost its network because the one
/// whose netns it shared was stopped or removed.
func warnLostNetwork(_ sharers: [ContainerRecord], owner: String) {
    for s in sharers {
        printError("netlab: warning: \(s.name) lost its network: it shared \(owner)'s network namespace (--network container:\(owner))")
    }
}

/// One line on stderr, where a failed write has nowhere left to be reported.
func printError(_ s: String) {
    _ = try? FileDescriptor.standardError.writeAll((s + "\n").utf8, context: "stderr")
}

/// `netlab run --help`: the passthrough command captured the help flag.
func isHelpRequest(_ args: [String]) -> Bool {
    args.first == "-h" || args.first == "--help"
}
