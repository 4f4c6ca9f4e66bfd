// The loopback plugin: `lo` up in the container's netns on ADD, down on DEL, verified on CHECK.

import CNI
import Netlink
import NetTypes
import PluginKit
import SystemKit

public struct Loopback: CNIPlugin {
    public init() {}

    public func add(_ r: CNIRequest) throws -> CNIResult {
        let netns = try r.requireNetns()
        return try CNIError.mapping("loopback ADD") {
            let sock = try RouteSocket(namespace: netns)
            let lo = try sock.requireLink(named: "lo")
            if !lo.isUp { try sock.setUp(lo.index) }
            // Chained after another plugin, pass its result on unchanged (as the reference does).
            if let prev = r.prevResult { return prev }
            // Report lo and its addresses as the reference plugin does.
            var result = CNIResult(cniVersion: r.cniVersion)
            result.interfaces = [.init(name: "lo", mac: MACAddress.zero, sandbox: netns)]
            let addrs = try sock.addresses(index: lo.index)
            result.ips = addrs.map { CNIResult.IPConfig(address: $0.address, interface: 0) }
            return result
        }
    }

    public func del(_ r: CNIRequest) throws {
        // Nothing to undo when the netns is already gone (spec: DEL tolerates it).
        guard !netnsIsGone(r.netns), let netns = r.netns else { return }
        do {
            let sock = try RouteSocket(namespace: netns)
            guard let lo = try sock.link(named: "lo"), lo.isUp else { return }
            try sock.setDown(lo.index)
        } catch let e as SystemError where e.isNamespaceGone {
            return  // removed between the check above and the open
        } catch {
            throw CNIError.wrapping(error, context: "loopback DEL")
        }
    }

    public func check(_ r: CNIRequest) throws {
        let netns = try r.requireNetns()
        let lo = try CNIError.mapping("loopback CHECK") { try RouteSocket(namespace: netns).requireLink(named: "lo") }
        guard lo.isUp else {
            throw CNIError(code: .internal, msg: "loopback CHECK: lo in \(netns) is down (expected up after ADD)")
        }
    }
}

extension Loopback {
    /// What `loopback` prints when run without CNI_COMMAND (its own executable and its
    /// multi-call name alike).
    public static var about: String { "netlab loopback plugin: brings lo up in the container netns" }
}
