// The suite's `bridge`-family table: link-layer filtering (the bridge plugin's macspoofchk)
// cannot live in `inet netlab`, which sees no Ethernet frames. Same rules as the inet table:
// only the suite writes it, and every element carries its `ElementOwner` comment.

import NFTables

extension SuiteFirewall {
    /// `table bridge netlab`.
    public static let bridgeTable = Table(family: .bridge, name: "netlab")
}
