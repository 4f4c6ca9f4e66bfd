// STATUS and GC of the flannel plugin.

import CNI

extension Flannel {
    /// STATUS: not available (code 50) while subnet.env is missing or incomplete (the overlay
    /// daemon is not up); otherwise the delegate's STATUS with the config ADD would build.
    public func status(_ r: CNIRequest) throws {
        let conf = try r.pluginConfig(FlannelConfig.self)
        let host: HostSubnets
        do {
            host = try HostSubnets.load(conf.subnetFile)
        } catch {
            throw CNIError(code: .notAvailable, msg: "flannel STATUS: \(error.msg)", details: error.details)
        }
        let delegate = try conf.delegateConfig(for: host)
        try Delegate.status(type: Self.type(of: delegate), config: delegate.serialized(), request: r)
    }

    /// GC: the delegate's GC (with `cni.dev/valid-attachments`) once for each distinct config
    /// among this network's saved ones and the one ADD would build now, then the saved configs
    /// of containers not in the valid attachments are removed. A config whose delegate GC
    /// fails keeps its files (DEL can still use them); every failure is reported together.
    public func gc(_ r: CNIRequest) throws {
        let conf = try r.pluginConfig(FlannelConfig.self)
        let store = SavedDelegates(directory: conf.dataDir)
        let valid = Set(r.validAttachments.map(\.containerID))
        var failures: [any Error] = []
        var groups = GCGroups(request: r)
        for saved in try store.all(network: conf.network) {
            groups.add(saved.config, type: saved.type, stale: valid.contains(saved.containerID) ? nil : saved.containerID)
        }
        do {
            if let host = try HostSubnets.loadIfPresent(conf.subnetFile) {
                let current = try conf.delegateConfig(for: host)
                groups.add(current, type: Self.type(of: current), stale: nil)
            }
        } catch {
            failures.append(error)
        }
        for group in groups.list {
            do {
                try Delegate.gc(type: group.type, config: group.config, request: r)
                for id in group.stale {
                    do { try store.remove(id) } catch { failures.append(error) }
                }
            } catch {
                failures.append(error)
            }
        }
        if let e = CNIError.combining(failures, context: "flannel GC") { throw e }
    }
}

/// The distinct delegate configs GC runs the delegate with, each with the containers whose
/// saved copy it came from and that are no longer valid.
struct GCGroups {
    struct Group {
        var type: String
        /// The delegate's GC config: the saved one without per-container keys, in the
        /// request's version, with the request's valid attachments.
        var config: [UInt8]
        var stale: [String]
    }

    private(set) var list: [Group] = []
    private let version: String
    private let validAttachments: JSONValue

    init(request r: CNIRequest) {
        version = r.cniVersion
        validAttachments = .array(r.validAttachments.map {
            ["containerID": .string($0.containerID), "ifname": .string($0.ifname)]
        })
    }

    /// Adds `config` (merged with an equal one already there) and its stale container.
    mutating func add(_ config: JSONValue, type: String, stale containerID: String?) {
        var c = config
        c["runtimeConfig"] = nil
        c["prevResult"] = nil
        c["cniVersion"] = .string(version)
        c["cni.dev/valid-attachments"] = validAttachments
        let bytes = c.serialized()
        if let i = list.firstIndex(where: { $0.config == bytes }) {
            if let containerID { list[i].stale.append(containerID) }
        } else {
            list.append(Group(type: type, config: bytes, stale: containerID.map { [$0] } ?? []))
        }
    }
}
