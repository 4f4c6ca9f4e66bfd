// Finding and removing the elements a container caused in a group of the suite's sets/maps,
// by the owner comment alone (DEL without a result, GC, ADD's rollback).

import NFTables

public struct OwnedElements: Sendable {
    public let sets: [NFTSet]

    public init(_ sets: [NFTSet]) { self.sets = sets }

    /// Elements of every set whose comment satisfies `match`; an absent table or set is none.
    public func find(_ sock: NFTSocket, where match: (String?) -> Bool) throws -> [(NFTSet, SetElement)] {
        var out: [(NFTSet, SetElement)] = []
        for s in sets {
            let elems: [SetElement]
            do { elems = try sock.elements(of: s) } catch let e as NFTError where e.isNotFound { continue }
            out += elems.filter { match($0.comment) }.map { (s, $0) }
        }
        return out
    }

    /// Deletes the given elements by key in one batch (missing ones are no error).
    public static func remove(_ sock: NFTSocket, _ elems: [(NFTSet, SetElement)]) throws {
        guard !elems.isEmpty else { return }
        var b = Batch()
        for (s, e) in elems { b.destroyElements(s, [SetElement(key: e.key)]) }
        do { try sock.apply(b) } catch let e as NFTError where e.isNotFound {}
    }

    /// Removes every element of these sets owned by `owner`.
    public func removeOwned(by owner: ElementOwner, _ sock: NFTSocket) throws {
        try OwnedElements.remove(sock, find(sock) { owner.owns($0) })
    }
}
