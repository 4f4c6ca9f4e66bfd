// The overlay side of the CLI: where overlayd is found, and the hidden helper that starts it
// inside a simulated host's netns.

import ArgumentParser
import Runtime
import SystemKit

/// The overlay networks of the run directory `runDir` names, with `overlayd` found beside the
/// CNI plugins (`--cni-path`, else netlab's own directory, …).
func overlayNetworks(runDir: String?, cniPath: String?) throws -> OverlayNetworks {
    let env = Environment.current
    let base = try RunDirectory.resolve(runDir: runDir, host: nil, environment: env).path
    let hosts = SimulatedHosts(base: base, hint: CommandHint(globalOptions: runDir.map { ["--run-dir", $0] } ?? []))
    let dirs = CNINetworkAttacher.pluginDirectories(option: cniPath, environment: env, executable: selfExecutable())
    let overlayd = dirs.map { $0 + "/overlayd" }.first(where: Files.isExecutableFile) ?? "overlayd"
    return OverlayNetworks(hosts: hosts, overlayd: overlayd, netnsExec: [selfExecutable(), "__netns-exec"])
}

extension GlobalOptions {
    func overlayNetworks() throws -> OverlayNetworks { try netlab.overlayNetworks(runDir: runDir, cniPath: cniPath) }
}

extension HostOptions {
    func overlayNetworks() throws -> OverlayNetworks { try netlab.overlayNetworks(runDir: runDir, cniPath: cniPath) }
}

/// Hidden: enters the network namespace at NETNS and execs PROGRAM there with its output
/// appended to LOG (how netlab starts an overlayd per simulated host).
struct NetnsExec: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "__netns-exec", shouldDisplay: false)

    @Argument var netns: String
    @Argument var log: String
    @Argument(parsing: .captureForPassthrough) var command: [String]

    func run() throws {
        let argv = commandArguments(command)
        guard let program = argv.first else { throw RuntimeError.invalidArgument("__netns-exec: no program") }
        try Namespaces.run(inNetworkNamespaceAt: netns) { () throws -> Void in
            try Subprocess.replaceProcess(program, arguments: Array(argv.dropFirst()), environment: Environment.current,
                                          logPath: log)
        }
    }
}
