// Starting a process that outlives its caller (the reaper that removes a `run -d --rm`
// container once it exits): a session of its own, nothing of the caller's inherited.

import CNetlabShims
import Glibc

extension Subprocess {
    /// Starts `path` with `arguments` (argv[1...]) and exactly `environment` without waiting
    /// for it: in a new session, stdin/stdout/stderr on /dev/null, no other descriptor of the
    /// caller's inherited (a pipe someone reads until EOF must not stay open in it), default
    /// signal dispositions and an empty signal mask. Returns its pid.
    @discardableResult
    public static func startDetached(_ path: String, arguments: [String] = [],
                                     environment: [String: String]) throws(SystemError) -> pid_t {
        var attributes = posix_spawnattr_t()
        try syscallReturningErrno("posix_spawnattr_init", path) { posix_spawnattr_init(&attributes) }
        defer { posix_spawnattr_destroy(&attributes) }
        var every = sigset_t(), none = sigset_t()
        sigfillset(&every)
        sigemptyset(&none)
        let flags = NETLAB_POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK
        try syscallReturningErrno("posix_spawnattr_setsigdefault", path) { posix_spawnattr_setsigdefault(&attributes, &every) }
        try syscallReturningErrno("posix_spawnattr_setsigmask", path) { posix_spawnattr_setsigmask(&attributes, &none) }
        try syscallReturningErrno("posix_spawnattr_setflags", path) { posix_spawnattr_setflags(&attributes, Int16(flags)) }

        var actions = posix_spawn_file_actions_t()
        try syscallReturningErrno("posix_spawn_file_actions_init", path) { posix_spawn_file_actions_init(&actions) }
        defer { posix_spawn_file_actions_destroy(&actions) }
        let stdin = FileDescriptor.standardInput.rawValue
        try syscallReturningErrno("posix_spawn_file_actions_addopen", "/dev/null") {
            posix_spawn_file_actions_addopen(&actions, stdin, "/dev/null", O_RDWR, 0)
        }
        for output in [FileDescriptor.standardOutput, .standardError] {
            try syscallReturningErrno("posix_spawn_file_actions_adddup2", path) {
                posix_spawn_file_actions_adddup2(&actions, stdin, output.rawValue)
            }
        }
        try syscallReturningErrno("posix_spawn_file_actions_addclosefrom", path) {
            netlab_spawn_actions_close_from(&actions, FileDescriptor.standardError.rawValue + 1)
        }

        let env = environment.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        var pid: pid_t = 0
        try syscallReturningErrno("posix_spawn", path) {
            withCStringArray([path] + arguments) { argv in
                withCStringArray(env) { envp in posix_spawn(&pid, path, &actions, &attributes, argv, envp) }
            }
        }
        return pid
    }
}
