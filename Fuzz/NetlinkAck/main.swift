// Fuzz target: the extended-ack reader, which walks attributes of an NLMSG_ERROR message whose
// lengths come from the kernel (here: from the fuzzer).

import SystemKit

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzNetlinkAck(_ data: UnsafeRawPointer, _ size: Int) -> CInt {
    // A copy of exactly `size` bytes, so AddressSanitizer sees any read past the message.
    let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 1)
    defer { copy.deallocate() }
    copy.copyMemory(from: UnsafeRawBufferPointer(start: data, count: size))
    _ = NetlinkWire.extendedAckMessage(UnsafeRawBufferPointer(copy))
    return 0
}
