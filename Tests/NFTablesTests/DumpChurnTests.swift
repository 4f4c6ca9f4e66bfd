@testable import NFTables
import Foundation
import NetTypes
import SystemKit
import TestSupport
import XCTest

/// The failure behind "portmap DEL: nftables: list tables ruleset: errno 4": listing the
/// ruleset while another process commits changes. One thread keeps changing sets and
/// elements; another lists tables, sets, elements and rules hundreds of times on one socket
/// (with a batch of its own now and then, which must not trip over leftovers of a dump).
final class DumpChurnTests: XCTestCase {
    let table = Table(family: .inet, name: "churn")
    var chain: Chain { Chain(table: table, name: "rules") }
    var big: NFTSet { NFTSet(table: table, name: "big", keyType: [.ipv4Addr, .inetService]) }
    var churned: NFTSet { NFTSet(table: table, name: "churned", keyType: [.inetService]) }

    func testListingWhileTheRulesetChangesNeverFails() throws {
        let w = try NFTWorld(self)
        // Large enough that every dump spans several messages.
        let bigElements = (0..<1000).map { i in
            SetElement(key: [.address(.v4(0x0a40_0000 | UInt32(i))), .port(UInt16(1000 + i % 50))])
        }
        let ruleCount = 60
        let (table, chain, big, churned) = (self.table, self.chain, self.big, self.churned)
        try w.apply { b in
            b.add(table); b.add(chain); b.add(big); b.add(churned)
            b.addElements(big, bigElements)
            for i in 0..<ruleCount { b.add(Rule(chain: chain, comment: "r\(i)") { $0.match(.thDport, .port(UInt16(i))).accept() }) }
        }
        let writer = try NFTSocket(namespacePath: w.world.path(w.ns))
        let reader = try NFTSocket(namespacePath: w.world.path(w.ns))
        let finished = Finished()
        let deadline = Date().addingTimeInterval(30)

        // About a thousand commits a second: several times the rate of 200 CNI ADDs/DELs in
        // parallel (a few commits each over seconds). A writer committing with no pause at
        // all interrupts a dump of a few messages nearly every time, so no bounded retry
        // (nor nft's own unbounded one) gets through it.
        let churn: @Sendable () throws -> Void = {
            var i = 0
            while !finished.value && Date() < deadline {
                let element = SetElement(key: [.port(UInt16(i % 60000))])
                let extra = NFTSet(table: table, name: "tmp\(i % 4)", keyType: [.ipv4Addr])
                var add = Batch(), remove = Batch()
                add.addElements(churned, [element]); add.add(extra)
                remove.deleteElements(churned, [element]); remove.delete(extra)
                try writer.apply(add)
                usleep(500)
                try writer.apply(remove)
                usleep(500)
                i += 1
            }
        }
        let list: @Sendable () throws -> Void = {
            defer { finished.set() }
            var round = 0
            while round < 300 || (reader.restartedDumps == 0 && Date() < deadline) {
                try Self.checkListing(reader, table: table, chain: chain, big: big, churned: churned,
                                      bigElements: bigElements, ruleCount: ruleCount, round: round)
                if round % 10 == 0 {
                    var b = Batch()
                    b.add(table)  // exists: a no-op batch whose ack must be read correctly
                    try reader.apply(b)
                }
                round += 1
            }
        }
        let errors = Threads.runConcurrently([list, churn])
        XCTAssertTrue(errors.isEmpty, "\(errors)")
        XCTAssertGreaterThan(reader.restartedDumps, 0, "no dump was interrupted: the churn did not overlap the dumps")
    }

    /// One round of listings, each checked against what does not change.
    private static func checkListing(_ s: NFTSocket, table: Table, chain: Chain, big: NFTSet, churned: NFTSet,
                                     bigElements: [SetElement], ruleCount: Int, round: Int) throws {
        func fail(_ what: String) -> SystemError {
            SystemError(operation: "check listing", object: "round \(round)", errno: .invalidArgument, message: what)
        }
        guard try s.tables().filter({ $0 == table }).count == 1 else { throw fail("table missing or listed twice") }
        let names = try s.setNames(table: table)
        guard names.filter({ $0 == big.name || $0 == churned.name }).count == 2,
              names.count == Set(names).count else { throw fail("sets: \(names)") }
        let elements = try s.elements(of: big)
        guard elements.count == bigElements.count, Set(elements) == Set(bigElements) else {
            throw fail("\(elements.count) elements of \(big.name) instead of \(bigElements.count)")
        }
        // The kernel marks no element dump interrupted: one racing the churn's commits can
        // show the element being deleted beside the one being added (seen on Linux 6.18),
        // never more than that.
        let moving = try s.elements(of: churned)
        guard moving.count <= 2 else { throw fail("\(moving.count) elements in \(churned.name): \(moving)") }
        let rules = try s.rules(chain: chain)
        guard rules.map(\.comment) == (0..<ruleCount).map({ "r\($0)" }), Set(rules.map(\.handle)).count == ruleCount else {
            throw fail("rules: \(rules.map { $0.comment ?? "-" })")
        }
    }
}

/// Set by the listing thread when it is done, read by the churning one.
private final class Finished: @unchecked Sendable {
    private let lock = NSLock()
    private var done = false
    var value: Bool { lock.withLock { done } }
    func set() { lock.withLock { done = true } }
}
