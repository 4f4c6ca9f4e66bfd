// Thin wrappers over the syscalls the runtime needs: files, /proc, mounts, and the C shims
// for process creation. Unsafe pointers stay in this file.

import CNetlabShims
import Glibc

enum Sys {
    static var isRoot: Bool { geteuid() == 0 }

    // MARK: files

    static func readFile(_ path: String) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 { if errno == EINTR { continue }; return nil }
            if n == 0 { return out }
            out += buf[0..<n]
        }
    }

    /// Writes `bytes` to `path` atomically (temporary file, fsync, rename).
    static func writeFileAtomically(_ path: String, _ bytes: [UInt8]) throws {
        let tmp = path + ".tmp.\(getpid())"
        let fd = try sys("create", tmp) { open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644) }
        do {
            try writeAll(fd, bytes, path: tmp)
            fsync(fd)
            close(fd)
            try sys("rename", tmp) { rename(tmp, path) }
        } catch {
            close(fd)
            unlink(tmp)
            throw error
        }
    }

    static func writeAll(_ fd: Int32, _ bytes: [UInt8], path: String) throws {
        var off = 0
        while off < bytes.count {
            let n = try sys("write", path) { bytes.withUnsafeBytes { write(fd, $0.baseAddress! + off, $0.count - off) } }
            off += n
        }
    }

    static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    static func modificationTime(_ path: String) -> Double? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return Double(st.st_mtim.tv_sec) + Double(st.st_mtim.tv_nsec) / 1e9
    }

    static func makeDirectory(_ path: String, exclusive: Bool = false) throws {
        if mkdir(path, 0o755) == 0 { return }
        let e = errno
        if e == EEXIST && !exclusive { return }
        throw RuntimeError.system(operation: "mkdir", object: path, errno: e)
    }

    static func makeDirectories(_ path: String) throws {
        var current = ""
        for part in path.split(separator: "/") {
            current += "/" + part
            try makeDirectory(current)
        }
    }

    static func listDirectory(_ path: String) -> [String] {
        guard let dir = opendir(path) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let ent = readdir(dir) {
            let name = withUnsafeBytes(of: ent.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    /// Removes a directory tree, never following symlinks and never crossing a mount
    /// (a still-mounted netns file makes unlink fail with EBUSY, which is reported).
    static func removeTree(_ path: String) throws {
        var st = stat()
        guard lstat(path, &st) == 0 else { return }
        if (st.st_mode & S_IFMT) == S_IFDIR {
            // Another netlab process may write a file into the directory while it is being
            // removed (a `stop` recording the exit while the `--rm` reaper tears down): retry.
            for attempt in 0..<5 {
                for name in listDirectory(path) { try removeTree(path + "/" + name) }
                if rmdir(path) == 0 || errno == ENOENT { return }
                let e = errno
                if e != ENOTEMPTY || attempt == 4 {
                    throw RuntimeError.system(operation: "rmdir", object: path, errno: e)
                }
            }
        } else {
            if unlink(path) != 0 && errno != ENOENT {
                throw RuntimeError.system(operation: "unlink", object: path, errno: errno)
            }
        }
    }

    // MARK: processes

    /// (state, starttime) from /proc/<pid>/stat, nil when there is no such process.
    static func processStat(_ pid: Int32) -> (state: Character, startTime: UInt64)? {
        guard let bytes = readFile("/proc/\(pid)/stat") else { return nil }
        let text = String(decoding: bytes, as: UTF8.self)
        // The command name may hold spaces and parentheses: fields resume after the last ')'.
        guard let close = text.lastIndex(of: ")") else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ")
        // fields[0] is field 3 (state); starttime is field 22.
        guard fields.count > 19, let state = fields[0].first, let start = UInt64(fields[19]) else { return nil }
        return (state, start)
    }

    /// Whether `pid` is still the process that had `startTime` (zombies count as gone).
    static func isAlive(pid: Int32, startTime: UInt64?) -> Bool {
        guard let st = processStat(pid), st.state != "Z", st.state != "X" else { return false }
        if let startTime, st.startTime != startTime { return false }
        return true
    }

    static func sendSignal(_ pid: Int32, _ sig: Int32) throws {
        if kill(pid, sig) != 0 && errno != ESRCH {
            throw RuntimeError.system(operation: "kill", object: "pid \(pid)", errno: errno)
        }
    }

    static func sleep(milliseconds: Int) { usleep(UInt32(milliseconds * 1000)) }

    // MARK: mounts

    /// Bind-mounts `source` (e.g. /proc/<pid>/ns/net) on a new empty file `target`.
    static func bindMount(_ source: String, on target: String) throws {
        let fd = try sys("create", target) { open(target, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o444) }
        close(fd)
        do {
            try sys("bind mount \(source) on", target) { mount(source, target, "none", UInt(MS_BIND), nil) }
        } catch {
            unlink(target)
            throw error
        }
    }

    /// Lazily unmounts `target` (no error when nothing is mounted there) and removes the file.
    static func unmountAndRemove(_ target: String) throws {
        if umount2(target, Int32(MNT_DETACH)) != 0 && errno != EINVAL && errno != ENOENT {
            throw RuntimeError.system(operation: "umount", object: target, errno: errno)
        }
        if unlink(target) != 0 && errno != ENOENT {
            throw RuntimeError.system(operation: "unlink", object: target, errno: errno)
        }
    }

    /// Whether `path` is a mount point (listed in /proc/self/mountinfo).
    /// True when something is mounted on `path`: its device differs from its directory's
    /// (always so for a netns bind mount, whose device is nsfs). Race-free, unlike scanning
    /// /proc/self/mountinfo while other mounts come and go.
    static func isMountPoint(_ path: String) -> Bool {
        var st = stat(), parent = stat()
        guard lstat(path, &st) == 0 else { return false }
        let dir = path.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        guard stat(dir.isEmpty ? "/" : dir, &parent) == 0 else { return false }
        return st.st_dev != parent.st_dev || st.st_ino == parent.st_ino
    }
}

/// NULL-terminated C string arrays for argv/envp, freed after `body`.
func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) throws -> R) rethrows -> R {
    var ptrs: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
    ptrs.append(nil)
    defer { for p in ptrs { free(p) } }
    return try ptrs.withUnsafeBufferPointer { try body($0.baseAddress!) }
}

/// A container init spawned and waiting on its sync pipe.
struct SpawnedInit {
    var pid: Int32
    var goFD: Int32

    /// Lets the command run.
    func release() throws {
        try sys("release container init", "pid \(pid)") { netlab_spawn_release(goFD) }
    }

    /// Makes the init exit without running anything, and reaps it.
    func abandon() {
        close(goFD)
        var status: Int32 = 0
        _ = netlab_wait(pid, &status)
    }
}

enum NetnsChoice {
    case new, inherit, join(fd: Int32)
}

struct SpawnOptions {
    var argv: [String]
    var environment: [String]
    var hostname: String
    var rootfs: String?
    var netns: NetnsChoice
    var stdinFD: Int32 = -1, stdoutFD: Int32 = -1, stderrFD: Int32 = -1
    var exitStatusFD: Int32 = -1
    var newSession = false
}

func spawnContainerInit(_ o: SpawnOptions) throws -> SpawnedInit {
    try withCStrings(o.argv) { argv in
        try withCStrings(o.environment) { envp in
            try o.hostname.withCString { hostname in
                try withOptionalCString(o.rootfs) { rootfs in
                    var opts = netlab_spawn_opts()
                    opts.argv = o.argv.isEmpty ? nil : argv
                    opts.envp = envp
                    opts.hostname = hostname
                    opts.rootfs = rootfs
                    switch o.netns {
                    case .new: opts.netns_mode = Int32(NETLAB_NETNS_NEW.rawValue); opts.netns_fd = -1
                    case .inherit: opts.netns_mode = Int32(NETLAB_NETNS_INHERIT.rawValue); opts.netns_fd = -1
                    case .join(let fd): opts.netns_mode = Int32(NETLAB_NETNS_JOIN.rawValue); opts.netns_fd = fd
                    }
                    opts.stdin_fd = o.stdinFD
                    opts.stdout_fd = o.stdoutFD
                    opts.stderr_fd = o.stderrFD
                    opts.exit_status_fd = o.exitStatusFD
                    opts.new_session = o.newSession ? 1 : 0
                    var res = netlab_spawn_result()
                    if netlab_spawn_container(&opts, &res) != 0 {
                        let step = withUnsafeBytes(of: res.failed_step) { raw in
                            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
                        }
                        throw RuntimeError.system(operation: "start container: " + step, object: o.argv.first ?? "pause", errno: res.failed_errno)
                    }
                    return SpawnedInit(pid: res.pid, goFD: res.go_fd)
                }
            }
        }
    }
}

func withOptionalCString<R>(_ s: String?, _ body: (UnsafePointer<CChar>?) throws -> R) rethrows -> R {
    guard let s else { return try body(nil) }
    return try s.withCString { try body($0) }
}

/// Waits for a child, forwarding the usual terminating signals to it meanwhile; returns its
/// shell-style exit code.
func waitForwardingSignals(_ pid: Int32) -> Int32 {
    netlab_forward_signals(pid)
    defer { netlab_forward_signals(0) }
    var status: Int32 = 0
    guard netlab_wait(pid, &status) == pid else { return 255 }
    return netlab_exit_code(status)
}

func execInContainer(pid: Int32, argv: [String], environment: [String], interactive: Bool) throws -> Int32 {
    let devNull = interactive ? -1 : open("/dev/null", O_RDONLY | O_CLOEXEC)
    defer { if devNull >= 0 { close(devNull) } }
    let helper = withCStrings(argv) { a in
        withCStrings(environment) { e in netlab_exec_in_container(pid, a, e, devNull, -1, -1) }
    }
    if helper < 0 { throw RuntimeError.system(operation: "fork", object: "exec helper", errno: errno) }
    return waitForwardingSignals(helper)
}

extension Sys {
    /// Starts `argv` in a new session with stdio on /dev/null and does not wait for it.
    static func spawnDetached(_ argv: [String]) throws {
        let pid = withCStrings(argv) { a in
            withCStrings(["PATH=" + ContainerRuntime.defaultPath]) { e in netlab_spawn_detached(a, e) }
        }
        if pid < 0 { throw RuntimeError.system(operation: "spawn", object: argv[0], errno: errno) }
    }

    /// Blocks until `pid` (any process) has exited.
    static func waitForExit(pid: Int32, startTime: UInt64?) throws {
        if netlab_wait_for_exit(pid, startTime ?? 0) != 0 {
            throw RuntimeError.system(operation: "wait for", object: "pid \(pid)", errno: errno)
        }
    }
}
