// cni-echo: a CNI plugin for tests only, built on CNI's PluginMain.
//
// Config keys (besides the common ones):
//   "log": "/path"          append one JSON line per call: {"command","containerID","ifName",
//                           "netns","args","config"} (config = the stdin it received, parsed)
//   "result": {...}         the result ADD starts from when there is no prevResult
//   "interface": "name"     ADD appends this interface (sandbox = CNI_NETNS)
//   "ip": "10.0.0.2/24"     ADD appends this IP, pointing at the appended interface
//   "fail": {"command": "ADD", "code": 11, "msg": "..."}   fail that verb with that error
//   "delegate": {...}       ADD/DEL also run this config's "type" through Delegate (name and
//                           cniVersion injected); ADD appends the delegate's interfaces and IPs

import CNI
import NetTypes
import SystemKit

struct Echo: CNIPlugin {
    func add(_ r: CNIRequest) throws -> CNIResult {
        try record(r)
        var result = try r.prevResult ?? r.config.raw["result"].map { try CNIResult.decode($0, version: r.cniVersion) }
            ?? CNIResult(cniVersion: r.cniVersion)
        result.cniVersion = r.cniVersion
        if let d = try delegateConfig(r) {
            let sub = try Delegate.add(type: d.type, config: d.bytes, request: r)
            let base = result.interfaces.count
            result.interfaces += sub.interfaces
            result.ips += sub.ips.map { ip in
                var ip = ip
                ip.interface = ip.interface.map { $0 + base }
                return ip
            }
        }
        var index: Int?
        if let name = r.config.raw["interface"]?.stringValue {
            result.interfaces.append(.init(name: name, sandbox: r.netns))
            index = result.interfaces.count - 1
        }
        if let text = r.config.raw["ip"]?.stringValue {
            guard let cidr = CIDR(text) else { throw CNIError.invalidConfig("ip: \"\(text)\" is not a CIDR") }
            result.ips.append(.init(address: cidr, interface: index))
        }
        return result
    }

    func del(_ r: CNIRequest) throws {
        try record(r)
        if let d = try delegateConfig(r) { try Delegate.del(type: d.type, config: d.bytes, request: r) }
    }
    func check(_ r: CNIRequest) throws { try record(r) }
    func status(_ r: CNIRequest) throws { try record(r) }
    func gc(_ r: CNIRequest) throws { try record(r) }

    /// Logs the call, then fails if the config says so for this verb.
    func record(_ r: CNIRequest) throws {
        if let path = r.config.raw["log"]?.stringValue {
            var line: JSONValue = [
                "command": .string(r.command.rawValue), "containerID": .string(r.containerID),
                "ifName": .string(r.ifName), "config": r.config.raw,
                "args": .object(Dictionary(r.args.map { ($0.0, JSONValue.string($0.1)) }, uniquingKeysWith: { _, b in b })),
            ]
            if let n = r.netns { line["netns"] = .string(n) }
            try appendLine(path, line.serialized() + [10])
        }
        if let f = r.config.raw["fail"], f["command"]?.stringValue == r.command.rawValue {
            throw CNIError(code: .init(rawValue: f["code"]?.intValue ?? 999), msg: f["msg"]?.stringValue ?? "echo failure",
                           details: f["details"]?.stringValue ?? "")
        }
    }

    func delegateConfig(_ r: CNIRequest) throws -> (type: String, bytes: [UInt8])? {
        guard var d = r.config.raw["delegate"], d.objectValue != nil else { return nil }
        guard let type = d["type"]?.stringValue else { throw CNIError.invalidConfig("delegate.type missing") }
        d["name"] = .string(r.config.name)
        d["cniVersion"] = .string(r.cniVersion)
        return (type, d.serialized())
    }
}

func appendLine(_ path: String, _ bytes: [UInt8]) throws {
    let fd = try FileDescriptor.open(path, [.writeOnly, .create, .append], permissions: 0o644)
    try fd.closeAfter { () throws(SystemError) in try fd.writeAll(bytes, context: path) }
}

PluginMain.run(Echo(), about: "cni-echo: a CNI plugin for tests that reports what it received")
