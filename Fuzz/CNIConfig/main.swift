// Fuzz target: a plugin's network config and a runtime's conflist, as read from stdin / disk.
// Any input must end in a value or a CNIError, never a trap; errors are expected here, so each
// `try?` below only discards the thrown CNIError the fuzzer provoked.

import CNI

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCNIConfig(_ data: UnsafeRawPointer, _ size: Int) -> CInt {
    let bytes = Array(UnsafeRawBufferPointer(start: data, count: size))
    if let config = try? NetworkConfig(bytes: bytes) {
        // Writing back what was accepted exercises the JSON writer too.
        _ = config.raw.serialized()
        _ = config.ipamType
    }
    _ = try? NetworkConfigList(bytes: bytes)
    _ = try? NetworkConfigList(single: bytes)
    return 0
}
