// The errors host-local's logic reports. Each says what failed and what to change;
// the CNI glue maps them to the spec's error codes with `cniCode`.

import NetTypes

/// An IPAM failure: a configuration problem, an address that cannot be handed out,
/// or a file-system error on the allocation store.
public enum IPAMError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The `ipam` configuration (or a request argument) is invalid. CNI code 7.
    case invalidConfig(String)
    /// Every address of a range set is taken. CNI code 11 ("try again later"): addresses
    /// come back when containers are deleted.
    case rangeExhausted(rangeSetIndex: Int, rangeSet: String, addressCount: Int64)
    /// A requested address is held by another attachment. CNI code 11.
    case addressInUse(address: IPAddress, owner: String)
    /// The attachment holds no address in a range set (CHECK). CNI code 999 (generic).
    case notAllocated(containerID: String, ifName: String, rangeSet: String)
    /// The attachment already holds an address in this range set (ADD twice). CNI code 999.
    case alreadyAllocated(containerID: String, ifName: String, address: IPAddress)
    /// A system call on the store failed. CNI code 5 (I/O failure).
    case io(operation: String, path: String, errno: Int32)

    /// The CNI error code this maps to (spec "Error" codes).
    public var cniCode: Int {
        switch self {
        case .invalidConfig: return 7
        case .rangeExhausted, .addressInUse: return 11
        case .notAllocated, .alreadyAllocated: return 999
        case .io: return 5
        }
    }

    /// A one-line message for the CNI error's `msg`.
    public var message: String {
        switch self {
        case .invalidConfig(let s):
            return s
        case .rangeExhausted(let i, let set, let n):
            let count = n == Int64.max ? "more than 2^63" : "\(n)"
            return "no IP addresses available in range set \(i) (\(set)): all \(count) allocatable "
                + "address\(n == 1 ? " is" : "es are") in use; release unused containers or widen the range"
        case .addressInUse(let ip, let owner):
            return "requested IP address \(ip) is already allocated to \(owner)"
        case .notAllocated(let id, let ifName, let set):
            return "container \(id) interface \(ifName) holds no address in range set \(set)"
        case .alreadyAllocated(let id, let ifName, let ip):
            return "\(ip) is already allocated to container \(id) interface \(ifName); "
                + "duplicate allocation is not allowed (run DEL first)"
        case .io(let op, let path, let errno):
            return "\(op) \(path): \(IPAMError.errnoName(errno)) (errno \(errno))"
        }
    }

    /// Detail for the CNI error's `details` field.
    public var details: String {
        switch self {
        case .io(_, _, let errno): return "errno \(errno)"
        default: return ""
        }
    }

    public var description: String { message }

    static func errnoName(_ e: Int32) -> String {
        switch e {
        case 1: return "operation not permitted"
        case 2: return "no such file or directory"
        case 4: return "interrupted system call"
        case 5: return "input/output error"
        case 9: return "bad file descriptor"
        case 12: return "cannot allocate memory"
        case 13: return "permission denied"
        case 17: return "file exists"
        case 20: return "not a directory"
        case 21: return "is a directory"
        case 22: return "invalid argument"
        case 24: return "too many open files"
        case 28: return "no space left on device"
        case 30: return "read-only file system"
        case 36: return "file name too long"
        case 37: return "no locks available"
        default: return "system error"
        }
    }
}
