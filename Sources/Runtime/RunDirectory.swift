// The on-disk state of one (real or simulated) host's containers:
//
//   <run dir>/containers/<name>/state.json   ContainerRecord
//   <run dir>/containers/<name>/netns        bind mount of the container's /proc/<pid>/ns/net
//   <run dir>/containers/<name>/log          stdout+stderr of a detached container
//   <run dir>/containers/<name>/exit         exit code written by the container's init

import FoundationEssentials
import Glibc
import SystemKit

public struct RunDirectory: Sendable {
    public static let defaultPath = "/run/netlab"

    public let path: String

    public init(path: String) { self.path = path }

    /// `--run-dir`, else `$NETLAB_RUN_DIR`, else /run/netlab; with `--host H`, the simulated
    /// host's directory below it: `<base>/hosts/H`.
    public static func resolve(runDir: String?, host: String?, environment: [String: String]) throws -> RunDirectory {
        var base = runDir ?? environment["NETLAB_RUN_DIR"] ?? defaultPath
        if base.isEmpty { base = defaultPath }
        while base.count > 1 && base.hasSuffix("/") { base.removeLast() }
        if !base.hasPrefix("/") {
            var buf = [CChar](repeating: 0, count: 4096)
            if getcwd(&buf, buf.count) != nil {
                base = String(decoding: buf.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self) + "/" + base
            }
        }
        guard let host else { return RunDirectory(path: base) }
        guard ContainerRecord.isValidName(host) else { throw RuntimeError.invalidArgument("invalid host name \"\(host)\"") }
        return RunDirectory(path: base + "/hosts/" + host)
    }

    public var containersPath: String { path + "/containers" }
    public func containerPath(_ name: String) -> String { containersPath + "/" + name }
    public func statePath(_ name: String) -> String { containerPath(name) + "/state.json" }
    public func netnsPath(_ name: String) -> String { containerPath(name) + "/netns" }
    public func logPath(_ name: String) -> String { containerPath(name) + "/log" }
    public func exitPath(_ name: String) -> String { containerPath(name) + "/exit" }

    public func lockPath(_ name: String) -> String { containerPath(name) + "/lock" }

    /// Claims `name`: creates its directory, failing with `.nameInUse` (naming `remove`, the
    /// command that frees the name) if it exists.
    func claim(_ name: String, remove: String) throws {
        try Files.makeDirectories(containersPath)
        do {
            try Files.makeDirectory(containerPath(name), existingIsFine: false)
        } catch where error.kind == .exists {
            throw RuntimeError.nameInUse(name, remove: remove)
        }
    }

    /// Runs `body` holding the container's lock (`containers/NAME/lock`): every change of a
    /// container's state and network attachments (start, release, removal) takes it, so a
    /// reaper waking up never releases what a `start` has just attached. Nil when the
    /// container's directory is gone (removed meanwhile).
    func withLock<R>(_ name: String, _ body: () throws -> R) throws -> R? {
        let lock: FileLock
        do {
            lock = try FileLock(path: lockPath(name))
        } catch where error.kind == .notFound {
            return nil
        }
        defer { lock.unlock() }
        return try body()
    }

    func save(_ record: ContainerRecord) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        enc.dateEncodingStrategy = .iso8601
        try Files.writeAtomically(statePath(record.name), [UInt8](try enc.encode(record)) + [10])
    }

    func load(_ name: String) throws -> ContainerRecord {
        guard let record = try loadIfPresent(name) else { throw RuntimeError.noSuchContainer(name) }
        return record
    }

    /// The record of `name`, nil when its directory holds no state (yet: `run` claims the
    /// directory before it writes the state, and a crash in between leaves it so). A state
    /// file that cannot be read or decoded throws.
    func loadIfPresent(_ name: String) throws -> ContainerRecord? {
        guard ContainerRecord.isValidName(name), let bytes = try Files.readIfPresent(statePath(name)) else {
            return nil
        }
        do {
            return try RunDirectory.decode(bytes)
        } catch {
            throw RuntimeError.state("container \(name): unreadable \(statePath(name)): \(error)")
        }
    }

    static func decode(_ bytes: [UInt8]) throws -> ContainerRecord {
        let dec = JSONDecoder()
        dec.dateDecodingStrategy = .iso8601
        return try dec.decode(ContainerRecord.self, from: Data(bytes))
    }

    /// Names of every container directory, also those whose state is missing or broken.
    func names() throws -> [String] { try Files.listIfPresent(containersPath) }

    /// Every container whose state reads back. A directory without state, or with a state
    /// that does not decode, is skipped: it is no container (yet), and `rm -f NAME` or `gc`
    /// removes it by name.
    func records() throws -> [ContainerRecord] {
        try names().compactMap { name in
            do { return try loadIfPresent(name) } catch RuntimeError.state { return nil }
        }
    }

    /// Finds a container by name, or by a unique prefix of its id.
    func find(_ nameOrID: String) throws -> ContainerRecord {
        if let record = try loadIfPresent(nameOrID) { return record }
        let prefix = nameOrID.lowercased()
        let matches = try records().filter { $0.id.hasPrefix(prefix) }
        if nameOrID.count >= 3, matches.count == 1 { return matches[0] }
        throw RuntimeError.noSuchContainer(nameOrID)
    }

    /// The init's exit code as written by the init itself, with the time it was written; nil
    /// when the init wrote none (it was killed first).
    func recordedExit(_ name: String) throws -> (code: Int32, time: Date)? {
        let p = exitPath(name)
        guard let bytes = try Files.readIfPresent(p),
              let code = Int32(String(decoding: bytes.filter { $0 != 10 && $0 != 32 }, as: UTF8.self)),
              let st = try Files.status(p) else { return nil }
        let time = Double(st.st_mtim.tv_sec) + Double(st.st_mtim.tv_nsec) / 1e9
        return (code, Date(timeIntervalSince1970: time))
    }
}
