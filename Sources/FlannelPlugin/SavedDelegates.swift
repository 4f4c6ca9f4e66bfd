// The delegate configs ADD hands to the delegate, kept for DEL, CHECK and GC: one file per
// container, `<dataDir>/<containerID>`, holding exactly the JSON the delegate received
// (flannel-io/cni-plugin's layout, so either plugin can delete what the other added).
//
// The file is written before the delegate runs, so a DEL after a crash mid-ADD still finds
// what to undo; DEL never needs subnet.env, so it works after the daemon is gone. Files are
// written atomically with mode 0600 in a directory of mode 0700, and never read or written
// through a symlink.

import CNI
import Glibc
import SystemKit

/// One saved delegate config.
public struct SavedDelegate: Sendable {
    public var containerID: String
    /// The file's bytes: what the delegate got on stdin at ADD.
    public var bytes: [UInt8]
    public var config: JSONValue
    /// The delegate plugin (`type`).
    public var type: String
    /// The network it belongs to (`name`).
    public var network: String

    /// Reads a saved file; one that is not a config with a `type` is code 6 naming the file.
    init(containerID: String, bytes: [UInt8], file: String) throws(CNIError) {
        let config = try JSONValue.parse(bytes, what: "saved delegate config \(file)")
        guard let type = config["type"]?.stringValue, !type.isEmpty else {
            throw CNIError.decodingFailure("saved delegate config \(file) names no delegate \"type\"",
                                           details: "it was not written by the flannel plugin; remove it by hand")
        }
        self.containerID = containerID
        self.bytes = bytes
        self.config = config
        self.type = type
        network = config["name"]?.stringValue ?? ""
    }
}

/// The directory of saved delegate configs.
public struct SavedDelegates: Sendable {
    public let directory: String

    static let fileMode: mode_t = 0o600
    static let directoryMode: mode_t = 0o700

    public init(directory: String) { self.directory = directory }

    /// The file of one container. PluginMain validated the container ID already; it is checked
    /// again here because the name is joined to a directory (no "/", no leading ".").
    public func path(_ containerID: String) throws(CNIError) -> String {
        guard isValidCNIIdentifier(containerID) else {
            throw CNIError.invalidConfig("container ID \"\(containerID)\" could escape the data directory \(directory)")
        }
        return "\(directory)/\(containerID)"
    }

    /// The saved config of `containerID`, nil when there is none. A symlink in the file's
    /// place is refused (code 5, ELOOP), never followed.
    public func load(_ containerID: String) throws -> SavedDelegate? {
        let file = try path(containerID)
        guard let bytes = try readIfPresent(file) else { return nil }
        return try SavedDelegate(containerID: containerID, bytes: bytes, file: file)
    }

    /// The file's bytes as they are (nil when absent), whatever they hold.
    public func raw(_ containerID: String) throws -> [UInt8]? {
        try readIfPresent(path(containerID))
    }

    /// Replaces the file of `containerID` atomically (0600, fsynced with its directory),
    /// creating the directory (0700). A symlink in the file's place is replaced, not followed;
    /// a data directory that is a symlink is refused (code 5).
    public func save(_ containerID: String, _ bytes: [UInt8]) throws {
        let file = try path(containerID)
        try CNIError.mapping("save the delegate config \(file)") {
            try Files.makeDirectories(directory, permissions: Self.directoryMode)
            if let st = try Files.linkStatus(directory), (st.st_mode & S_IFMT) == S_IFLNK {
                throw SystemError(operation: "open", object: directory, errno: .loop,
                                  message: "the data directory is a symlink; it is not followed")
            }
            try Files.writeAtomically(file, bytes, permissions: Self.fileMode)
        }
    }

    /// Removes the file of `containerID`; a missing one is fine.
    public func remove(_ containerID: String) throws {
        let file = try path(containerID)
        try CNIError.mapping("remove the saved delegate config") { try Files.remove(file) }
    }

    /// Puts the file back as it was before a failed ADD: `previous`, or no file.
    public func restore(_ containerID: String, to previous: [UInt8]?) throws {
        if let previous { try save(containerID, previous) } else { try remove(containerID) }
    }

    /// Every saved config of `network` (GC). Entries that are not regular files, or do not
    /// hold a delegate config of this network, are not this network's to judge and are
    /// skipped; a missing directory holds none.
    public func all(network: String) throws -> [SavedDelegate] {
        let names = try CNIError.mapping("list the saved delegate configs") { try Files.listIfPresent(directory) }
        var out: [SavedDelegate] = []
        for name in names where isValidCNIIdentifier(name) {
            let file = "\(directory)/\(name)"
            let isRegular = try CNIError.mapping("read the saved delegate config") {
                try Files.linkStatus(file).map { ($0.st_mode & S_IFMT) == S_IFREG } ?? false
            }
            guard isRegular, let bytes = try readIfPresent(file) else { continue }
            // Another program's file in our directory: not ours to remove.
            guard let saved = try? SavedDelegate(containerID: name, bytes: bytes, file: file),
                  saved.network == network else { continue }
            out.append(saved)
        }
        return out
    }

    private func readIfPresent(_ file: String) throws -> [UInt8]? {
        try CNIError.mapping("read the saved delegate config") { try Files.readIfPresent(file, followSymlink: false) }
    }
}
