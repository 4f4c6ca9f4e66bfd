// Running a plugin executable: find it on a search path, posix_spawn it with an environment
// and the config on stdin, collect stdout/stderr, and turn its exit into a result or a
// CNIError. Used by delegation (plugin side) and by CNIRuntime (runtime side).

#if canImport(Glibc)
import Glibc
#endif

/// What a plugin process left behind.
public struct PluginOutput: Sendable {
    public var status: Int32
    public var stdout: [UInt8]
    public var stderr: [UInt8]
}

public enum PluginExec {
    /// The first `dir/name` that is an executable file. `name` may not contain "/".
    public static func find(_ name: String, in directories: [String]) throws(CNIError) -> String {
        guard !name.isEmpty, !name.contains("/"), name != ".", name != ".." else {
            throw CNIError.invalidConfig("invalid plugin type \"\(name)\"")
        }
        for d in directories where !d.isEmpty {
            let p = d.hasSuffix("/") ? d + name : d + "/" + name
            if FileIO.isExecutableFile(p) { return p }
        }
        throw CNIError(code: .internal, msg: "failed to find plugin \"\(name)\" in path [\(directories.joined(separator: " "))]")
    }

    /// Runs `path` with exactly `environment` and `stdin`, waits for it.
    public static func run(_ path: String, environment: [String: String], stdin: [UInt8]) throws(CNIError) -> PluginOutput {
        var inPipe: [Int32] = [-1, -1], outPipe: [Int32] = [-1, -1], errPipe: [Int32] = [-1, -1]
        guard cloexecPipe(&inPipe) == 0 else { throw CNIError.ioFailure("pipe", "stdin of \(path)", errno: errno) }
        guard cloexecPipe(&outPipe) == 0 else {
            let e = errno; close(inPipe[0]); close(inPipe[1])
            throw CNIError.ioFailure("pipe", "stdout of \(path)", errno: e)
        }
        guard cloexecPipe(&errPipe) == 0 else {
            let e = errno; inPipe.forEach { close($0) }; outPipe.forEach { close($0) }
            throw CNIError.ioFailure("pipe", "stderr of \(path)", errno: e)
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, inPipe[0], 0)
        posix_spawn_file_actions_adddup2(&actions, outPipe[1], 1)
        posix_spawn_file_actions_adddup2(&actions, errPipe[1], 2)

        let argv: [UnsafeMutablePointer<CChar>?] = [strdup(path), nil]
        let envp: [UnsafeMutablePointer<CChar>?] = environment.sorted { $0.key < $1.key }.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { argv.forEach { free($0) }; envp.forEach { free($0) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, path, &actions, nil, argv, envp)
        close(inPipe[0]); close(outPipe[1]); close(errPipe[1])
        guard rc == 0 else {
            close(inPipe[1]); close(outPipe[0]); close(errPipe[0])
            throw CNIError.ioFailure("posix_spawn", path, errno: rc)
        }
        let (out, err) = pump(stdin: stdin, inFD: inPipe[1], outFD: outPipe[0], errFD: errPipe[0])
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            if errno != EINTR { throw CNIError.ioFailure("waitpid", path, errno: errno) }
        }
        // WIFEXITED / WEXITSTATUS, spelled out (they are macros).
        let code: Int32 = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return PluginOutput(status: code, stdout: out, stderr: err)
    }

    private static func ignoreSIGPIPE() {
        var current = sigaction()
        guard sigaction(SIGPIPE, nil, &current) == 0 else { return }
        // Only replace the default action; leave a handler someone installed alone.
        if current.__sigaction_handler.sa_handler == nil {
            _ = signal(SIGPIPE, SIG_IGN)
        }
    }

    private static func cloexecPipe(_ fds: inout [Int32]) -> Int32 {
        guard pipe(&fds) == 0 else { return -1 }
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        return 0
    }

    /// Feeds stdin and drains stdout/stderr together, so a child that writes before it has
    /// read all its input never deadlocks against us.
    private static func pump(stdin: [UInt8], inFD: Int32, outFD: Int32, errFD: Int32) -> ([UInt8], [UInt8]) {
        var out: [UInt8] = [], err: [UInt8] = []
        var written = 0
        var inOpen = true, outOpen = true, errOpen = true
        if stdin.isEmpty { close(inFD); inOpen = false }
        _ = fcntl(inFD, F_SETFL, fcntl(inFD, F_GETFL) | O_NONBLOCK)
        var buf = [UInt8](repeating: 0, count: 65536)
        // A child that exits before reading its stdin must give us EPIPE, not kill us with
        // SIGPIPE. The disposition is process-wide, so it is set once and never restored
        // (restoring would race with another thread writing to its own child).
        ignoreSIGPIPE()
        while inOpen || outOpen || errOpen {
            var fds: [pollfd] = []
            if inOpen { fds.append(pollfd(fd: inFD, events: Int16(POLLOUT), revents: 0)) }
            if outOpen { fds.append(pollfd(fd: outFD, events: Int16(POLLIN), revents: 0)) }
            if errOpen { fds.append(pollfd(fd: errFD, events: Int16(POLLIN), revents: 0)) }
            let n = poll(&fds, nfds_t(fds.count), -1)
            if n < 0 { if errno == EINTR { continue } else { break } }
            for f in fds where f.revents != 0 {
                if f.fd == inFD {
                    let w = stdin.withUnsafeBytes { Glibc.write(inFD, $0.baseAddress! + written, $0.count - written) }
                    if w > 0 { written += w }
                    if (w < 0 && errno != EAGAIN && errno != EINTR) || written == stdin.count {
                        close(inFD); inOpen = false
                    }
                } else {
                    let r = buf.withUnsafeMutableBytes { Glibc.read(f.fd, $0.baseAddress, $0.count) }
                    if r > 0 {
                        if f.fd == outFD { out.append(contentsOf: buf[0..<r]) } else { err.append(contentsOf: buf[0..<r]) }
                    } else if r == 0 || (errno != EINTR && errno != EAGAIN) {
                        close(f.fd)
                        if f.fd == outFD { outOpen = false } else { errOpen = false }
                    }
                }
            }
        }
        return (out, err)
    }

    /// Runs a plugin and interprets its exit: success gives its stdout; failure throws the
    /// plugin's own error (from its error JSON), or code 999 with its stderr.
    public static func invoke(_ path: String, environment: [String: String], stdin: [UInt8]) throws(CNIError) -> [UInt8] {
        let o = try run(path, environment: environment, stdin: stdin)
        if o.status == 0 { return o.stdout }
        if let e = CNIError.parse(o.stdout) { throw e }
        let errText = String(decoding: o.stderr, as: UTF8.self)
        let outText = String(decoding: o.stdout, as: UTF8.self)
        throw CNIError(code: .internal, msg: "plugin \(path) failed with exit status \(o.status)",
                       details: errText.isEmpty ? outText : errText)
    }

    /// The calling process's environment as a dictionary.
    public static var currentEnvironment: [String: String] {
        var env: [String: String] = [:]
        var p = environ
        while let e = p.pointee {
            let s = String(cString: e)
            if let eq = s.firstIndex(of: "=") { env[String(s[..<eq])] = String(s[s.index(after: eq)...]) }
            p += 1
        }
        return env
    }
}
