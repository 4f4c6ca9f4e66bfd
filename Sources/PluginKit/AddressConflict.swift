// Is another node on the segment using this container's IPv4 address? Asked the way RFC 5227
// does it: an ARP probe from the container's interface — a request for the address with
// sender IP 0.0.0.0, so no node's ARP cache learns anything from it — and any ARP packet
// that comes back with that address as its sender IP and another MAC is the other holder
// (Linux answers such probes for its own addresses). Only an active probe is reliable: a
// neighbour table holds only the addresses someone happened to talk to, and never an entry
// for the table owner's own address.

import NetTypes
import SystemKit

public enum AddressConflict {
    /// Another node answering for one of the probed addresses.
    public struct Conflict: Sendable, Hashable, CustomStringConvertible {
        public var address: IPAddress
        public var mac: MACAddress
        public var description: String { "\(address) is also used by \(mac)" }
    }

    /// Probes each IPv4 address of `addresses` from the interface `index` (whose own MAC is
    /// `mac`) in the netns at `netns`: `attempts` rounds, each waiting `wait` for answers,
    /// stopping after the first round that found a conflict. Returns the conflicts found.
    public static func probe(_ addresses: [IPAddress], interface index: Int32, mac: MACAddress, netns: String,
                             attempts: Int = defaultAttempts, wait: Duration = defaultWait) throws -> [Conflict] {
        let targets = Set(addresses.filter(\.isV4))
        guard !targets.isEmpty else { return [] }
        let socket = try Namespaces.run(inNetworkNamespaceAt: netns) {
            try PacketSocket(interfaceIndex: index, etherType: etherTypeARP)
        }
        var found = Set<Conflict>()
        for _ in 0..<attempts where found.isEmpty {
            for target in targets.sorted() { try socket.send(probe(for: target, from: mac), to: MACAddress.broadcast.bytes) }
            let deadline = ContinuousClock.now + wait
            while ContinuousClock.now < deadline {
                guard let packet = try socket.receive(timeout: deadline - ContinuousClock.now) else { break }
                if let c = conflict(in: packet, targets: targets, ownMAC: mac) { found.insert(c) }
            }
        }
        return found.sorted { $0.address < $1.address }
    }

    /// Three probes, as RFC 5227 sends, 150 ms apart: a CHECK stays under half a second when
    /// nobody answers, far longer than a reply takes across an overlay of hosts.
    public static let defaultAttempts = 3
    public static let defaultWait: Duration = .milliseconds(150)

    // MARK: the ARP packet (RFC 826), without its Ethernet header

    static let etherTypeARP: UInt16 = 0x0806
    static let hardwareEthernet: UInt16 = 1
    static let protocolIPv4: UInt16 = 0x0800
    static let operationRequest: UInt16 = 1
    static let packetLength = 28

    /// An ARP probe for `target`: a request with sender IP 0.0.0.0 and target MAC zero.
    static func probe(for target: IPAddress, from mac: MACAddress) -> [UInt8] {
        var p: [UInt8] = []
        p += bytes(hardwareEthernet) + bytes(protocolIPv4) + [6, 4] + bytes(operationRequest)
        p += mac.bytes + IPAddress.v4Any.bytes
        p += MACAddress.zero.bytes + target.bytes
        return p
    }

    /// The conflict an ARP packet shows: its sender IP is one of `targets` and its sender MAC
    /// is not ours. nil for anything else (our own probes, other traffic, short packets).
    static func conflict(in packet: [UInt8], targets: Set<IPAddress>, ownMAC: MACAddress) -> Conflict? {
        guard packet.count >= packetLength,
              packet[0..<2] == bytes(hardwareEthernet)[...], packet[2..<4] == bytes(protocolIPv4)[...],
              packet[4] == 6, packet[5] == 4,
              let sender = MACAddress(bytes: packet[8..<14]), let senderIP = IPAddress(bytes: packet[14..<18]),
              targets.contains(senderIP), sender != ownMAC else { return nil }
        return Conflict(address: senderIP, mac: sender)
    }

    private static func bytes(_ v: UInt16) -> [UInt8] { [UInt8(v >> 8), UInt8(v & 0xFF)] }
}
