// The three places where a vxlan network learns about the other hosts, each behind a small
// protocol. With `"peers": "static"` they are answered from the configuration alone; with
// `"peers": "overlayd"` they will be answered by the local overlayd over its unix socket
// (peers from the overlay's leases, endpoint records for ARP/FDB suppression on every host,
// a per-host slice of the subnet held as a lease). That integration is not built yet:
// `Backends.make` refuses "overlayd" for ADD/CHECK and reports STATUS as not available.

import CNI
import NetTypes
import PluginKit

/// The VTEP addresses of the other hosts of the network.
public protocol PeerSource {
    /// Every peer VTEP now; this host's own addresses may be among them (they are skipped).
    func peers() throws -> [IPAddress]
}

/// One container's endpoint on the network, as the other hosts need it to answer ARP/NDP for
/// it and to send its frames straight to this host's VTEP.
public struct Endpoint: Sendable, Hashable {
    public var owner: ElementOwner
    public var addresses: [IPAddress]
    public var mac: MACAddress
}

/// Tells the other hosts about this host's endpoints. DEL withdraws what ADD published.
public protocol EndpointPublisher {
    func publish(_ endpoint: Endpoint) throws
    /// Withdraws the record of `owner`; one that was never published is no error.
    func withdraw(_ owner: ElementOwner) throws
}

/// The address range this host allocates from: the request as given (static mode, where
/// the configuration's own `rangeStart`/`rangeEnd` keep the hosts apart), or one whose
/// `ipam` section names the host's leased slice of the subnet.
public protocol AddressSlice {
    func request(for r: CNIRequest) throws -> CNIRequest
}

/// `remotes` as configured.
public struct StaticPeers: PeerSource {
    public var remotes: [IPAddress]
    public func peers() throws -> [IPAddress] { remotes }
}

/// Static mode publishes nothing: every host floods unknown unicast to its peers and learns
/// where a MAC lives from the frames it receives.
public struct NoEndpointPublisher: EndpointPublisher {
    public func publish(_ endpoint: Endpoint) throws {}
    public func withdraw(_ owner: ElementOwner) throws {}
}

/// Static mode's IPAM request: the configuration's, unchanged.
public struct ConfiguredRange: AddressSlice {
    public func request(for r: CNIRequest) throws -> CNIRequest { r }
}

/// The backends of one request.
public struct Backends {
    public var peers: any PeerSource
    public var publisher: any EndpointPublisher
    public var slice: any AddressSlice

    /// The backends `conf` asks for. `"peers": "overlayd"` is refused for ADD and CHECK
    /// (code 7 naming `peers`) and is not ready for STATUS (code 50) until the overlayd
    /// integration exists; DEL and GC get the no-op backends, since no ADD can have
    /// published anything.
    public static func make(_ conf: VxlanConfig, for command: CNICommand) throws(CNIError) -> Backends {
        let none = Backends(peers: StaticPeers(remotes: conf.remotes), publisher: NoEndpointPublisher(),
                            slice: ConfiguredRange())
        guard conf.peers == .overlayd else { return none }
        switch command {
        case .del, .gc, .version:
            return none
        case .status:
            throw CNIError(code: .notAvailable, msg: "vxlan STATUS: \"peers\": \"overlayd\" needs the overlayd endpoint API, which this build does not have")
        case .add, .check:
            throw CNIError.invalidConfig("peers: \"overlayd\" is not available in this build (no overlayd endpoint API); list the peer VTEPs in \"remotes\"")
        }
    }
}
