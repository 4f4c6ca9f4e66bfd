extension Vxlan {
    /// What the executable prints when run without CNI_COMMAND (its own and netlab-cni's).
    public static let about = "netlab vxlan plugin: one L2 segment across hosts (a bridge with a VXLAN device per network), veths like bridge, IPAM"
}
