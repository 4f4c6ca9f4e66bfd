// One atomic change to the ruleset: a list of operations sent as one nfnetlink batch, so
// either all apply or none does.

import NetTypes
import SystemKit

/// nftables failures are SystemErrors (printed with the subsystem "nftables"): the operation
/// ("add rule", "list rules"), the object ("inet netlab map pm_v4"), the errno, the index of
/// the failing batch operation, the kernel's extended-ack text.
public typealias NFTError = SystemError

extension SystemError {
    /// An nftables failure.
    static func nft(operation: String, object: String, errno: Int32, index: Int? = nil,
                    message: String? = nil) -> SystemError {
        SystemError(operation: operation, object: object, errno: errno, message: message,
                    subsystem: "nftables", index: index)
    }
}

/// A list of changes applied atomically by `NFTSocket.apply`.
public struct Batch: Sendable, Hashable {
    public enum Operation: Sendable, Hashable {
        case addTable(Table)
        case deleteTable(Table)
        case addChain(Chain)
        case deleteChain(Chain)
        case flushChain(Chain)
        case addRule(Rule)
        case deleteRule(Chain, handle: UInt64)
        case addSet(NFTSet)
        case deleteSet(NFTSet)
        case flushSet(NFTSet)
        /// `exclusive`: an element whose key already exists is an error (EEXIST).
        case addElements(NFTSet, [SetElement], exclusive: Bool)
        case deleteElements(NFTSet, [SetElement])
        /// Like the deletions, but absent objects are no error (Linux 6.3+).
        case destroyTable(Table)
        case destroySet(NFTSet)
        case destroyElements(NFTSet, [SetElement])
    }

    public private(set) var operations: [Operation] = []

    public init() {}

    public var isEmpty: Bool { operations.isEmpty }

    /// Creates the table if missing; an existing table and its content are left alone.
    public mutating func add(_ table: Table) { operations.append(.addTable(table)) }
    /// Deletes the table with everything in it.
    public mutating func delete(_ table: Table) { operations.append(.deleteTable(table)) }
    /// Creates the chain if missing; an existing chain keeps its rules.
    public mutating func add(_ chain: Chain) { operations.append(.addChain(chain)) }
    public mutating func delete(_ chain: Chain) { operations.append(.deleteChain(chain)) }
    /// Removes every rule of the chain.
    public mutating func flush(_ chain: Chain) { operations.append(.flushChain(chain)) }
    /// Appends the rule at the end of its chain.
    public mutating func add(_ rule: Rule) { operations.append(.addRule(rule)) }
    public mutating func deleteRule(_ chain: Chain, handle: UInt64) {
        operations.append(.deleteRule(chain, handle: handle))
    }
    /// Creates the set or map if missing; existing elements are kept.
    public mutating func add(_ set: NFTSet) { operations.append(.addSet(set)) }
    public mutating func delete(_ set: NFTSet) { operations.append(.deleteSet(set)) }
    /// Removes every element of the set.
    public mutating func flush(_ set: NFTSet) { operations.append(.flushSet(set)) }
    /// Adds elements; with `exclusive` (the default) a key that exists already fails with EEXIST.
    public mutating func addElements(_ set: NFTSet, _ elements: [SetElement], exclusive: Bool = true) {
        operations.append(.addElements(set, elements, exclusive: exclusive))
    }
    /// Deletes elements; a missing key fails with ENOENT.
    public mutating func deleteElements(_ set: NFTSet, _ elements: [SetElement]) {
        operations.append(.deleteElements(set, elements))
    }
    /// Deletes the table if it exists (NFT_MSG_DESTROYTABLE, Linux 6.3+).
    public mutating func destroy(_ table: Table) { operations.append(.destroyTable(table)) }
    /// Deletes the set if it exists (Linux 6.3+).
    public mutating func destroy(_ set: NFTSet) { operations.append(.destroySet(set)) }
    /// Deletes those of the elements that exist; missing keys are no error (Linux 6.3+).
    /// What a CNI DEL wants: nothing to undo is success.
    public mutating func destroyElements(_ set: NFTSet, _ elements: [SetElement]) {
        operations.append(.destroyElements(set, elements))
    }
}

extension Batch.Operation {
    /// The operation and object names used in errors.
    var names: (operation: String, object: String) {
        switch self {
        case .addTable(let t): ("add table", "\(t)")
        case .deleteTable(let t): ("delete table", "\(t)")
        case .addChain(let c): ("add chain", "\(c)")
        case .deleteChain(let c): ("delete chain", "\(c)")
        case .flushChain(let c): ("flush chain", "\(c)")
        case .addRule(let r): ("add rule", "\(r.chain)")
        case .deleteRule(let c, let h): ("delete rule", "\(c) handle \(h)")
        case .addSet(let s): ("add \(s.isMap ? "map" : "set")", "\(s)")
        case .deleteSet(let s): ("delete \(s.isMap ? "map" : "set")", "\(s)")
        case .flushSet(let s): ("flush \(s.isMap ? "map" : "set")", "\(s)")
        case .addElements(let s, _, _): ("add element", "\(s)")
        case .deleteElements(let s, _): ("delete element", "\(s)")
        case .destroyTable(let t): ("destroy table", "\(t)")
        case .destroySet(let s): ("destroy \(s.isMap ? "map" : "set")", "\(s)")
        case .destroyElements(let s, _): ("destroy element", "\(s)")
        }
    }
}
