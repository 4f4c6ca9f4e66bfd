// host-local's verbs over a store: allocate one address per range set (round-robin, or
// exactly the requested one), release, check, garbage-collect, list.

import NetTypes

/// One address handed out: the address with its subnet's prefix length, the range's
/// gateway, and the index of the range set it came from.
public struct Allocation: Hashable, Sendable {
    public var address: CIDR
    public var gateway: IPAddress?
    public var rangeSetIndex: Int

    public init(address: CIDR, gateway: IPAddress?, rangeSetIndex: Int) {
        self.address = address
        self.gateway = gateway
        self.rangeSetIndex = rangeSetIndex
    }
}

/// How many addresses a range set can hand out and how many it has handed out.
public struct RangeSetUsage: Hashable, Sendable {
    public var rangeSetIndex: Int
    public var rangeSet: String
    public var allocatable: Int64
    public var reserved: Int64
    /// True when no address is left.
    public var isExhausted: Bool { reserved >= allocatable }
}

/// The host-local allocator for one network: validated settings plus a store.
public struct Allocator {
    public let settings: IPAMSettings
    public let store: any IPAMStore

    public init(settings: IPAMSettings, store: any IPAMStore) {
        self.settings = settings
        self.store = store
    }

    /// The allocator on the reference disk layout: `<settings.dataDir>/<network>`.
    public init(network: String, settings: IPAMSettings) throws {
        self.init(settings: settings, store: try DiskStore(network: network, dataDir: settings.dataDir))
    }

    /// Reserves one address in every range set for `containerID`/`ifName`. A requested
    /// address is taken exactly (each must lie in a different range set); the other sets
    /// hand out the next free address after their last reserved one. On any failure the
    /// addresses reserved by this call are released before the error is thrown.
    public func allocate(containerID: String, ifName: String, requested: [IPAddress] = []) throws -> [Allocation] {
        let (attachment, wanted) = try Allocator.validate(settings, containerID: containerID, ifName: ifName, requested: requested)
        return try allocate(attachment, wanted)
    }

    /// `allocate` for an attachment and requests `validate` accepted.
    func allocate(_ attachment: AttachmentID, _ wanted: [Int: IPAddress]) throws -> [Allocation] {
        try store.withLock {
            let existing = try store.reservations()
            var done: [Allocation] = []
            do {
                for (i, set) in settings.rangeSets.enumerated() {
                    done.append(try allocate(in: set, index: i, for: attachment, requested: wanted[i], existing: existing))
                }
            } catch {
                // Best-effort undo: the error that stopped the allocation is what the caller must see.
                for a in done { try? store.release(a.address.address) }
                throw error
            }
            return done
        }
    }

    private func allocate(in set: RangeSet, index: Int, for a: AttachmentID, requested: IPAddress?,
                          existing: [Reservation]) throws -> Allocation {
        if let ip = requested {
            let r = set.range(for: ip)!
            guard try store.reserve(ip, for: a, rangeSetIndex: index) else {
                let owner = existing.first { $0.address == ip }
                let who = owner.map { o in o.ifName.map { "container \(o.containerID) interface \($0)" }
                    ?? "container \(o.containerID)" } ?? "another container"
                throw IPAMError.addressInUse(address: ip, owner: who)
            }
            return Allocation(address: CIDR(address: ip, prefixLength: r.subnet.prefixLength)!,
                              gateway: r.gateway, rangeSetIndex: index)
        }
        // ADD twice for one attachment is an error in the spec; the reference refuses too.
        if let held = existing.first(where: { ($0.isExactly(a) || $0.isLegacy(of: a)) && set.contains($0.address) }) {
            throw IPAMError.alreadyAllocated(containerID: a.containerID, ifName: a.ifName, address: held.address)
        }
        // Only the round-robin start: an unreadable last_reserved_ip starts at the range's
        // beginning, as the reference does; exclusive creation still prevents double use.
        var cursor = RangeCursor(set: set, lastReserved: try? store.lastReservedIP(rangeSetIndex: index))
        while let (ip, r) = cursor.next() {
            if try store.reserve(ip, for: a, rangeSetIndex: index) {
                return Allocation(address: CIDR(address: ip, prefixLength: r.subnet.prefixLength)!,
                                  gateway: r.gateway, rangeSetIndex: index)
            }
        }
        throw IPAMError.rangeExhausted(rangeSetIndex: index, rangeSet: set.description,
                                       addressCount: set.allocatableCount)
    }

    /// Releases every address held by `containerID`/`ifName`. Files of old plugin versions
    /// that hold only the container ID are released when no exact match exists, as the
    /// reference does. Releasing twice, or what was never allocated, succeeds.
    @discardableResult
    public func release(containerID: String, ifName: String) throws -> [IPAddress] {
        let a = AttachmentID(containerID: containerID.trimmingWhitespace(), ifName: ifName)
        guard !a.containerID.isEmpty else { return [] }  // no file can belong to an empty ID
        return try store.withLock {
            let held = Allocator.held(by: a, in: try store.reservations())
            for r in held { try store.release(r.address) }
            return held.map(\.address)
        }
    }

    /// Verifies that `containerID`/`ifName` still holds an address in every range set;
    /// returns what it holds, or throws `.notAllocated` naming the first set without one.
    @discardableResult
    public func check(containerID: String, ifName: String) throws -> [Reservation] {
        let a = AttachmentID(containerID: containerID.trimmingWhitespace(), ifName: ifName)
        return try store.withLock {
            let held = Allocator.held(by: a, in: try store.reservations())
            for set in settings.rangeSets where !held.contains(where: { set.contains($0.address) }) {
                throw IPAMError.notAllocated(containerID: a.containerID, ifName: a.ifName, rangeSet: set.description)
            }
            return held
        }
    }

    /// Releases every address whose attachment is not in `validAttachments` (the CNI GC
    /// verb's `cni.dev/valid-attachments`). A legacy file (container ID only) is kept when
    /// any valid attachment has that container ID. Returns the released addresses.
    @discardableResult
    public func gc(validAttachments: [AttachmentID]) throws -> [IPAddress] {
        let valid = Set(validAttachments.map { AttachmentID(containerID: $0.containerID.trimmingWhitespace(), ifName: $0.ifName) })
        let validIDs = Set(valid.map(\.containerID))
        return try store.withLock {
            var released: [IPAddress] = []
            for r in try store.reservations() {
                let keep: Bool
                if let ifName = r.ifName {
                    keep = valid.contains(AttachmentID(containerID: r.containerID, ifName: ifName))
                } else {
                    keep = validIDs.contains(r.containerID)
                }
                if !keep {
                    try store.release(r.address)
                    released.append(r.address)
                }
            }
            return released
        }
    }

    /// Every reservation of the network, sorted by address.
    public func reservations() throws -> [Reservation] {
        try store.withLock { try store.reservations() }
    }

    /// How full each range set is: for the STATUS verb and for people.
    public func usage() throws -> [RangeSetUsage] {
        let all = try reservations()
        return settings.rangeSets.enumerated().map { i, set in
            let used = all.filter { r in set.range(for: r.address).map { !$0.isReserved(r.address) } ?? false }.count
            return RangeSetUsage(rangeSetIndex: i, rangeSet: set.description,
                                 allocatable: set.allocatableCount, reserved: Int64(used))
        }
    }

    static func held(by a: AttachmentID, in all: [Reservation]) -> [Reservation] {
        let exact = all.filter { $0.isExactly(a) }
        return exact.isEmpty ? all.filter { $0.isLegacy(of: a) } : exact
    }

    /// Checks an ADD's attachment and requested addresses against `settings` without touching
    /// the store, so a refused request is refused before the network's directory is made.
    /// Returns the attachment and the requested address of each range set (by index).
    static func validate(_ settings: IPAMSettings, containerID: String, ifName: String,
                         requested: [IPAddress]) throws -> (AttachmentID, [Int: IPAddress]) {
        let attachment = try attachment(containerID, ifName)
        var wanted: [Int: IPAddress] = [:]
        for ip in requested {
            guard let i = settings.rangeSetIndex(for: ip) else {
                let sets = settings.rangeSets.map { "[\($0)]" }.joined(separator: ", ")
                throw IPAMError.invalidConfig("requested IP address \(ip) is not inside any range set (\(sets))")
            }
            if let other = wanted[i], other != ip {
                throw IPAMError.invalidConfig("requested IP addresses \(other) and \(ip) are both in range set \(i) "
                    + "(\(settings.rangeSets[i])); request at most one address per range set")
            }
            let r = settings.rangeSets[i].range(for: ip)!
            if r.isReserved(ip) {
                throw IPAMError.invalidConfig("requested IP address \(ip) is the gateway, network or broadcast "
                    + "address of subnet \(r.subnet)")
            }
            wanted[i] = ip
        }
        return (attachment, wanted)
    }

    /// Checks the IDs that end up in reservation files.
    static func attachment(_ containerID: String, _ ifName: String) throws -> AttachmentID {
        let id = containerID.trimmingWhitespace()
        guard !id.isEmpty else { throw IPAMError.invalidConfig("container ID is empty (CNI_CONTAINERID)") }
        guard !id.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7f }) else {
            throw IPAMError.invalidConfig("container ID \"\(id)\" holds control characters")
        }
        guard !ifName.isEmpty, !ifName.unicodeScalars.contains(where: { $0.value <= 0x20 || $0.value == 0x7f || $0 == "/" }) else {
            throw IPAMError.invalidConfig("interface name \"\(ifName)\" is empty or holds white space, '/' or control characters (CNI_IFNAME)")
        }
        return AttachmentID(containerID: id, ifName: ifName)
    }
}

/// Walks a range set round-robin the way the reference allocator does: from the address
/// after the last reserved one (or from the first range's start) through every range,
/// wrapping, until it comes back to where it began. Gateway, network and IPv4 broadcast
/// addresses are skipped.
struct RangeCursor {
    let set: RangeSet
    private var rangeIndex = 0
    private var current: IPAddress?
    private var start: IPAddress?

    init(set: RangeSet, lastReserved: IPAddress?) {
        self.set = set
        if let last = lastReserved, let i = set.ranges.firstIndex(where: { $0.contains(last) }) {
            rangeIndex = i
            current = last
        }
    }

    /// The next candidate and its range, or nil when the whole set has been visited.
    mutating func next() -> (IPAddress, AddressRange)? {
        while true {
            var r = set.ranges[rangeIndex]
            if let cur = current {
                if cur == r.rangeEnd {
                    rangeIndex = (rangeIndex + 1) % set.ranges.count
                    r = set.ranges[rangeIndex]
                    current = r.rangeStart
                } else {
                    current = cur.next
                }
                if let s = start {
                    if current == s { return nil }
                } else {
                    start = current
                }
            } else {
                current = r.rangeStart
                start = r.rangeStart
            }
            let ip = current!
            if !r.isReserved(ip) { return (ip, r) }
        }
    }
}
