// Fuzz target: the address, CIDR and range parsers (NetTypes) and host-local's range-set
// validation (IPAM), fed as text and as an `ipam` JSON object. Errors are expected; each
// `try?` only discards the thrown error the fuzzer provoked.

import CNI
import IPAM
import NetTypes

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCIDR(_ data: UnsafeRawPointer, _ size: Int) -> CInt {
    let bytes = Array(UnsafeRawBufferPointer(start: data, count: size))
    let text = String(decoding: bytes, as: UTF8.self)
    if let cidr = CIDR(text) {
        _ = (cidr.network, cidr.lastAddress, cidr.broadcastAddress, cidr.size, cidr.netmask)
        _ = cidr.description
    }
    _ = IPAddress(text)
    // Three fields of one range, split at newlines, through the same validation as host-local.
    let fields = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    if fields.count >= 2 {
        let range = RangeConfig(subnet: fields[0], rangeStart: fields[1],
                                rangeEnd: fields.count > 2 ? fields[2] : nil,
                                gateway: fields.count > 3 ? fields[3] : nil)
        _ = try? RangeSet([range], index: 0)
    }
    if let json = try? JSONValue.parse(bytes), let config = try? json.decode(IPAMConfig.self) {
        _ = try? IPAMSettings(config)
    }
    return 0
}
