// The flannel meta plugin (flannel-io/cni-plugin's contract): ADD reads the overlay daemon's
// subnet.env, builds a delegate config (bridge + host-local on this host's subnet, the
// overlay MTU, routes to the cluster network), saves it per container and runs the delegate;
// DEL, CHECK and GC run the delegate with the saved copy, so they never need subnet.env.

import CNI
import SystemKit

public struct Flannel: CNIPlugin {
    public init() {}

    /// ADD: the delegate config is saved before the delegate runs (a crash in between leaves
    /// DEL something to undo); when the delegate fails, the saved file goes back to what it
    /// was (none, or an earlier ADD's). Returns the delegate's result.
    public func add(_ r: CNIRequest) throws -> CNIResult {
        let conf = try r.pluginConfig(FlannelConfig.self)
        let host = try HostSubnets.load(conf.subnetFile)
        let delegate = try conf.delegateConfig(for: host)
        let bytes = delegate.serialized()
        let store = SavedDelegates(directory: conf.dataDir)
        let previous = try store.raw(r.containerID)
        try store.save(r.containerID, bytes)
        do {
            return try Delegate.add(type: Self.type(of: delegate), config: bytes, request: r)
        } catch {
            var failures: [any Error] = [error]
            do { try store.restore(r.containerID, to: previous) } catch { failures.append(error) }
            guard let combined = CNIError.combining(failures, context: "flannel ADD") else { throw error }
            throw combined
        }
    }

    /// DEL: the delegate's DEL with the saved config, then the file goes. No saved config (no
    /// ADD, a second DEL) is nothing to undo. A failed delegate DEL keeps the file for a retry.
    public func del(_ r: CNIRequest) throws {
        let conf = try r.pluginConfig(FlannelConfig.self)
        let store = SavedDelegates(directory: conf.dataDir)
        guard let saved = try store.load(r.containerID) else { return }
        try Delegate.del(type: saved.type, config: saved.bytes, request: r)
        try store.remove(r.containerID)
    }

    /// CHECK: the delegate's CHECK with the saved config, in this request's version and with
    /// its `prevResult`. No saved config is code 3: the container was never added here.
    public func check(_ r: CNIRequest) throws {
        let conf = try r.pluginConfig(FlannelConfig.self)
        let store = SavedDelegates(directory: conf.dataDir)
        guard let saved = try store.load(r.containerID) else {
            throw CNIError.unknownContainer("flannel CHECK: container \(r.containerID) has no saved delegate config "
                                            + "in \(conf.dataDir) (it was not added, or was deleted)")
        }
        var config = saved.config
        config["cniVersion"] = .string(r.cniVersion)
        config["prevResult"] = r.config.raw["prevResult"]
        try Delegate.check(type: saved.type, config: config.serialized(), request: r)
    }

    /// The delegate plugin of a built config (`delegateConfig` always sets a string `type`).
    static func type(of delegate: JSONValue) -> String {
        delegate["type"]?.stringValue ?? FlannelConfig.defaultDelegateType
    }
}
