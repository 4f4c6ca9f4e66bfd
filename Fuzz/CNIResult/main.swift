// Fuzz target: a plugin's result (prevResult, a delegate's stdout, a cached result) and its
// conversion to every spec version. Errors are expected; each `try?` only discards the thrown
// CNIError the fuzzer provoked.

import CNI

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCNIResult(_ data: UnsafeRawPointer, _ size: Int) -> CInt {
    let bytes = Array(UnsafeRawBufferPointer(start: data, count: size))
    guard let result = try? CNIResult.decode(bytes) else { return 0 }
    for version in CNIVersion.supported {
        if let converted = try? result.converted(to: version) {
            _ = try? converted.encoded()
        }
        _ = try? result.encoded(version: version)
    }
    return 0
}
