// Calling the IPAM plugin. The plugin named by `ipam.type` is looked up on CNI_PATH as the
// spec says; when that is netlab's own `host-local` — the file installed beside this very
// executable — it runs in this process instead of as a child (same code, same state files,
// same locks), which saves a process start on every ADD and DEL. Any other IPAM plugin, or
// a host-local from elsewhere (e.g. the reference one), is executed as usual.

import CNI
import HostLocalPlugin
#if canImport(Glibc)
import Glibc
#endif

enum IPAM {
    static func add(_ r: CNIRequest) throws -> CNIResult {
        if let local = try inProcess(r, .add) { return try local.add(local.request) }
        return try Delegate.ipamAdd(r)
    }

    static func del(_ r: CNIRequest) throws {
        if let local = try inProcess(r, .del) { return try local.del(local.request) }
        try Delegate.ipamDel(r)
    }

    static func check(_ r: CNIRequest) throws {
        if let local = try inProcess(r, .check) { return try local.check(local.request) }
        try Delegate.check(type: r.config.ipamType ?? "", config: r.configBytes, request: r)
    }

    static func status(_ r: CNIRequest) throws {
        if let local = try inProcess(r, .status) { return try local.status(local.request) }
        try Delegate.status(type: r.config.ipamType ?? "", config: r.configBytes, request: r)
    }

    static func gc(_ r: CNIRequest) throws {
        if let local = try inProcess(r, .gc) { return try local.gc(local.request) }
        try Delegate.gc(type: r.config.ipamType ?? "", config: r.configBytes, request: r)
    }

    struct Local {
        var plugin = HostLocal()
        var request: CNIRequest
        func add(_ r: CNIRequest) throws -> CNIResult { try plugin.add(r) }
        func del(_ r: CNIRequest) throws { try plugin.del(r) }
        func check(_ r: CNIRequest) throws { try plugin.check(r) }
        func status(_ r: CNIRequest) throws { try plugin.status(r) }
        func gc(_ r: CNIRequest) throws { try plugin.gc(r) }
    }

    /// Our own host-local when CNI_PATH resolves `ipam.type` to it; nil to execute the plugin.
    /// A missing IPAM plugin throws as the exec path would (the caller maps it).
    static func inProcess(_ r: CNIRequest, _ command: CNICommand) throws -> Local? {
        guard r.config.ipamType == "host-local", r.environment["NETLAB_IPAM_EXEC"] == nil else { return nil }
        let dirs = (r.environment["CNI_PATH"].map { $0.split(separator: ":").map(String.init) }) ?? r.path
        let found = try PluginExec.find("host-local", in: dirs)
        guard let ownDir = selfDirectory, let target = realPath(found), target == ownDir + "/host-local" else { return nil }
        var req = r
        req.command = command
        return Local(request: req)
    }

    static let selfDirectory: String? = {
        guard let exe = realPath("/proc/self/exe"), let slash = exe.lastIndex(of: "/") else { return nil }
        return String(exe[..<slash])
    }()

    static func realPath(_ path: String) -> String? {
        guard let p = realpath(path, nil) else { return nil }
        defer { free(p) }
        return String(cString: p)
    }
}
