// Replacing the calling process with another program, its output appended to a log file:
// how a helper that has entered a namespace hands over to the program meant to live there.

import Glibc

extension Subprocess {
    /// Opens `logPath` (created 0600 when missing, appended to), makes it stdout and stderr,
    /// and execs `path` with `arguments` (argv[1...]) and exactly `environment`. Returns only
    /// by throwing. Called from a thread that entered a namespace, the program runs in it:
    /// namespaces belong to the thread, and exec keeps the calling thread's.
    public static func replaceProcess(_ path: String, arguments: [String], environment: [String: String],
                                      logPath: String) throws(SystemError) -> Never {
        let logMode: mode_t = 0o600
        let log = try syscall("open", logPath) { Glibc.open(logPath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, logMode) }
        for output in [FileDescriptor.standardOutput, .standardError] {
            _ = try syscall("dup2", logPath) { Glibc.dup2(log, output.rawValue) }
        }
        let env = environment.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        let failure: Int32 = withCStringArray([path] + arguments) { argv in
            withCStringArray(env) { envp in
                Glibc.execve(path, argv, envp)
                return errno
            }
        }
        throw SystemError(operation: "execve", object: path, errno: failure)
    }
}
