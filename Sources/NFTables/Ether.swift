// Link-layer matches for `bridge`-family tables: `ether saddr` / `ether daddr` and
// `ether_addr` set keys, encoded as nft 1.0.6 encodes them:
//
//     ether saddr 02:00:00:00:00:01      [ payload load 6b @ link header + 6 => reg 1 ]
//                                        [ cmp eq reg 1 0x00000002 0x00000100 ]
//     iifname . ether saddr @allowed     [ meta load iifname => reg 1 ]
//                                        [ payload load 6b @ link header + 6 => reg 2 ]
//                                        [ lookup reg 1 set allowed ]
//
// An `ether_addr` key is 6 bytes in network order; in a concatenation it is padded to 8
// (the 4-byte register alignment), e.g. `ifname . ether_addr` keys are 16 + 8 bytes.

import NetTypes

extension Field {
    /// The link-layer header's destination (offset 0) or source (offset 6) address.
    func etherLoad(into reg: Register) -> Expression {
        .payload(base: .link, offset: self == .etherSaddr ? 6 : 0, length: 6, dreg: reg)
    }
}

extension KeyPart {
    /// `.mac` from text such as `02:11:22:33:44:55`; nil when it is not a MAC address.
    public static func mac(_ text: String) -> KeyPart? {
        MACAddress(text).map { .mac($0) }
    }
}

/// An `ether_addr` key component read back from the kernel (possibly padded to 8 bytes).
func decodeEther(_ b: [UInt8]) -> KeyPart {
    .mac(MACAddress(bytes: b.prefix(6)) ?? .zero)
}
