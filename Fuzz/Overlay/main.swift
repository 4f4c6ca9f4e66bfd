// Fuzz target: the overlay's documents as read from the store and from disk: the network
// config JSON, a lease's JSON, a lease key, and subnet.env. Errors are expected; each `try?`
// only discards the thrown FormatError the fuzzer provoked.

import Overlay

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOverlay(_ data: UnsafeRawPointer, _ size: Int) -> CInt {
    let bytes = Array(UnsafeRawBufferPointer(start: data, count: size))
    _ = try? NetworkConfig(json: bytes)
    _ = try? LeaseAttributes(json: bytes)
    let text = String(decoding: bytes, as: UTF8.self)
    _ = SubnetKey(text: text)
    if let env = try? SubnetEnv(text: text) {
        _ = (env.text, env.missingKeys)
    }
    return 0
}
