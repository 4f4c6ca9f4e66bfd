// What ADD changed, as it was before: kept on disk between ADD and DEL, one file per
// attachment, `<dataDir>/<containerID>_<ifname>.json`, in the reference plugin's format
// (`mac`, `promisc`, `mtu`, `allmulti`, `txQLen`) plus `sysctl` (path below /proc/sys:
// original value), `ifName` (the name the interface was given) and `network` (for GC),
// which the reference neither saves nor reads; its readers ignore those keys.
//
// The file is written atomically with mode 0600 before anything is changed, so DEL can put
// back whatever a crashed ADD got to. It is never read or written through a symlink.

import CNI
import NetTypes
import Glibc
import SystemKit

/// The saved originals of one attachment.
public struct Originals: Equatable, Sendable {
    public var mac: MACAddress?
    public var promisc: Bool?
    public var mtu: UInt32?
    public var allmulti: Bool?
    public var txQueueLength: UInt32?
    /// Path below /proc/sys -> value before ADD.
    public var sysctls: [String: String] = [:]
    /// The name ADD gave the interface (it is `CNI_IFNAME` again after DEL).
    public var renamedTo: String?
    /// The network of the attachment, so GC of one network never touches another's files.
    public var network: String?

    public init() {}

    /// Fills in what is not saved yet (a repeated ADD keeps the first ADD's originals).
    mutating func merge(missingFrom other: Originals) {
        mac = mac ?? other.mac
        promisc = promisc ?? other.promisc
        mtu = mtu ?? other.mtu
        allmulti = allmulti ?? other.allmulti
        txQueueLength = txQueueLength ?? other.txQueueLength
        renamedTo = renamedTo ?? other.renamedTo
        network = network ?? other.network
        for (k, v) in other.sysctls where sysctls[k] == nil { sysctls[k] = v }
    }

    var json: JSONValue {
        var o: [String: JSONValue] = [:]
        if let mac { o["mac"] = .string(mac.description) }
        if let promisc { o["promisc"] = .bool(promisc) }
        if let mtu { o["mtu"] = .number(Double(mtu)) }
        if let allmulti { o["allmulti"] = .bool(allmulti) }
        if let txQueueLength { o["txQLen"] = .number(Double(txQueueLength)) }
        if !sysctls.isEmpty { o["sysctl"] = .object(sysctls.mapValues { .string($0) }) }
        if let renamedTo { o["ifName"] = .string(renamedTo) }
        if let network { o["network"] = .string(network) }
        return .object(o)
    }

    /// The fields of the file as written; a field of the wrong type is an error.
    struct Fields: Decodable {
        var mac: String?
        var promisc: Bool?
        var mtu: UInt32?
        var allmulti: Bool?
        var txQLen: UInt32?
        var sysctl: [String: String]?
        var ifName: String?
        var network: String?
    }

    init(json: JSONValue, file: String) throws(CNIError) {
        let f = try json.decode(Fields.self, what: file)
        if let t = f.mac, !t.isEmpty {
            guard let m = MACAddress(t) else { throw CNIError.decodingFailure("\(file): invalid mac \"\(t)\"") }
            mac = m
        }
        promisc = f.promisc
        // 0 is the reference's "not saved".
        mtu = f.mtu == 0 ? nil : f.mtu
        allmulti = f.allmulti
        txQueueLength = f.txQLen
        sysctls = f.sysctl ?? [:]
        renamedTo = f.ifName
        network = f.network
    }
}

/// The directory of saved originals.
public struct OriginalsStore: Sendable {
    public let directory: String

    public init(directory: String) { self.directory = directory }

    /// The file of one attachment. Container ID and interface name were validated by
    /// PluginMain (no "/", no leading "."), so the name stays inside the directory.
    public func path(containerID: String, ifName: String) -> String {
        "\(directory)/\(containerID)_\(ifName)\(Self.fileSuffix)"
    }

    /// The saved originals, or nil when there are none. A symlink in the file's place is
    /// refused (ELOOP), never followed.
    public func load(containerID: String, ifName: String) throws -> Originals? {
        let file = path(containerID: containerID, ifName: ifName)
        guard let fd = try Self.openIfPresent(file) else { return nil }
        let bytes = try fd.closeAfter { () throws(SystemError) in try fd.readAll(context: file) }
        return try Originals(json: JSONValue.parse(bytes, what: file), file: file)
    }

    /// Opens `file` for reading without following a symlink in its place: a symlink is
    /// ELOOP, thrown, so a planted link is reported instead of read.
    private static func openIfPresent(_ file: String) throws(SystemError) -> FileDescriptor? {
        do {
            return try FileDescriptor.open(file, [.readOnly, .noFollow])
        } catch where error.errno == .noSuchFileOrDirectory {
            return nil
        }
    }

    /// Writes the originals atomically with mode 0600 (a symlink in the file's place is
    /// replaced, not followed), creating the directory (0700) when missing. A symlink in the
    /// directory's place is refused.
    public func save(_ o: Originals, containerID: String, ifName: String) throws {
        try Files.makeDirectories(directory, permissions: Self.directoryMode)
        if let st = try Files.linkStatus(directory), (st.st_mode & S_IFMT) == S_IFLNK {
            throw SystemError(operation: "open", object: directory, errno: .loop,
                              message: "the data directory is a symlink; it is not followed")
        }
        try Files.writeAtomically(path(containerID: containerID, ifName: ifName), o.json.serialized(pretty: true),
                                  permissions: Self.fileMode)
    }

    /// Removes the attachment's file; a missing one is fine.
    public func remove(containerID: String, ifName: String) throws {
        try Files.remove(path(containerID: containerID, ifName: ifName))
    }

    /// GC: the files of `network`'s attachments that are not in `valid`. Files of other
    /// networks, and files without a network (written by the reference plugin), are never
    /// stale. A missing directory holds none.
    public func stale(network: String, valid: [Attachment]) throws -> [String] {
        let keep = Set(valid.map { path(containerID: $0.containerID, ifName: $0.ifname) })
        var out: [String] = []
        for name in try Files.listIfPresent(directory) where name.hasSuffix(Self.fileSuffix) {
            let file = directory + "/" + name
            guard !keep.contains(file), let bytes = try Self.readIfRegular(file) else { continue }
            // A file that is not JSON of this shape was not written by this plugin: not ours to remove.
            guard let o = try? Originals(json: JSONValue.parse(bytes, what: file), file: file), o.network == network else { continue }
            out.append(file)
        }
        return out
    }

    /// The file's bytes, or nil when it is gone or is not a regular file (a symlink is
    /// never followed).
    private static func readIfRegular(_ file: String) throws(SystemError) -> [UInt8]? {
        guard let st = try Files.linkStatus(file), (st.st_mode & S_IFMT) == S_IFREG,
              let fd = try openIfPresent(file) else { return nil }
        return try fd.closeAfter { () throws(SystemError) in try fd.readAll(context: file) }
    }

    static let fileSuffix = ".json"
    static let fileMode: mode_t = 0o600
    static let directoryMode: mode_t = 0o700
}
