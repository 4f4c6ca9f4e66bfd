// The duplicate address detection state of an IPv6 address, from its IFA_F_* flags.

extension InterfaceAddress {
    /// IFA_F_DADFAILED and IFA_F_TENTATIVE (linux/if_addr.h).
    static let dadFailedFlag: UInt32 = 0x08
    static let tentativeFlag: UInt32 = 0x40

    /// Duplicate address detection still runs: the address is not usable yet.
    public var isTentative: Bool { flags & Self.tentativeFlag != 0 && !hasFailedDAD }
    /// Duplicate address detection found another node using the address.
    public var hasFailedDAD: Bool { flags & Self.dadFailedFlag != 0 }
}
