// The tuning chained plugin: sysctls of the container's netns and attributes of its
// interface (MAC, MTU, promiscuous and all-multicast modes, transmit queue length, name).
// ADD saves what it changes before changing it; DEL puts it back; CHECK compares.

import CNI
import Netlink
import PluginKit
import SystemKit

public struct Tuning: CNIPlugin {
    public init() {}

    // MARK: ADD

    /// ADD: originals saved, then the sysctls and the link attributes set; `prevResult`
    /// passed on with the interface's new MAC (and name). A failure puts back what was changed.
    public func add(_ r: CNIRequest) throws -> CNIResult {
        let conf = try r.pluginConfig(TuningConfig.self)
        let prev = try r.requirePrevResult()
        let netns = try r.requireNetns()
        try CNIError.mapping("tuning ADD") { try tune(r, conf, netns: netns) }
        return Self.result(prev, r, conf)
    }

    private func tune(_ r: CNIRequest, _ conf: TuningConfig, netns: String) throws {
        let tuner = try LinkTuner(netns: netns)
        let link = try tuner.link(r.ifName)
        var current = try tuner.originals(of: link, for: conf)
        current.network = r.config.name
        var rollback = Rollback()
        if conf.changesLink || !conf.sysctls.isEmpty {
            try saveOriginals(current, r, conf, rollback: &rollback)
        }
        do {
            let values = conf.sysctls.sorted { $0.key < $1.key }.map { (path: $0.key.path, value: $0.value) }
            try tuner.writeSysctls(values, originals: current.sysctls, rollback: &rollback)
            try tuner.apply(conf, to: link, originals: current, rollback: &rollback)
            rollback.commit()
        } catch {
            rollback.run()
            throw error
        }
    }

    /// Saves the originals before anything changes. A repeated ADD keeps what the first one
    /// saved (those are the values from before any tuning) and adds what it did not cover.
    /// The undo puts the file back as it was.
    private func saveOriginals(_ current: Originals, _ r: CNIRequest, _ conf: TuningConfig,
                               rollback: inout Rollback) throws {
        let store = OriginalsStore(directory: conf.dataDir)
        let (id, ifName) = (r.containerID, r.ifName)
        let earlier = try store.load(containerID: id, ifName: ifName)
        var keep = earlier ?? Originals()
        keep.merge(missingFrom: current)
        try store.save(keep, containerID: id, ifName: ifName)
        if let earlier {
            rollback.register("originals") { try store.save(earlier, containerID: id, ifName: ifName) }
        } else {
            rollback.register("originals") { try store.remove(containerID: id, ifName: ifName) }
        }
    }

    /// `prevResult` with the container interface's MAC, MTU and name as ADD set them.
    static func result(_ prev: CNIResult, _ r: CNIRequest, _ conf: TuningConfig) -> CNIResult {
        var out = prev
        for i in out.interfaces.indices where out.interfaces[i].name == r.ifName && out.interfaces[i].sandbox?.isEmpty == false {
            if let mac = conf.mac { out.interfaces[i].mac = mac.description }
            if let mtu = conf.mtu { out.interfaces[i].mtu = Int(mtu) }
            if let name = conf.newName { out.interfaces[i].name = name }
        }
        return out
    }

    // MARK: DEL

    /// DEL: the saved originals put back and their file removed. No file, a netns or an
    /// interface that is gone: nothing to restore (the file is removed). When some value
    /// cannot be put back the file stays, so a retried DEL can finish the job.
    public func del(_ r: CNIRequest) throws {
        let conf = try r.pluginConfig(TuningConfig.self)
        let store = OriginalsStore(directory: conf.dataDir)
        try CNIError.mapping("tuning DEL") {
            guard let saved = try store.load(containerID: r.containerID, ifName: r.ifName) else { return }
            if let netns = r.netns, !netnsIsGone(netns) {
                do {
                    try restore(saved, r, netns: netns)
                } catch let e as SystemError where e.isNamespaceGone {
                    // The netns went away meanwhile: the interface went with it.
                }
            }
            try store.remove(containerID: r.containerID, ifName: r.ifName)
        }
    }

    private func restore(_ saved: Originals, _ r: CNIRequest, netns: String) throws {
        let tuner = try LinkTuner(netns: netns)
        var found = try saved.renamedTo.flatMap { try tuner.sock.link(named: $0) }
        if found == nil { found = try tuner.sock.link(named: r.ifName) }
        guard let link = found else { return }
        let failures = tuner.restore(saved, on: link, originalName: r.ifName)
        if let e = CNIError.combining(failures, context: "tuning DEL: put back the originals of \(r.ifName) in \(netns)") { throw e }
    }

    // MARK: CHECK, GC

    /// CHECK: every sysctl and attribute the config sets has that value now.
    public func check(_ r: CNIRequest) throws {
        let conf = try r.pluginConfig(TuningConfig.self)
        _ = try r.requirePrevResult()
        let netns = try r.requireNetns()
        try CNIError.mapping("tuning CHECK") {
            let tuner = try LinkTuner(netns: netns)
            let link = try tuner.link(conf.newName ?? r.ifName)
            try Self.checkSysctls(conf, tuner)
            try Self.checkLink(conf, link, tuner)
        }
    }

    static func checkSysctls(_ conf: TuningConfig, _ tuner: LinkTuner) throws {
        guard !conf.sysctls.isEmpty else { return }
        let keys = conf.sysctls.keys.sorted()
        let now = try withNetworkNamespace(tuner.netns) { try keys.map { try Sysctl.get($0.path) } }
        for (key, value) in zip(keys, now) where !SysctlKey.sameValue(conf.sysctls[key] ?? "", value) {
            throw CNIError(code: .internal, msg: "tuning CHECK: sysctl \(key) (/proc/sys/\(key.path)) is \"\(value)\", configured \"\(conf.sysctls[key] ?? "")\"")
        }
    }

    static func checkLink(_ conf: TuningConfig, _ link: Link, _ tuner: LinkTuner) throws {
        func fail(_ what: String, _ now: String, _ want: String) -> CNIError {
            CNIError(code: .internal, msg: "tuning CHECK: \(what) of \(link.name) is \(now), configured \(want)")
        }
        if let mac = conf.mac, link.mac != mac { throw fail("MAC", link.mac.map { "\($0)" } ?? "none", "\(mac)") }
        if let mtu = conf.mtu, link.mtu != mtu { throw fail("MTU", "\(link.mtu)", "\(mtu)") }
        if let on = conf.promisc, link.isPromiscuous != on { throw fail("promiscuous mode", "\(link.isPromiscuous)", "\(on)") }
        if let on = conf.allmulti, link.isAllMulticast != on { throw fail("all-multicast mode", "\(link.isAllMulticast)", "\(on)") }
        if let q = conf.txQueueLength {
            let now = try tuner.sock.txQueueLength(link.index)
            if now != q { throw fail("transmit queue length", "\(now)", "\(q)") }
        }
    }

    /// GC: the saved originals of this network's attachments that are no longer valid are
    /// removed (their containers are gone; there is nothing left to put back).
    public func gc(_ r: CNIRequest) throws {
        let conf = try r.pluginConfig(TuningConfig.self)
        let store = OriginalsStore(directory: conf.dataDir)
        try CNIError.mapping("tuning GC") {
            for file in try store.stale(network: r.config.name, valid: r.validAttachments) { try Files.remove(file) }
        }
    }
}

extension Tuning {
    /// What `tuning` prints when run without CNI_COMMAND (its own executable and its
    /// multi-call name alike).
    public static var about: String { "netlab tuning plugin: container sysctls and interface attributes, put back at DEL" }
}
