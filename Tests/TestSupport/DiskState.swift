// State plugins keep on disk, read back so that an unreadable directory fails the test
// instead of reading as "nothing reserved".

import SystemKit

/// host-local's reservation files (`<dataDir>/<network>/<ip>`), without its `lock` and
/// `last_reserved_ip.*` files; [] while the network's directory does not exist yet. Throws
/// when the data directory itself is missing or unreadable (the test made it, so that is a
/// broken test world, not an empty one).
public func hostLocalReservations(dataDir: String, network: String) throws(SystemError) -> [String] {
    _ = try Files.list(dataDir)
    return try Files.listIfPresent(dataDir + "/" + network)
        .filter { !$0.hasPrefix("last_reserved_ip") && $0 != "lock" }
}
