// Kernel features some tests need, probed inside a test netns. A probe tells "the kernel
// refuses this" apart from "the tool failed": only the first makes a test take its
// feature-less path or skip, the second fails the test like any other broken read.

public enum KernelFeatures {
    /// What `ip` prints when the kernel answers EOPNOTSUPP.
    static let refusedText = "Operation not supported"

    /// Whether bridges can filter VLANs (CONFIG_BRIDGE_VLAN_FILTERING), probed by creating
    /// and removing a VLAN-filtering bridge in `netns`. Throws when `ip` fails for any other
    /// reason than the kernel refusing such a bridge.
    public static func bridgeVLANFiltering(in netns: String) throws(CommandFailure) -> Bool {
        let probe = "nlvfprobe"
        let r = runCommand(["ip", "-n", netns, "link", "add", probe, "type", "bridge", "vlan_filtering", "1"])
        if r.ok {
            try runChecked(["ip", "-n", netns, "link", "del", probe])
            return true
        }
        guard r.stderr.contains(refusedText) else { throw CommandFailure(r, "failed, and not because the kernel lacks the feature") }
        return false
    }

    /// Why a test that needs bridge VLAN filtering cannot run here (for its XCTSkip message).
    public static let noBridgeVLANFiltering =
        "this kernel has no bridge VLAN filtering (ip: \"RTNETLINK answers: \(refusedText)\" for a vlan_filtering bridge)"
}
