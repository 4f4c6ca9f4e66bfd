// Per-network-namespace sysctls (/proc/sys/net/...), read and written from a thread inside
// the namespace, since /proc/sys/net shows the namespace of the task that opens it.

import SystemKit

public enum Sysctl {
    /// Writes `value` to /proc/sys/`key` ("net/ipv4/ip_forward" or "net.ipv4.ip_forward"),
    /// inside the netns at `namespace` (a path or a name under /run/netns) when given.
    public static func set(_ key: String, _ value: String, namespace: String? = nil) throws {
        let path = procPath(key)
        let work = { () throws(SystemError) in
            let fd = try FileDescriptor.open(path, .writeOnly)
            try fd.closeAfter { () throws(SystemError) in
                try fd.writeAll((value + "\n").utf8, context: "\(path) = \(value)")
            }
        }
        if let namespace { try withNetworkNamespace(namespace, work) } else { try work() }
    }

    /// Reads /proc/sys/`key`, without the trailing newline.
    public static func get(_ key: String, namespace: String? = nil) throws -> String {
        let path = procPath(key)
        let work = { () throws(SystemError) -> String in
            var s = String(decoding: try Files.read(path), as: UTF8.self)
            while s.last == "\n" { s.removeLast() }
            return s
        }
        if let namespace { return try withNetworkNamespace(namespace, work) }
        return try work()
    }

    static func procPath(_ key: String) -> String {
        let k = key.hasPrefix("/proc/sys/") ? String(key.dropFirst(10)) : key
        // Dotted form: dots separate components (interface names with dots need the slash form).
        let slashed = k.contains("/") ? k : k.split(separator: ".").joined(separator: "/")
        return "/proc/sys/" + slashed
    }
}
