// The runtime's own process work: the container's init is cloned through the C shim (what runs
// between clone and exec must be C), `exec` joins a running container through it too, and the
// runtime waits for both here. Plain spawning, waiting and /proc/PID/stat are SystemKit's.

import CNetlabShims
import Glibc
import SystemKit

/// How the container's init gets its network namespace.
enum NetnsChoice {
    /// A fresh one (modes none and NAME).
    case new
    /// The caller's (mode host on the machine itself).
    case inherit
    /// The namespace open at this descriptor (container:NAME, or a simulated host's).
    case join(FileDescriptor)
}

struct SpawnOptions {
    var argv: [String]
    var environment: [String]
    var hostname: String
    var rootfs: String?
    var netns: NetnsChoice
    /// nil: inherited from the runtime.
    var stdin: FileDescriptor?, stdout: FileDescriptor?, stderr: FileDescriptor?
    /// Where the init writes the command's exit code; nil: nowhere.
    var exitStatus: FileDescriptor?
    var newSession = false
}

/// A container init spawned and blocked on its sync pipe until `release`.
final class SpawnedInit {
    let pid: pid_t
    /// The write end of the sync pipe; nil once `release` has closed it.
    private var go: FileDescriptor?

    init(pid: pid_t, go: FileDescriptor) {
        self.pid = pid
        self.go = go
    }

    /// Lets the command run. The go pipe is closed afterwards, also when this fails.
    func release() throws(SystemError) {
        guard let go else { return }
        self.go = nil
        try syscall("release container init", "pid \(pid)") { netlab_spawn_release(go.rawValue) }
    }

    /// Makes the init exit without running anything (its go pipe closes unreleased), and reaps it.
    func abandon() {
        if let go { ignoringFailure { close(go.rawValue) } }
        go = nil
        // Called while another error is being reported; a failed reap only leaves a zombie until we exit.
        _ = try? Processes.wait(pid)
    }
}

/// Clones the container's init (new mount, uts, ipc and pid namespaces, the network one per
/// `netns`), prepared and waiting for `release`.
func spawnContainerInit(_ o: SpawnOptions) throws(SystemError) -> SpawnedInit {
    var opts = netlab_spawn_opts()
    switch o.netns {
    case .new: (opts.netns_mode, opts.netns_fd) = (Int32(NETLAB_NETNS_NEW.rawValue), -1)
    case .inherit: (opts.netns_mode, opts.netns_fd) = (Int32(NETLAB_NETNS_INHERIT.rawValue), -1)
    case .join(let fd): (opts.netns_mode, opts.netns_fd) = (Int32(NETLAB_NETNS_JOIN.rawValue), fd.rawValue)
    }
    opts.stdin_fd = o.stdin?.rawValue ?? -1
    opts.stdout_fd = o.stdout?.rawValue ?? -1
    opts.stderr_fd = o.stderr?.rawValue ?? -1
    opts.exit_status_fd = o.exitStatus?.rawValue ?? -1
    opts.new_session = o.newSession ? 1 : 0
    var res = netlab_spawn_result()
    let rc = withCStringArray(o.argv) { argv in
        withCStringArray(o.environment) { envp in
            o.hostname.withCString { hostname in
                withOptionalCString(o.rootfs) { rootfs in
                    opts.argv = o.argv.isEmpty ? nil : argv
                    opts.envp = envp
                    opts.hostname = hostname
                    opts.rootfs = rootfs
                    return netlab_spawn_container(&opts, &res)
                }
            }
        }
    }
    guard rc == 0 else {
        let step = withUnsafeBytes(of: res.failed_step) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        throw SystemError(operation: "start container: " + step, object: o.argv.first ?? "pause",
                          errno: Errno(res.failed_errno))
    }
    return SpawnedInit(pid: res.pid, go: FileDescriptor(rawValue: res.go_fd))
}

private func withOptionalCString<R>(_ s: String?, _ body: (UnsafePointer<CChar>?) -> R) -> R {
    guard let s else { return body(nil) }
    return s.withCString { body($0) }
}

/// Runs `argv` in the namespaces and root of the container whose init is `pid`, and returns
/// its shell-style exit code. Without `interactive`, its stdin is /dev/null.
func execInContainer(pid: pid_t, argv: [String], environment: [String], interactive: Bool) throws(SystemError) -> Int32 {
    let devNull = interactive ? nil : try FileDescriptor.open("/dev/null")
    defer { if let devNull { ignoringFailure { close(devNull.rawValue) } } }
    let helper = try syscall("fork", "exec helper for pid \(pid)") {
        withCStringArray(argv) { a in
            withCStringArray(environment) { e in netlab_exec_in_container(pid, a, e, devNull?.rawValue ?? -1, -1, -1) }
        }
    }
    return try waitForwardingSignals(helper)
}

/// Forwards the usual terminating signals (SIGINT, SIGTERM, SIGHUP, ...) to `pid` until
/// `stopForwardingSignals`: ^C and `kill` reach the container instead of leaving it behind.
func forwardSignals(to pid: pid_t) { netlab_forward_signals(pid) }

func stopForwardingSignals() { netlab_forward_signals(0) }

/// Waits for our child `pid`, forwarding signals to it meanwhile; returns its shell-style exit code.
func waitForwardingSignals(_ pid: pid_t) throws(SystemError) -> Int32 {
    forwardSignals(to: pid)
    defer { stopForwardingSignals() }
    return try Processes.wait(pid).shellExitCode
}

/// Blocks until `pid` (not necessarily our child) has exited. `startTime` (field 22 of
/// /proc/PID/stat, nil: unchecked) guards against a recycled pid.
func waitForExit(pid: pid_t, startTime: UInt64?) throws(SystemError) {
    let fd: Int32
    do {
        fd = try syscall("pidfd_open", "pid \(pid)") { netlab_pidfd_open(pid) }
    } catch where error.errno == .noSuchProcess {
        return
    }
    let pidfd = FileDescriptor(rawValue: fd)
    try pidfd.closeAfter { () throws(SystemError) in
        // The pidfd names one process from now on; if /proc shows another start time (or a
        // zombie), the one we want had already gone when it was opened.
        guard ProcessStat.isAlive(pid: pid, startTime: startTime) else { return }
        var p = pollfd(fd: pidfd.rawValue, events: Int16(POLLIN), revents: 0)
        try syscall("wait for exit of", "pid \(pid)") { poll(&p, 1, -1) }
    }
}
