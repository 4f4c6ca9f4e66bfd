// What an atomic write leaves behind when its process dies between creating the temporary
// file and renaming it (SIGKILL, OOM kill): `<name>.tmp.<pid>.<thread>` beside the target.

extension Files {
    /// The name component `writeAtomically` puts between a target's name and the writer's pid.
    static let temporaryMarker = "tmp"

    /// The last component of `path`.
    public static func baseName(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return path }
        return String(path[path.index(after: slash)...])
    }

    /// Removes the temporary files of `writeAtomically` in `directory` whose names start with
    /// `namePrefix` and whose writer process is gone; a live writer's file stays. Returns the
    /// names removed. A missing directory holds none.
    @discardableResult
    public static func removeAbandonedTemporaries(in directory: String, namePrefix: String) throws(SystemError) -> [String] {
        var removed: [String] = []
        for name in try listIfPresent(directory) where name.hasPrefix(namePrefix) {
            let parts = name.split(separator: ".", omittingEmptySubsequences: false)
            // "<target>.tmp.<pid>.<thread>"; a name without a pid there is not ours to remove.
            guard parts.count >= 3, parts[parts.count - 3] == temporaryMarker,
                  let pid = Int32(parts[parts.count - 2]), !ProcessStat.isAlive(pid: pid, startTime: nil) else { continue }
            try remove(directory + "/" + name)
            removed.append(name)
        }
        return removed
    }
}
