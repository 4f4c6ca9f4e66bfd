// Running a plugin executable: find it on a search path, posix_spawn it with an environment
// and the config on stdin, collect stdout/stderr, and turn its exit into a result or a
// CNIError. Used by delegation (plugin side) and by CNIRuntime (runtime side).

import SystemKit

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
            if Files.isExecutableFile(p) { return p }
        }
        throw CNIError(code: .internal, msg: "failed to find plugin \"\(name)\" in path [\(directories.joined(separator: " "))]")
    }

    /// Runs `path` with exactly `environment` and `stdin`, waits for it.
    public static func run(_ path: String, environment: [String: String], stdin: [UInt8]) throws(CNIError) -> PluginOutput {
        let o = try io { () throws(SystemError) in try Subprocess.run(path, environment: environment, stdin: stdin) }
        return PluginOutput(status: o.status.shellExitCode, stdout: o.stdout, stderr: o.stderr)
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
}
