// Drives the built `netlab` executable with a private run directory per test, and removes
// every container it made (processes, netns bind mounts, state) when the test ends.

import Foundation
import TestSupport
import XCTest

final class NetlabHarness: @unchecked Sendable {
    let world = TestWorld()
    let runDir: String
    let exe = BuiltProducts.path("netlab")

    init(_ test: XCTestCase) {
        runDir = world.tempDirectory("run")
        test.addTeardownBlock { [self] in cleanup() }
    }

    /// `netlab SUBCOMMAND --run-dir DIR ARGS…`
    @discardableResult
    func netlab(_ subcommand: String, _ args: [String], stdin: String? = nil, timeout: Double = 60) -> CommandResult {
        runCommand([exe, subcommand, "--run-dir", runDir] + args, stdin: stdin, timeout: timeout)
    }

    /// Starts `netlab run` without waiting for it (for signal tests).
    func startForeground(_ args: [String]) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = ["run", "--run-dir", runDir] + args
        p.standardInput = FileHandle.nullDevice
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        return p
    }

    func inspect(_ name: String) -> [String: Any]? { netlab("inspect", [name]).jsonObject }

    /// Polls until the container's record says running (the runtime writes it just before the
    /// command is let go). Returns its record.
    func waitRunning(_ name: String, seconds: Double = 30) -> [String: Any]? {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if let r = inspect(name), r["status"] as? String == "running" { return r }
            usleep(20_000)
        }
        return nil
    }

    func containerDir(_ name: String) -> String { runDir + "/containers/" + name }

    func cleanup() {
        let all = netlab("ps", ["-a", "--format", "json"]).jsonArray ?? []
        let names = all.compactMap { $0["name"] as? String }
        if !names.isEmpty { netlab("rm", ["-f"] + names) }
        // Whatever a failed test left half made: unmount before the directory goes. (No
        // containers directory: nothing was made.)
        for name in (try? FileManager.default.contentsOfDirectory(atPath: runDir + "/containers")) ?? [] {
            umount2(containerDir(name) + "/netns", Int32(MNT_DETACH))
        }
        world.cleanup()
    }
}

/// Whether `path` is a mount point in this process's mount namespace.
func isMountPoint(_ path: String) -> Bool {
    // Device of the path vs its directory: a bind-mounted netns file lives on nsfs. (Scanning
    // /proc/self/mountinfo can miss a line while other processes mount and unmount.)
    var st = stat(), parent = stat()
    guard lstat(path, &st) == 0, stat((path as NSString).deletingLastPathComponent, &parent) == 0 else { return false }
    return st.st_dev != parent.st_dev
}

/// Whether `pid` is a live (non-zombie) process.
func processIsAlive(_ pid: Int32) -> Bool {
    // /proc/PID/stat is readable (by root) for every process there is: unreadable means gone.
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
          let close = stat.lastIndex(of: ")") else { return false }
    let state = stat[stat.index(close, offsetBy: 2)]
    return state != "Z" && state != "X"
}

/// The pids of live processes whose argv (after argv[0]) starts with `arguments`.
func processes(withArguments arguments: [String]) -> [Int32] {
    let pids = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
    return pids.compactMap(Int32.init).filter { pid in
        // A process that exits meanwhile has no cmdline left: it is not one of them.
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
        let argv = data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
        return Array(argv.dropFirst().prefix(arguments.count)) == arguments
    }
}

/// Field 6 of /proc/PID/stat: the process's session id (nil when it is gone).
func sessionID(of pid: Int32) -> Int32? {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
          let close = stat.lastIndex(of: ")") else { return nil }
    let fields = stat[stat.index(after: close)...].split(separator: " ")
    // fields[0] is field 3 (state): the session is field 6.
    return fields.count > 3 ? Int32(fields[3]) : nil
}

/// A harness helper that could not read what it was asked for.
struct HarnessError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

func trimmed(_ s: String) -> String { s.trimmingCharacters(in: .whitespacesAndNewlines) }

/// The inode a namespace file (or a bind mount of one) refers to.
func inode(_ path: String) -> UInt64? {
    var st = stat()
    guard stat(path, &st) == 0 else { return nil }
    return UInt64(st.st_ino)
}
