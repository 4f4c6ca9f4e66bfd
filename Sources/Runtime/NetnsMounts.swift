// A container's network namespace outlives its processes as a bind mount of
// /proc/PID/ns/net on `containers/NAME/netns`, which CNI plugins are given as CNI_NETNS.

import Glibc
import SystemKit

enum NetnsMounts {
    /// Bind-mounts `source` (e.g. /proc/PID/ns/net) on a new empty file `target`.
    static func bind(_ source: String, on target: String) throws(SystemError) {
        let fd = try FileDescriptor.open(target, [.create, .exclusive, .noFollow], permissions: 0o444)
        try fd.close()
        if mount(source, target, "none", UInt(MS_BIND), nil) != 0 {
            let error = SystemError(operation: "bind mount \(source) on", object: target, errno: .current)
            // The mount's failure is what is reported; the empty file only goes with it.
            ignoringFailure { unlink(target) }
            throw error
        }
    }

    /// Lazily unmounts `target` (no error when nothing is mounted there) and removes the file.
    static func unmountAndRemove(_ target: String) throws(SystemError) {
        if umount2(target, Int32(MNT_DETACH)) != 0 {
            let e = Errno.current
            // EINVAL: nothing mounted there; ENOENT: not even the file.
            if e != .invalidArgument && e != .noSuchFileOrDirectory {
                throw SystemError(operation: "umount", object: target, errno: e)
            }
        }
        try Files.remove(target)
    }
}
