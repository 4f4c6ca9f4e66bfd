// Per-network-namespace sysctls (/proc/sys/net/...), read and written from a thread inside
// the namespace, since /proc/sys/net shows the namespace of the task that opens it.

#if canImport(Glibc)
import Glibc
#endif

public enum Sysctl {
    /// Writes `value` to /proc/sys/`key` ("net/ipv4/ip_forward" or "net.ipv4.ip_forward"),
    /// inside the netns at `namespace` (a path or a name under /run/netns) when given.
    public static func set(_ key: String, _ value: String, namespace: String? = nil) throws {
        let path = procPath(key)
        let work = { () -> Int32 in
            let fd = open(path, O_WRONLY | O_CLOEXEC)
            guard fd >= 0 else { return errno }
            defer { close(fd) }
            let bytes = Array((value + "\n").utf8)
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            return n == bytes.count ? 0 : (n < 0 ? errno : EIO)
        }
        let err = try namespace.map { try withNetworkNamespace($0, work) } ?? work()
        if err != 0 { throw NetlinkError(operation: "write sysctl", object: "\(path) = \(value)", errno: err) }
    }

    /// Reads /proc/sys/`key`, without the trailing newline.
    public static func get(_ key: String, namespace: String? = nil) throws -> String {
        let path = procPath(key)
        let work = { () -> Result<String, NetlinkError> in
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { return .failure(NetlinkError(operation: "read sysctl", object: path, errno: errno)) }
            defer { close(fd) }
            var out: [UInt8] = []
            var buf = [UInt8](repeating: 0, count: 512)
            while true {
                let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if n < 0 { return .failure(NetlinkError(operation: "read sysctl", object: path, errno: errno)) }
                if n == 0 { break }
                out += buf[0..<n]
            }
            var s = String(decoding: out, as: UTF8.self)
            while s.last == "\n" { s.removeLast() }
            return .success(s)
        }
        return try (namespace.map { try withNetworkNamespace($0, work) } ?? work()).get()
    }

    static func procPath(_ key: String) -> String {
        let k = key.hasPrefix("/proc/sys/") ? String(key.dropFirst(10)) : key
        // Dotted form: dots separate components (interface names with dots need the slash form).
        let slashed = k.contains("/") ? k : k.split(separator: ".").joined(separator: "/")
        return "/proc/sys/" + slashed
    }
}
