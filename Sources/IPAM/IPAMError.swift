// The errors host-local's logic reports. Each says what failed and what to change;
// `cniError` is the CNI error of the same meaning (a store failure through the one mapping
// of system errors, `CNIError(_:context:)`).

import CNI
import NetTypes
import SystemKit

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
    /// A system call on the store (or on `resolvConf`) failed; `context` names what was
    /// being read when the path alone does not. CNI code as the system error's kind says:
    /// 5 (I/O failure) for a file, 11 for a busy or transient one.
    case io(SystemError, context: String? = nil)

    /// The CNI error code this maps to (spec "Error" codes).
    public var cniCode: Int { cniError.code.rawValue }

    /// The CNI error of the same meaning.
    public var cniError: CNIError {
        switch self {
        case .invalidConfig: return CNIError(code: .invalidNetworkConfig, msg: message)
        case .rangeExhausted, .addressInUse: return CNIError(code: .tryAgainLater, msg: message)
        case .notAllocated, .alreadyAllocated: return CNIError(code: .internal, msg: message)
        case .io(let e, let context): return CNIError(e, context: context)
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
        case .io(let e, let context):
            return context.map { "\($0): \(e)" } ?? "\(e)"
        }
    }

    /// Detail for the CNI error's `details` field: the system's own words, when there are some.
    public var details: String {
        if case .io(let e, _) = self { return e.message ?? "" }
        return ""
    }

    public var description: String { message }
}

/// Runs a system-layer call of the store; its SystemError becomes `IPAMError.io`.
func storeCall<T>(context: String? = nil, _ body: () throws(SystemError) -> T) throws(IPAMError) -> T {
    do {
        return try body()
    } catch {
        throw IPAMError.io(error, context: context)
    }
}
