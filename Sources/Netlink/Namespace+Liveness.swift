import CNetlabShims
#if canImport(Glibc)
import Glibc
#endif

extension NetworkNamespace {
    /// True when `path` (a /run/netns bind mount or /proc/<pid>/ns/net) refers to a live
    /// network namespace: an nsfs file, not a plain file left after its mount went away.
    public static func isLive(path: String) -> Bool {
        var type = 0
        guard netlab_fs_type(path, &type) == 0 else { return false }
        let nsfsMagic = 0x6e73_6673  // NSFS_MAGIC
        return type == nsfsMagic
    }
}
