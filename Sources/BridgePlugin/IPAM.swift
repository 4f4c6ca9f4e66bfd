// Calling the IPAM plugin. The plugin named by `ipam.type` is looked up on CNI_PATH as the
// spec says; when that is netlab's own `host-local` — the file installed beside this very
// executable — it runs in this process instead of as a child (same code, same state files,
// same locks), which saves a process start on every ADD and DEL. Any other IPAM plugin, or
// a host-local from elsewhere (e.g. the reference one), is executed as usual.

import CNI
import HostLocalPlugin
import SystemKit

enum IPAM {
    static func add(_ r: CNIRequest) throws -> CNIResult {
        if let local = try inProcess(r, .add) { return try HostLocal().add(local) }
        return try Delegate.ipamAdd(r)
    }

    static func del(_ r: CNIRequest) throws {
        if let local = try inProcess(r, .del) { return try HostLocal().del(local) }
        try Delegate.ipamDel(r)
    }

    static func check(_ r: CNIRequest) throws {
        if let local = try inProcess(r, .check) { return try HostLocal().check(local) }
        try Delegate.check(type: r.config.ipamType ?? "", config: r.configBytes, request: r)
    }

    static func status(_ r: CNIRequest) throws {
        if let local = try inProcess(r, .status) { return try HostLocal().status(local) }
        try Delegate.status(type: r.config.ipamType ?? "", config: r.configBytes, request: r)
    }

    static func gc(_ r: CNIRequest) throws {
        if let local = try inProcess(r, .gc) { return try HostLocal().gc(local) }
        try Delegate.gc(type: r.config.ipamType ?? "", config: r.configBytes, request: r)
    }

    /// The request for our own host-local, run in this process, when CNI_PATH resolves
    /// `ipam.type` to the host-local beside this executable; nil to execute the plugin. A
    /// missing IPAM plugin throws as the exec path would (the caller maps it).
    static func inProcess(_ r: CNIRequest, _ command: CNICommand) throws -> CNIRequest? {
        guard r.config.ipamType == "host-local" else { return nil }
        let dirs = (r.environment["CNI_PATH"].map { $0.split(separator: ":").map(String.init) }) ?? r.path
        let found = try PluginExec.find("host-local", in: dirs)
        // A path that cannot be resolved is not provably ours: execute it, as any plugin.
        guard let ownDir = selfDirectory, let target = try? Files.realPath(found), target == ownDir + "/host-local" else {
            return nil
        }
        var req = r
        req.command = command
        return req
    }

    /// The directory of the running executable (nil if /proc is unreadable: then nothing runs in-process).
    static let selfDirectory: String? = {
        guard let exe = try? Files.realPath("/proc/self/exe") else { return nil }
        return Files.directoryName(exe)
    }()
}
