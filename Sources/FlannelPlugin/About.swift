extension Flannel {
    /// What the executable prints when run without CNI_COMMAND (its own and netlab-cni's).
    public static let about = "netlab flannel plugin: the overlay daemon's subnet.env (overlayd or flanneld) delegated to bridge + host-local"
}
