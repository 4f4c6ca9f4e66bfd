// Running commands from tests: the result of one run, and the checked forms that turn a
// failed setup command or a failed state read into an error naming the command and its
// stderr, so a broken `ip` or `nft` can never read as "nothing there".

import Foundation

public struct CommandResult: Sendable, CustomStringConvertible {
    /// The argv that ran.
    public var command: [String] = []
    public var status: Int32
    public var stdout: String
    public var stderr: String
    public var ok: Bool { status == 0 }

    /// stdout parsed as JSON (object or array), nil when it is not JSON.
    public var json: Any? {
        guard let d = stdout.data(using: .utf8), !d.isEmpty else { return nil }
        return try? JSONSerialization.jsonObject(with: d)  // not JSON: nil is the answer asked for
    }
    public var jsonObject: [String: Any]? { json as? [String: Any] }
    public var jsonArray: [[String: Any]]? { json as? [[String: Any]] }

    public init(command: [String], status: Int32, stdout: String, stderr: String) {
        self.command = command; self.status = status; self.stdout = stdout; self.stderr = stderr
    }

    public var description: String { "exit \(status)\nstdout: \(stdout)\nstderr: \(stderr)" }

    /// The command as a shell would show it.
    public var commandLine: String { command.joined(separator: " ") }

    /// This result, or a `CommandFailure` when the command did not exit 0.
    @discardableResult
    public func checked() throws(CommandFailure) -> CommandResult {
        guard ok else { throw CommandFailure(self, "exited with status \(status)") }
        return self
    }

    /// stdout as a JSON array; throws when the command failed or printed something else.
    public func checkedJSONArray() throws(CommandFailure) -> [[String: Any]] {
        guard let array = try checked().jsonArray else { throw CommandFailure(self, "printed no JSON array") }
        return array
    }

    /// stdout as a JSON object; throws when the command failed or printed something else.
    public func checkedJSONObject() throws(CommandFailure) -> [String: Any] {
        guard let object = try checked().jsonObject else { throw CommandFailure(self, "printed no JSON object") }
        return object
    }
}

/// A command a test depends on (setup, or reading state back) failed or printed something
/// that is not what it was asked for.
public struct CommandFailure: Error, CustomStringConvertible {
    public var result: CommandResult
    public var problem: String

    public init(_ result: CommandResult, _ problem: String) {
        self.result = result
        self.problem = problem
    }

    public var description: String {
        "`\(result.commandLine)` \(problem)\nstdout: \(result.stdout.prefix(2000))\nstderr: \(result.stderr)"
    }
}

/// Runs an executable and waits for it, capturing its output. A name without a slash is
/// looked up on PATH (then in the usual system directories).
@discardableResult
public func runCommand(_ argv: [String], environment: [String: String]? = nil, stdin: String? = nil,
                       timeout: Double = 120) -> CommandResult {
    let p = Process()
    let exe = argv[0].contains("/") ? argv[0] : (findExecutable(argv[0]) ?? argv[0])
    p.executableURL = URL(fileURLWithPath: exe)
    p.arguments = Array(argv.dropFirst())
    if let environment { p.environment = environment }
    let outPipe = Pipe(), errPipe = Pipe(), inPipe = Pipe()
    p.standardOutput = outPipe
    p.standardError = errPipe
    p.standardInput = inPipe
    do { try p.run() } catch {
        return CommandResult(command: argv, status: 127, stdout: "", stderr: "cannot run \(exe): \(error)")
    }
    // Read both pipes concurrently so a chatty child never blocks on a full pipe.
    let group = DispatchGroup()
    nonisolated(unsafe) var outData = Data(), errData = Data()
    group.enter()
    DispatchQueue.global().async { outData = outPipe.fileHandleForReading.readDataToEndOfFile(); group.leave() }
    group.enter()
    DispatchQueue.global().async { errData = errPipe.fileHandleForReading.readDataToEndOfFile(); group.leave() }
    if let stdin { inPipe.fileHandleForWriting.write(stdin.data(using: .utf8)!) }
    // A child that exits without reading its stdin has closed the pipe already.
    try? inPipe.fileHandleForWriting.close()
    let deadline = Date().addingTimeInterval(timeout)
    while p.isRunning && Date() < deadline { usleep(2000) }
    var timedOut = ""
    if p.isRunning {
        kill(p.processIdentifier, SIGKILL)
        timedOut = "\n(killed after a timeout of \(timeout) s)"
    }
    p.waitUntilExit()
    group.wait()
    return CommandResult(command: argv, status: p.terminationStatus,
                         stdout: String(decoding: outData, as: UTF8.self),
                         stderr: String(decoding: errData, as: UTF8.self) + timedOut)
}

/// Runs a command the test cannot go on without (setup, or a read of state it asserts on);
/// throws a `CommandFailure` naming the command and its stderr unless it exits 0.
@discardableResult
public func runChecked(_ argv: [String], environment: [String: String]? = nil, stdin: String? = nil,
                       timeout: Double = 120) throws(CommandFailure) -> CommandResult {
    try runCommand(argv, environment: environment, stdin: stdin, timeout: timeout).checked()
}

/// Runs `/bin/sh -c script`.
@discardableResult
public func sh(_ script: String) -> CommandResult { runCommand(["/bin/sh", "-c", script]) }

/// The executable `name` on PATH, else in the usual system directories.
public func findExecutable(_ name: String) -> String? {
    let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
    let dirs = path.split(separator: ":").map(String.init)
        + ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]
    for dir in dirs where !dir.isEmpty {
        let candidate = dir + "/" + name
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
    }
    return nil
}

/// Where the package's built executables are: `$NETLAB_BIN_DIR`, or the directory of the
/// running test bundle (`.build/debug`), which `swift test` fills with every product.
public enum BuiltProducts {
    public static var directory: String {
        if let d = ProcessInfo.processInfo.environment["NETLAB_BIN_DIR"], !d.isEmpty { return d }
        // Without /proc/self/exe, argv[0] names the bundle as well.
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var url = URL(fileURLWithPath: exe).deletingLastPathComponent()
        // On Linux the bundle is `.build/debug/<pkg>PackageTests.xctest` (a file); be tolerant
        // of layouts where it is a directory.
        while !FileManager.default.fileExists(atPath: url.appendingPathComponent("loopback").path),
              url.path != "/" {
            url.deleteLastPathComponent()
        }
        return url.path
    }
    public static func path(_ name: String) -> String { directory + "/" + name }
}
