// Fuzz target: the CNI_ARGS parser ("K=V;K2=V2"). Errors are expected; `try?` only discards
// the thrown CNIError the fuzzer provoked.

import CNI

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCNIArgs(_ data: UnsafeRawPointer, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeRawBufferPointer(start: data, count: size), as: UTF8.self)
    _ = try? CNIRequest.parseArgs(text)
    return 0
}
