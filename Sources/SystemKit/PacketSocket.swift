// A link-layer datagram socket (AF_PACKET, SOCK_DGRAM) bound to one interface and one
// EtherType: the kernel adds the Ethernet header on send and strips it on receive. Like every
// socket it stays in the network namespace it was opened in, so open it inside the
// interface's namespace (`Namespaces.run`) and use it from any thread.

import CNetlabShims
import Glibc

public final class PacketSocket: @unchecked Sendable {
    public let interfaceIndex: Int32
    public let etherType: UInt16
    private let owned: OwnedDescriptor

    /// Opens the socket and binds it to `interfaceIndex` for frames of `etherType`.
    public init(interfaceIndex: Int32, etherType: UInt16) throws(SystemError) {
        self.interfaceIndex = interfaceIndex
        self.etherType = etherType
        let fd = try syscall("socket(AF_PACKET)", "ifindex \(interfaceIndex) ethertype 0x\(String(etherType, radix: 16))") {
            netlab_packet_socket(interfaceIndex, etherType)
        }
        owned = OwnedDescriptor(rawValue: fd)
    }

    /// Sends `payload` to the link-layer address `destination` (6 bytes on Ethernet).
    public func send(_ payload: [UInt8], to destination: [UInt8]) throws(SystemError) {
        let (fd, index, type) = (owned.rawValue, interfaceIndex, etherType)
        try syscall("sendto(AF_PACKET)", "ifindex \(interfaceIndex)") {
            payload.withUnsafeBytes { bytes in
                destination.withUnsafeBufferPointer {
                    netlab_packet_sendto(fd, bytes.baseAddress, bytes.count, index, type, $0.baseAddress, Int32($0.count))
                }
            }
        }
    }

    /// The next datagram (without its Ethernet header), waiting at most `timeout`; nil when
    /// none arrived in time.
    public func receive(timeout: Duration, maxLength: Int = 2048) throws(SystemError) -> [UInt8]? {
        let fd = owned.rawValue
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let (seconds, attoseconds) = timeout.components
        let milliseconds = Int32(clamping: max(0, seconds * 1000 + attoseconds / Self.attosecondsPerMillisecond))
        let ready = try syscall("poll", "ifindex \(interfaceIndex)") { poll(&pfd, 1, milliseconds) }
        guard ready > 0 else { return nil }
        var buffer = [UInt8](repeating: 0, count: maxLength)
        let n = try syscall("recv(AF_PACKET)", "ifindex \(interfaceIndex)") {
            buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
        }
        return Array(buffer.prefix(n))
    }

    static let attosecondsPerMillisecond: Int64 = 1_000_000_000_000_000
}
