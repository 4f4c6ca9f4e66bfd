// netlab demo: every network mode on two simulated hosts, one pass/fail row each.

import ArgumentParser
import Glibc
import NetlabDemo
import Runtime

struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show every network mode working, on simulated hosts nldemo-a and nldemo-out (removed at the end).")

    @Option(help: ArgumentHelp("State directory (default $NETLAB_RUN_DIR or /run/netlab).", valueName: "dir"))
    var runDir: String?

    @Option(help: ArgumentHelp("CNI plugin directories, ':'-separated.", valueName: "dirs"))
    var cniPath: String?

    @Flag(name: .shortAndLong, help: "Print every command and its output.")
    var verbose = false

    func run() throws {
        guard geteuid() == 0 else { throw RuntimeError.notRoot(operation: "netlab demo") }
        let args = (runDir.map { ["--run-dir", $0] } ?? []) + (cniPath.map { ["--cni-path", $0] } ?? [])
        let verbose = self.verbose
        let demo = NetlabDemo.Demo(executable: selfExecutable(), globalArgs: args) { line in
            if verbose { printError(line) }
        }
        let rows = demo.run()
        try printTable([["MODE", "TRIED", "RESULT", "DETAIL"]]
                       + rows.map { [$0.mode, $0.tried, $0.passed ? "pass" : "FAIL", $0.detail] }, gap: "  ")
        let failed = rows.filter { !$0.passed }.count
        if failed > 0 {
            printError("netlab: error: \(failed) of \(rows.count) demo rows failed (run with -v for every command)")
            throw ExitCode(1)
        }
    }
}
