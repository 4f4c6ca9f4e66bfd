// Resolving paths: the canonical form of a path, symlinks followed.

import Glibc

extension Files {
    /// The canonical absolute path of `path`: symlinks, "." and ".." resolved (realpath(3)).
    public static func realPath(_ path: String) throws(SystemError) -> String {
        guard let p = realpath(path, nil) else {
            throw SystemError(operation: "realpath", object: path, errno: .current)
        }
        defer { free(p) }
        return String(cString: p)
    }
}
