// Where reservations live: a small protocol, the reference-compatible disk backend and an
// in-memory fake for unit tests.

import Glibc
import NetTypes
import SystemKit

/// A container's interface on a network: the key every reservation is held under.
public struct AttachmentID: Hashable, Sendable, CustomStringConvertible {
    public var containerID: String
    public var ifName: String

    public init(containerID: String, ifName: String) {
        self.containerID = containerID
        self.ifName = ifName
    }

    public var description: String { "container \(containerID) interface \(ifName)" }
}

/// One reserved address and who holds it. `ifName` is nil for files written by old
/// plugin versions that stored only the container ID.
public struct Reservation: Hashable, Sendable {
    public var address: IPAddress
    public var containerID: String
    public var ifName: String?

    public init(address: IPAddress, containerID: String, ifName: String?) {
        self.address = address
        self.containerID = containerID
        self.ifName = ifName
    }

    /// True when the reservation was made for exactly this attachment.
    public func isExactly(_ a: AttachmentID) -> Bool { containerID == a.containerID && ifName == a.ifName }
    /// True for a legacy (container-ID-only) reservation of this attachment's container.
    public func isLegacy(of a: AttachmentID) -> Bool { ifName == nil && containerID == a.containerID }

    /// The reference file body: `containerID + "\r\n" + ifName` (just the ID for legacy ones).
    public var fileContents: String { ifName.map { containerID + "\r\n" + $0 } ?? containerID }

    /// Parses a reservation file body; surrounding white space is ignored, and a body
    /// without "\r\n" is a legacy reservation holding only the container ID.
    public init(address: IPAddress, fileContents: String) {
        let body = fileContents.trimmingWhitespace()
        self.address = address
        if let r = body.firstRange(of: "\r\n") {
            containerID = String(body[..<r.lowerBound]).trimmingWhitespace()
            ifName = String(body[r.upperBound...]).trimmingWhitespace()
        } else {
            containerID = body
            ifName = nil
        }
    }
}

/// Storage for reservations of one network. All calls except `withLock` are made while
/// the lock is held.
public protocol IPAMStore: AnyObject {
    /// Runs `body` holding the store's exclusive lock (across processes for the disk store).
    func withLock<T>(_ body: () throws -> T) throws -> T
    /// Records `ip` for `attachment` unless it is already taken (returns false then), and
    /// remembers it as the last address reserved in range set `rangeSetIndex`.
    func reserve(_ ip: IPAddress, for attachment: AttachmentID, rangeSetIndex: Int) throws -> Bool
    /// The last address reserved in range set `rangeSetIndex`, if recorded.
    func lastReservedIP(rangeSetIndex: Int) throws -> IPAddress?
    /// Forgets the reservation of `ip`; releasing a free address is not an error.
    func release(_ ip: IPAddress) throws
    /// Every reservation of the network.
    func reservations() throws -> [Reservation]
}

/// The in-memory store for unit tests. Not shared between threads.
public final class MemoryStore: IPAMStore {
    public private(set) var entries: [IPAddress: Reservation] = [:]
    public var lastReserved: [Int: IPAddress] = [:]

    public init(reservations: [Reservation] = [], lastReserved: [Int: IPAddress] = [:]) {
        for r in reservations { entries[r.address] = r }
        self.lastReserved = lastReserved
    }

    public func withLock<T>(_ body: () throws -> T) throws -> T { try body() }

    public func reserve(_ ip: IPAddress, for a: AttachmentID, rangeSetIndex: Int) throws -> Bool {
        guard entries[ip] == nil else { return false }
        entries[ip] = Reservation(address: ip, containerID: a.containerID, ifName: a.ifName)
        lastReserved[rangeSetIndex] = ip
        return true
    }

    public func lastReservedIP(rangeSetIndex: Int) throws -> IPAddress? { lastReserved[rangeSetIndex] }
    public func release(_ ip: IPAddress) throws { entries[ip] = nil }
    public func reservations() throws -> [Reservation] { entries.values.sorted { $0.address < $1.address } }
}

/// The reference plugin's on-disk layout: in `<dataDir>/<network>/` one file per reserved
/// address named after it, holding `containerID\r\nifName`; `last_reserved_ip.<set index>`
/// holding the last address handed out per range set; and `lock`, flock'ed exclusively
/// while the directory is read or changed. Files are created mode 0644 and never through a
/// symlink planted in the directory (O_EXCL/O_NOFOLLOW, and rename replaces a link itself).
public final class DiskStore: IPAMStore {
    public let directory: String
    public static let lastReservedPrefix = "last_reserved_ip."
    public static let lockFileName = "lock"
    /// The mode of reservation and state files, as the reference plugin writes them.
    static let fileMode: mode_t = 0o644
    /// The mode of the data directory and the network's directory, as the reference's.
    static let directoryMode: mode_t = 0o755

    /// Opens (creating) the directory of `network` under `dataDir`. A network name that
    /// could leave the data directory is rejected.
    public init(network: String, dataDir: String = IPAMConfig.defaultDataDir) throws {
        try DiskStore.validateNetworkName(network)
        guard !dataDir.isEmpty else { throw IPAMError.invalidConfig("dataDir is empty") }
        directory = DiskStore.directory(network: network, dataDir: dataDir)
        try storeCall { () throws(SystemError) in
            try Files.makeDirectories(directory, permissions: DiskStore.directoryMode)
            // A symlink planted in the network's place would carry every reservation elsewhere.
            if let st = try Files.linkStatus(directory), (st.st_mode & S_IFMT) == S_IFLNK {
                throw SystemError(operation: "open", object: directory, errno: .loop,
                                  message: "the network's state directory is a symlink; it is not followed")
            }
        }
    }

    /// `<dataDir>/<network>`, trailing slashes of `dataDir` dropped.
    public static func directory(network: String, dataDir: String) -> String {
        var base = dataDir
        while base.count > 1 && base.hasSuffix("/") { base.removeLast() }
        return (base == "/" ? "" : base) + "/" + network
    }

    /// Rejects names that are empty, "." or "..", or hold '/', NUL or other control characters.
    public static func validateNetworkName(_ name: String) throws {
        guard !name.isEmpty else {
            throw IPAMError.invalidConfig("network name is empty; set \"name\" in the network config")
        }
        guard name != ".", name != "..", !name.contains("/"),
              !name.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7f }) else {
            throw IPAMError.invalidConfig("network name \"\(name)\" is not usable as a directory name "
                + "(no '/', '.', '..' or control characters)")
        }
        guard name.utf8.count <= 255 else {
            throw IPAMError.invalidConfig("network name is longer than 255 bytes")
        }
    }

    func path(_ name: String) -> String { directory + "/" + name }

    public func withLock<T>(_ body: () throws -> T) throws -> T {
        let lock = try storeCall { () throws(SystemError) in try FileLock(path: path(DiskStore.lockFileName)) }
        defer { lock.unlock() }
        return try body()
    }

    public func reserve(_ ip: IPAddress, for a: AttachmentID, rangeSetIndex: Int) throws -> Bool {
        let contents = Reservation(address: ip, containerID: a.containerID.trimmingWhitespace(), ifName: a.ifName).fileContents
        let file = path(ip.description)
        guard try storeCall({ () throws(SystemError) in
            try Files.createExclusive(file, Array(contents.utf8), permissions: DiskStore.fileMode)
        }) else { return false }
        do {
            try Files.writeAtomically(path(DiskStore.lastReservedPrefix + String(rangeSetIndex)),
                                      Array(ip.description.utf8), permissions: DiskStore.fileMode)
        } catch {
            // Undo the reservation; if that fails too, the write error is still what counts.
            try? Files.remove(file)
            throw IPAMError.io(error)
        }
        return true
    }

    public func lastReservedIP(rangeSetIndex: Int) throws -> IPAddress? {
        let file = path(DiskStore.lastReservedPrefix + String(rangeSetIndex))
        guard let text = try storeCall({ () throws(SystemError) in try Files.readText(file) }) else { return nil }
        return IPAddress(text.trimmingWhitespace())
    }

    public func release(_ ip: IPAddress) throws {
        try storeCall { () throws(SystemError) in
            try Files.remove(path(ip.description))
            // A plugin killed while writing last_reserved_ip.N left its temporary file.
            try Files.removeAbandonedTemporaries(in: directory, namePrefix: DiskStore.lastReservedPrefix)
        }
    }

    public func reservations() throws -> [Reservation] {
        var out: [Reservation] = []
        for name in try storeCall({ () throws(SystemError) in try Files.list(directory) }) {
            guard let ip = IPAddress(name) else { continue }  // lock, last_reserved_ip.*, strays
            let body: String?
            do {
                body = try Files.readText(path(name))
            } catch {
                // An unreadable entry (e.g. a directory named like an address) holds no
                // reservation, as the reference skips it; its address still cannot be created.
                continue
            }
            guard let body else { continue }  // removed by hand while we listed
            out.append(Reservation(address: ip, fileContents: body))
        }
        return out.sorted { $0.address < $1.address }
    }
}

extension StringProtocol {
    /// Drops leading and trailing spaces, tabs, CR and LF.
    func trimmingWhitespace() -> String {
        let ws: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" || $0 == "\r\n" }
        guard let first = firstIndex(where: { !ws($0) }), let last = lastIndex(where: { !ws($0) }) else { return "" }
        return String(self[first...last])
    }
}
