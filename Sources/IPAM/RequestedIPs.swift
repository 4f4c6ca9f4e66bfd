// Collecting the addresses a runtime asks for: `CNI_ARGS` `IP=`, `args.cni.ips` and the
// `ips` capability (`runtimeConfig.ips`), in the reference plugin's order.

import NetTypes

public enum RequestedIPs {
    /// Parses one requested address: "10.1.2.3" or "10.1.2.3/24" (the prefix is ignored,
    /// the range's subnet decides it, as in the reference plugin).
    public static func parse(_ text: String, source: String) throws -> IPAddress {
        let t = text.trimmingWhitespace()
        if let ip = IPAddress(t) { return ip }
        if let c = CIDR(t) { return c.address }
        throw IPAMError.invalidConfig("\(source): \"\(text)\" is not an IP address")
    }

    /// The value of `IP=` in a `CNI_ARGS` string ("K8S_POD_NAME=x;IP=10.1.2.3"); other keys
    /// are ignored. Several addresses may be given comma-separated.
    public static func fromCNIArgs(_ cniArgs: String) throws -> [IPAddress] {
        var out: [IPAddress] = []
        for pair in cniArgs.split(separator: ";") {
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard kv.count == 2, kv[0].trimmingWhitespace() == "IP" else { continue }
            for v in kv[1].split(separator: ",") where !v.trimmingWhitespace().isEmpty {
                out.append(try parse(String(v), source: "CNI_ARGS IP"))
            }
        }
        return out
    }

    /// All requested addresses: CNI_ARGS first, then `args.cni.ips`, then `runtimeConfig.ips`;
    /// duplicates are dropped.
    public static func collect(cniArgs: String?, argsIPs: [String], runtimeIPs: [String]) throws -> [IPAddress] {
        var out: [IPAddress] = try cniArgs.map(fromCNIArgs) ?? []
        out += try argsIPs.map { try parse($0, source: "args.cni.ips") }
        out += try runtimeIPs.map { try parse($0, source: "runtimeConfig.ips") }
        var seen = Set<IPAddress>()
        return out.filter { seen.insert($0).inserted }
    }
}
