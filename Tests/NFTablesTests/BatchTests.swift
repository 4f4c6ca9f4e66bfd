import Foundation
import NFTables
import NetTypes
import TestSupport
import SystemKit
import XCTest

final class BatchTests: XCTestCase {
    let t = Table(family: .inet, name: "netlab")
    var nat: Chain { Chain(table: t, name: "postrouting", type: .nat, hook: .postrouting, priority: 100, policy: .accept) }
    var masq: NFTSet { NFTSet(table: t, name: "masq_v4", keyType: [.ipv4Addr], flags: [.interval]) }
    var pm: NFTSet {
        NFTSet(table: t, name: "portmap_v4", keyType: [.inetProto, .inetService], data: .values([.ipv4Addr, .inetService]))
    }

    private func base(_ w: NFTWorld, elements: Bool = true) throws {
        try w.apply { b in
            b.add(t); b.add(nat); b.add(masq); b.add(pm)
            b.add(Rule(chain: nat, comment: "base") { $0.match(.ipSaddr, inSet: "masq_v4").masquerade() })
            if elements { b.addElements(masq, [SetElement(.prefix(CIDR("10.88.0.0/16")!), comment: "c1")]) }
        }
    }

    func testFailedBatchChangesNothingAndNamesTheFailingOperation() throws {
        let w = try NFTWorld(self)
        try base(w)
        let before = w.ruleset()
        var b = Batch()
        b.add(Chain(table: t, name: "extra"))                                       // 0
        b.addElements(pm, [SetElement(key: [.tcp, .port(8080)],
                                      value: .data([.address(IPAddress("10.88.0.2")!), .port(80)]))])  // 1
        b.add(Rule(chain: nat) { $0.match(.ipSaddr, .address(IPAddress("10.1.1.1")!)).accept() })      // 2
        b.add(Rule(chain: nat) { $0.jump("missing-chain") })                        // 3
        XCTAssertThrowsError(try w.sock.apply(b)) { error in
            guard let e = error as? NFTError else { return XCTFail("\(error)") }
            XCTAssertEqual(e.operation, "add rule")
            XCTAssertEqual(e.object, "inet netlab/postrouting")
            XCTAssertEqual(e.errno, Errno(ENOENT))
            XCTAssertEqual(e.index, 3)
        }
        XCTAssertEqual(w.ruleset(), before)
        XCTAssertFalse(w.ruleset().contains("extra"))
        XCTAssertEqual(try w.sock.elements(of: pm), [])

        // The same batch without the bad rule applies in full.
        var good = Batch()
        for op in b.operations.prefix(3) {
            switch op {
            case .addChain(let c): good.add(c)
            case .addElements(let s, let e, _): good.addElements(s, e)
            case .addRule(let r): good.add(r)
            default: XCTFail("unexpected \(op)")
            }
        }
        try w.sock.apply(good)
        XCTAssertTrue(w.ruleset().contains("chain extra"))
        XCTAssertEqual(try w.sock.elements(of: pm).count, 1)
        XCTAssertEqual(try w.sock.rules(chain: nat).count, 2)
    }

    func testDuplicateElementIsEEXISTAndMissingElementIsENOENT() throws {
        let w = try NFTWorld(self)
        try base(w)
        let e = SetElement(key: [.tcp, .port(8080)], value: .data([.address(IPAddress("10.88.0.2")!), .port(80)]), comment: "c1")
        try w.apply { $0.addElements(pm, [e]) }
        XCTAssertThrowsError(try w.apply { $0.addElements(pm, [e]) }) { error in
            let n = error as? NFTError
            XCTAssertEqual(n?.errno, Errno(EEXIST), "\(error)")
            XCTAssertEqual(n?.operation, "add element")
            XCTAssertEqual(n?.object, "inet netlab map portmap_v4")
            XCTAssertEqual(n?.index, 0)
        }
        // A different key in the same batch as the duplicate is not added either.
        let other = SetElement(key: [.udp, .port(53)], value: .data([.address(IPAddress("10.88.0.3")!), .port(53)]))
        XCTAssertThrowsError(try w.apply { $0.addElements(pm, [other]); $0.addElements(pm, [e]) }) { error in
            XCTAssertEqual((error as? NFTError)?.index, 1, "\(error)")
        }
        XCTAssertEqual(try w.sock.elements(of: pm), [e])
        // Non-exclusive adds of an identical element are accepted.
        try w.apply { $0.addElements(pm, [e], exclusive: false) }

        XCTAssertThrowsError(try w.apply { $0.deleteElements(pm, [other]) }) { error in
            let n = error as? NFTError
            XCTAssertEqual(n?.errno, Errno(ENOENT), "\(error)")
            XCTAssertEqual(n?.operation, "delete element")
        }
        XCTAssertThrowsError(try w.apply { $0.addElements(masq, [SetElement(.prefix(CIDR("10.88.0.0/16")!))]) }) { error in
            XCTAssertEqual((error as? NFTError)?.errno, Errno(EEXIST), "\(error)")
        }
        try w.apply { $0.deleteElements(pm, [e]) }
        XCTAssertEqual(try w.sock.elements(of: pm), [])
    }

    func testAddingExistingTableChainAndSetKeepsTheirContent() throws {
        let w = try NFTWorld(self)
        try base(w)
        let before = w.ruleset()
        try base(w, elements: false)  // table, chain, set again: no error, nothing lost, but the rule is appended once more
        let after = try w.sock.rules(chain: nat)
        XCTAssertEqual(after.count, 2)
        try w.apply { b in b.add(t); b.add(nat); b.add(masq); b.add(pm) }
        XCTAssertEqual(try w.sock.rules(chain: nat).map(\.handle), after.map(\.handle))
        XCTAssertEqual(try w.sock.elements(of: masq), [SetElement(.prefix(CIDR("10.88.0.0/16")!), comment: "c1")])
        try w.apply { $0.deleteRule(nat, handle: after[1].handle) }
        XCTAssertEqual(w.ruleset(), before)
    }

    func testSocketOpenedInNamespaceWorksFromOtherThreadsAndLeavesCallerNamespace() throws {
        let w = try NFTWorld(self)
        // The callers live in a netns this test made (a thread starts in the namespace of the
        // thread that starts it), so what could leak into theirs is read back there.
        let caller = w.world.netns("caller")
        let (errors, moved) = try Namespaces.run(inNetworkNamespaceAt: w.world.path(caller)) { () throws -> ([String], [String]) in
            let callers = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/thread-self/ns/net")
            let group = DispatchGroup()
            nonisolated(unsafe) var errors: [String] = [], moved: [String] = []
            let lock = NSLock()
            for i in 0..<4 {
                group.enter()
                Thread.detachNewThread {
                    defer { group.leave() }
                    do {
                        try w.apply { b in b.add(Table(family: .ip, name: "t\(i)")) }
                        let now = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/thread-self/ns/net")
                        if now != callers { lock.withLock { moved.append("thread \(i) ended in \(now), not \(callers)") } }
                    } catch { lock.withLock { errors.append("thread \(i): \(error)") } }
                }
            }
            group.wait()
            return (errors, moved)
        }
        XCTAssertEqual(errors, [])
        XCTAssertEqual(moved, [])
        XCTAssertEqual(Set(try w.sock.tables().map(\.name)), ["t0", "t1", "t2", "t3"])
        XCTAssertEqual(try NFTRuleset.read(in: caller).entries.count, 0, "tables leaked into the callers' netns")
    }

    func testOpeningMissingNamespaceFails() {
        XCTAssertThrowsError(try NFTSocket(namespacePath: "/run/netns/does-not-exist-\(getpid())")) { error in
            XCTAssertEqual((error as? NFTError)?.errno, Errno(ENOENT), "\(error)")
        }
    }
}

final class DestroyTests: XCTestCase {
    func testDestroyIgnoresMissingObjectsAndRemovesPresentOnes() throws {
        let w = try NFTWorld(self)
        let t = Table(family: .ip, name: "netlab")
        let pm = NFTSet(table: t, name: "pm", keyType: [.inetProto, .inetService],
                        data: .values([.ipv4Addr, .inetService]), comment: "netlab port mappings")
        let e1 = SetElement(key: [.tcp, .port(80)], value: .data([.address(IPAddress("10.0.0.2")!), .port(80)]), comment: "c1")
        let e2 = SetElement(key: [.udp, .port(53)], value: .data([.address(IPAddress("10.0.0.3")!), .port(53)]), comment: "c2")
        try w.apply { b in b.add(t); b.add(pm); b.addElements(pm, [e1, e2]) }
        XCTAssertTrue(w.ruleset().contains("comment \"netlab port mappings\""), w.ruleset())
        // One present and one absent key: the present one goes, no error.
        try w.apply { $0.destroyElements(pm, [e1, SetElement(key: [.tcp, .port(81)])]) }
        XCTAssertEqual(try w.sock.elements(of: pm), [e2])
        try w.apply { $0.destroyElements(pm, [e1]) }  // a second DEL
        XCTAssertThrowsError(try w.apply { $0.deleteElements(pm, [e1]) }) { error in
            XCTAssertTrue((error as? NFTError)?.isNotFound == true, "\(error)")
        }
        try w.apply { $0.destroy(pm) }
        try w.apply { $0.destroy(pm) }
        XCTAssertEqual(try w.sock.setNames(table: t), [])
        try w.apply { $0.destroy(t) }
        try w.apply { $0.destroy(t) }
        XCTAssertEqual(try w.sock.tables(), [])
    }
}

final class IntervalTests: XCTestCase {
    func testAdjacentIntervalsAddAndDeleteIndependently() throws {
        let w = try NFTWorld(self)
        let t = Table(family: .inet, name: "netlab")
        let s4 = NFTSet(table: t, name: "masq_v4", keyType: [.ipv4Addr], flags: [.interval])
        let s6 = NFTSet(table: t, name: "masq_v6", keyType: [.ipv6Addr], flags: [.interval])
        let a = SetElement(.address(IPAddress("10.88.0.2")!), comment: "a")
        let b = SetElement(.address(IPAddress("10.88.0.3")!), comment: "b")
        let c = SetElement(.prefix(CIDR("10.88.1.0/24")!), comment: "c")
        let d = SetElement(.prefix(CIDR("10.88.2.0/24")!), comment: "d")
        let top = SetElement(.prefix(CIDR("255.255.255.0/24")!), comment: "top")
        let v6 = SetElement(.prefix(CIDR("fd00:1::/64")!), comment: "v6")
        try w.apply { x in x.add(t); x.add(s4); x.add(s6); x.addElements(s4, [a, b, c]); x.addElements(s6, [v6]) }
        try w.apply { $0.addElements(s4, [d, top]) }
        XCTAssertEqual(Set(try w.sock.elements(of: s4)), [a, b, c, d, top])
        XCTAssertEqual(try w.sock.elements(of: s6), [v6])
        XCTAssertEqual(try w.jsonElements()["inet netlab masq_v4"]?.count, 5)
        try w.apply { $0.deleteElements(s4, [b, c]) }
        XCTAssertEqual(Set(try w.sock.elements(of: s4)), [a, d, top])
        let text = w.ruleset()
        XCTAssertTrue(text.contains("10.88.0.2 comment \"a\""), text)
        XCTAssertFalse(text.contains("10.88.0.3"), text)
        XCTAssertTrue(text.contains("10.88.2.0/24 comment \"d\""), text)
    }
}
