// Fuzz target: the nft set-element decoder (key/data bytes by data type, the comment TLV in
// an element's userdata), fed bytes directly; no socket is involved. The module is built with
// -enable-testing for this target, since the decoder is internal.

@testable import NFTables

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzNFTElements(_ data: UnsafeRawPointer, _ size: Int) -> CInt {
    let bytes = Array(UnsafeRawBufferPointer(start: data, count: size))
    guard let selector = bytes.first else { return 0 }
    let payload = Array(bytes.dropFirst())
    // The first byte picks a concatenation of one to three data types, as a set's key type is.
    let all = DataType.allCases
    let count = Int(selector >> 6) % 3 + 1
    let types = (0..<count).map { all[(Int(selector) >> ($0 * 2) + $0) % all.count] }
    _ = decodeParts(payload, types)
    _ = commentFromTLV(payload)
    return 0
}
