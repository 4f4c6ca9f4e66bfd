// Calling the IPAM plugin, for every plugin that delegates addresses (bridge, macvlan,
// ipvlan). The plugin named by `ipam.type` is looked up on CNI_PATH as the spec says; when
// that is netlab's own `host-local` — the file installed beside this very executable — it
// runs in this process instead of as a child (same code, same state files, same locks),
// which saves a process start on every ADD and DEL. Any other IPAM plugin, or a host-local
// from elsewhere (e.g. the reference one), is executed as usual.

import CNI
import HostLocalPlugin
import SystemKit

public enum IPAMDelegate {
    public static func add(_ r: CNIRequest) throws -> CNIResult {
        if let local = try inProcess(r, .add) { return try HostLocal().add(local) }
        return try Delegate.ipamAdd(r)
    }

    public static func del(_ r: CNIRequest) throws {
        if let local = try inProcess(r, .del) { return try HostLocal().del(local) }
        try Delegate.ipamDel(r)
    }

    public static func check(_ r: CNIRequest) throws {
        if let local = try inProcess(r, .check) { return try HostLocal().check(local) }
        try Delegate.check(type: r.config.ipamType ?? "", config: r.configBytes, request: r)
    }

    public static func status(_ r: CNIRequest) throws {
        if let local = try inProcess(r, .status) { return try HostLocal().status(local) }
        try Delegate.status(type: r.config.ipamType ?? "", config: r.configBytes, request: r)
    }

    public static func gc(_ r: CNIRequest) throws {
        if let local = try inProcess(r, .gc) { return try HostLocal().gc(local) }
        try Delegate.gc(type: r.config.ipamType ?? "", config: r.configBytes, request: r)
    }

    /// ADD's first check, before anything is created: `ipam.type` (when set) names a plugin
    /// that can be run — a plain file name found on CNI_PATH. An invalid name is code 7, a
    /// missing plugin the "failed to find plugin" error, both as the later call would report.
    public static func requirePlugin(_ r: CNIRequest) throws {
        guard let t = r.config.ipamType, !t.isEmpty else { return }
        _ = try Delegate.locate(type: t, request: r)
    }

    /// ADD's addresses: runs the IPAM plugin, registers the release with `undo`, and requires
    /// at least one address (an empty answer is an error of `plugin`'s ADD).
    public static func allocate(_ r: CNIRequest, _ undo: inout Rollback, plugin: String) throws -> CNIResult {
        let result = try add(r)
        undo.register("IPAM DEL") { try del(r) }
        guard !result.ips.isEmpty else {
            throw CNIError(code: .internal, msg: "\(plugin) ADD: IPAM plugin returned no IP configuration")
        }
        return result
    }

    /// STATUS of a plugin that delegates addresses: ready when the IPAM plugin is (nothing to ask
    /// without `ipam.type`). A missing IPAM binary, or one that is not ready, is code 50; an
    /// IPAM plugin's own 50 or 51 passes unchanged.
    public static func requireReady(_ r: CNIRequest, plugin: String) throws {
        guard let t = r.config.ipamType, !t.isEmpty else { return }
        let result: Result<Void, any Error> = Result { try status(r) }
        guard case .failure(let err) = result else { return }
        let e = CNIError.wrapping(err)
        if e.code == .notAvailable || e.code == .notAvailableLimitedConnectivity { throw e }
        throw CNIError(code: .notAvailable, msg: "\(plugin) STATUS: IPAM plugin \(t) not available: \(e.msg)", details: e.details)
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
