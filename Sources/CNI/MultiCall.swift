// One executable that is every plugin, the way busybox is every applet: installed once with
// a hard link per plugin name, it runs the plugin its invoked name (argv[0]'s basename) says,
// so a runtime that executes `/opt/cni/bin/bridge` gets exactly the bridge plugin.

import Glibc
import SystemKit

/// One name the multi-call executable answers to, and how it runs as that plugin. The body
/// is only called for the name invoked, so nothing of the other plugins runs at start-up.
public struct PluginEntry: Sendable {
    public let name: String
    let run: @Sendable () -> Never

    /// `PluginEntry("bridge") { PluginMain.run(Bridge(), about: Bridge.about) }`
    public init(_ name: String, run: @escaping @Sendable () -> Never) {
        self.name = name
        self.run = run
    }
}

public enum MultiCall {
    /// What the executable does when run under a name that is not a plugin's (its own name,
    /// say): `--list` prints the plugin names one a line (what an installer links);
    /// `NAME` as the first argument runs as that plugin, as `busybox NAME` does.
    public static let listOption = "--list"

    /// Runs the plugin `arguments[0]`'s basename names; exits.
    public static func run(_ entries: [PluginEntry], arguments: [String] = CommandLine.arguments) -> Never {
        let invoked = basename(arguments.first ?? "")
        if let entry = entries.first(where: { $0.name == invoked }) { entry.run() }
        let first = arguments.dropFirst().first
        if let first, let entry = entries.first(where: { $0.name == first }) { entry.run() }
        let names = entries.map(\.name)
        if first == listOption {
            write(names.map { $0 + "\n" }.joined(), to: .standardOutput)
            exit(0)
        }
        unknownName(invoked, names: names)
    }

    /// Neither the invoked name nor the first argument is a plugin's: a runtime that executed
    /// us (CNI_COMMAND set) reads the spec's error JSON on stdout; a person reads the usage.
    static func unknownName(_ invoked: String, names: [String]) -> Never {
        let usage = "usage: \(invoked) \(listOption) | \(invoked) NAME, or run it through a link named after a plugin\n"
            + "plugins: \(names.joined(separator: " "))\n"
        if let command = Environment["CNI_COMMAND"], !command.isEmpty {
            let error = CNIError(code: .internal, msg: "\(invoked): no plugin of this name",
                                 details: "this executable is the plugins \(names.joined(separator: ", ")); install it under one of those names")
            write(String(decoding: error.json(version: CNIVersion.current).serialized(), as: UTF8.self), to: .standardOutput)
        } else {
            write(usage, to: .standardError)
        }
        exit(1)
    }

    /// The last path component ("/opt/cni/bin/bridge" → "bridge").
    static func basename(_ path: String) -> String {
        path.split(separator: "/", omittingEmptySubsequences: true).last.map(String.init) ?? path
    }

    private static func write(_ text: String, to fd: FileDescriptor) {
        // Nowhere else to report a failed write of the usage or the name list; the exit code stays.
        _ = try? fd.writeAll(Array(text.utf8), context: "output")
    }
}
