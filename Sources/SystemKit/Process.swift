// Child processes: posix_spawn with stdin fed and stdout/stderr collected, wait-status
// decoding, and /proc/PID/stat. (What must run between clone and exec is C, in the shim.)

import Glibc

/// How a child ended.
public enum WaitStatus: Sendable, Hashable {
    case exited(Int32)
    case signaled(Int32)

    /// Decodes a raw waitpid status (the WIFEXITED/WEXITSTATUS/WTERMSIG macros, spelled out).
    public init(raw: Int32) {
        if raw & 0x7f == 0 { self = .exited((raw >> 8) & 0xff) } else { self = .signaled(raw & 0x7f) }
    }

    /// The shell's exit code: the status, or 128 + the signal.
    public var shellExitCode: Int32 {
        switch self {
        case .exited(let code): code
        case .signaled(let sig): 128 + sig
        }
    }
}

/// Fields of /proc/PID/stat.
public struct ProcessStat: Sendable, Hashable {
    /// The state letter: R, S, D, Z (zombie), X (dead), ...
    public var state: Character
    /// Field 22: clock ticks after boot when the process started; with the pid, it names one
    /// process even after the pid is recycled.
    public var startTime: UInt64

    /// Parses the text of /proc/PID/stat. The command name may hold spaces and parentheses:
    /// fields resume after the last ')'.
    public init?(text: String) {
        guard let close = text.lastIndex(of: ")") else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ")
        // fields[0] is field 3 (state); starttime is field 22.
        guard fields.count > 19, let state = fields[0].first, let start = UInt64(fields[19]) else { return nil }
        self.state = state
        self.startTime = start
    }

    /// The stat of `pid`, nil when there is no such process.
    public static func read(pid: Int32) -> ProcessStat? {
        // Unreadable (the process is gone, or was never there) means no process.
        guard let bytes = try? Files.read("/proc/\(pid)/stat") else { return nil }
        return ProcessStat(text: String(decoding: bytes, as: UTF8.self))
    }

    /// Whether `pid` is still the process that started at `startTime` (zombies count as gone).
    public static func isAlive(pid: Int32, startTime: UInt64?) -> Bool {
        guard let st = read(pid: pid), st.state != "Z", st.state != "X" else { return false }
        if let startTime, st.startTime != startTime { return false }
        return true
    }
}

public enum Processes {
    /// waitpid(pid), retrying EINTR.
    public static func wait(_ pid: pid_t) throws(SystemError) -> WaitStatus {
        var status: Int32 = 0
        try syscall("waitpid", "pid \(pid)") { waitpid(pid, &status, 0) }
        return WaitStatus(raw: status)
    }

    /// kill(pid, signal); a process already gone is no error.
    public static func signal(_ pid: pid_t, _ sig: Int32) throws(SystemError) {
        do {
            try syscall("kill", "pid \(pid)") { kill(pid, sig) }
        } catch where error.errno == .noSuchProcess {
            return
        }
    }
}

/// A process run to completion with its stdin fed and its output collected.
public enum Subprocess {
    public struct Output: Sendable {
        public var status: WaitStatus
        public var stdout: [UInt8]
        public var stderr: [UInt8]
    }

    /// Runs `path` with `arguments` (argv[1...]), exactly `environment`, and `stdin`; waits for it.
    public static func run(_ path: String, arguments: [String] = [], environment: [String: String],
                           stdin: [UInt8] = []) throws(SystemError) -> Output {
        let input = try FileDescriptor.pipe()
        let output: (read: FileDescriptor, write: FileDescriptor)
        let errors: (read: FileDescriptor, write: FileDescriptor)
        do {
            output = try FileDescriptor.pipe()
        } catch {
            closeAll([input.read, input.write]); throw error
        }
        do {
            errors = try FileDescriptor.pipe()
        } catch {
            closeAll([input.read, input.write, output.read, output.write]); throw error
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, input.read.rawValue, 0)
        posix_spawn_file_actions_adddup2(&actions, output.write.rawValue, 1)
        posix_spawn_file_actions_adddup2(&actions, errors.write.rawValue, 2)

        let env = environment.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        var pid: pid_t = 0
        let rc = withCStringArray([path] + arguments) { argv in
            withCStringArray(env) { envp in posix_spawn(&pid, path, &actions, nil, argv, envp) }
        }
        closeAll([input.read, output.write, errors.write])
        guard rc == 0 else {
            closeAll([input.write, output.read, errors.read])
            throw SystemError(operation: "posix_spawn", object: path, errno: Errno(rc))
        }
        let (out, err) = pump(stdin: stdin, input: input.write, output: output.read, errors: errors.read)
        let status = try Processes.wait(pid)
        return Output(status: status, stdout: out, stderr: err)
    }

    private static func closeAll(_ fds: [FileDescriptor]) {
        for fd in fds { ignoringFailure { close(fd.rawValue) } }
    }

    /// A child that exits before reading its stdin must give us EPIPE, not kill us with
    /// SIGPIPE. The disposition is process-wide, so it is set once and never restored
    /// (restoring would race with another thread writing to its own child). A handler
    /// someone installed is left alone.
    private static func ignoreSIGPIPE() {
        var current = sigaction()
        guard sigaction(SIGPIPE, nil, &current) == 0 else { return }
        if current.__sigaction_handler.sa_handler == nil { _ = Glibc.signal(SIGPIPE, SIG_IGN) }
    }

    /// Feeds stdin and drains stdout/stderr together, so a child that writes before it has
    /// read all its input never deadlocks against us.
    private static func pump(stdin: [UInt8], input: FileDescriptor, output: FileDescriptor,
                             errors: FileDescriptor) -> ([UInt8], [UInt8]) {
        var out: [UInt8] = [], err: [UInt8] = []
        var written = 0
        var inOpen = true, outOpen = true, errOpen = true
        if stdin.isEmpty { closeAll([input]); inOpen = false }
        // A descriptor left blocking only makes a write wait; the pump still finishes.
        ignoringFailure { fcntl(input.rawValue, F_SETFL, fcntl(input.rawValue, F_GETFL) | O_NONBLOCK) }
        ignoreSIGPIPE()
        var buf = [UInt8](repeating: 0, count: 65536)
        while inOpen || outOpen || errOpen {
            var fds: [pollfd] = []
            if inOpen { fds.append(pollfd(fd: input.rawValue, events: Int16(POLLOUT), revents: 0)) }
            if outOpen { fds.append(pollfd(fd: output.rawValue, events: Int16(POLLIN), revents: 0)) }
            if errOpen { fds.append(pollfd(fd: errors.rawValue, events: Int16(POLLIN), revents: 0)) }
            if poll(&fds, nfds_t(fds.count), -1) < 0 {
                if errno == EINTR { continue } else { break }
            }
            for f in fds where f.revents != 0 {
                if f.fd == input.rawValue {
                    let w = stdin.withUnsafeBytes { write(f.fd, $0.baseAddress! + written, $0.count - written) }
                    if w > 0 { written += w }
                    if (w < 0 && errno != EAGAIN && errno != EINTR) || written == stdin.count {
                        closeAll([input]); inOpen = false
                    }
                } else {
                    let r = buf.withUnsafeMutableBytes { read(f.fd, $0.baseAddress, $0.count) }
                    if r > 0 {
                        if f.fd == output.rawValue { out += buf[0..<r] } else { err += buf[0..<r] }
                    } else if r == 0 || (errno != EINTR && errno != EAGAIN) {
                        close(f.fd)
                        if f.fd == output.rawValue { outOpen = false } else { errOpen = false }
                    }
                }
            }
        }
        return (out, err)
    }
}

/// NULL-terminated C string arrays (argv, envp), freed after `body`.
public func withCStringArray<R>(_ strings: [String],
                                _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) throws -> R) rethrows -> R {
    var ptrs: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
    ptrs.append(nil)
    defer { for p in ptrs { free(p) } }
    return try ptrs.withUnsafeBufferPointer { try body($0.baseAddress!) }
}
