import Foundation
import NFTables
import NetTypes
import TestSupport
import XCTest

/// `ether saddr`/`ether daddr` matches and `ether_addr` set keys in `bridge`-family tables
/// against nft itself: the same rules added as nft text and through RuleBuilder into twin
/// tables must have identical kernel expressions, and elements written either way must read
/// back the same (through `nft -j` and through `NFTSocket.elements`).
final class EtherEquivalenceTests: XCTestCase {
    func sets(_ t: Table) -> [NFTSet] {
        [NFTSet(table: t, name: "ports", keyType: [.ifname]),
         NFTSet(table: t, name: "allowed", keyType: [.ifname, .etherAddr]),
         NFTSet(table: t, name: "macs", keyType: [.etherAddr]),
         NFTSet(table: t, name: "macport", keyType: [.etherAddr, .ifname])]
    }
    func chain(_ t: Table) -> Chain {
        Chain(table: t, name: "pre", type: .filter, hook: .prerouting, priority: -300, policy: .accept)
    }

    func testEtherMatchesAndLookupsMatchNftInABridgeTable() throws {
        let w = try NFTWorld(self)
        let ref = Table(family: .bridge, name: "ref"), ours = Table(family: .bridge, name: "ours")
        try w.apply { b in
            for t in [ref, ours] {
                b.add(t)
                b.add(chain(t))
                for s in sets(t) { b.add(s) }
            }
        }
        let m1 = MACAddress("02:00:00:00:00:01")!
        let cases: [(String, (RuleBuilder) -> RuleBuilder)] = [
            ("iifname @ports iifname . ether saddr != @allowed drop",
             { $0.match(.iifname, inSet: "ports").match([.iifname, .etherSaddr], inSet: "allowed", negate: true).drop() }),
            ("ether saddr 02:00:00:00:00:01 drop", { $0.match(.etherSaddr, .mac(m1)).drop() }),
            ("ether daddr != 02:00:00:00:00:01 counter", { $0.match(.etherDaddr, not: .mac(m1)).counter() }),
            ("ether saddr @macs accept", { $0.match(.etherSaddr, inSet: "macs").accept() }),
            ("ether saddr . iifname @macport return", { $0.match([.etherSaddr, .iifname], inSet: "macport").return() }),
            ("iifname \"veth0\" ether saddr != 02:00:00:00:00:01 drop",
             { $0.match(.iifname, .ifname("veth0")).match(.etherSaddr, not: .mac(m1)).drop() }),
        ]
        try w.assertSameExpressions(refPrefix: "bridge ref pre", refChain: chain(ref), ourChain: chain(ours), cases)
        // nft prints both tables' rules in the same words.
        let text = w.ruleset()
        let refPart = text.components(separatedBy: "table bridge ours")[0].components(separatedBy: "table bridge ref")[1]
        let ourPart = text.components(separatedBy: "table bridge ours")[1]
        XCTAssertEqual(withoutElements(refPart), withoutElements(ourPart))
        XCTAssertTrue(ourPart.contains("iifname @ports iifname . ether saddr != @allowed drop"), ourPart)
    }

    func testEtherElementsRoundTrip() throws {
        let w = try NFTWorld(self)
        let ref = Table(family: .bridge, name: "ref"), ours = Table(family: .bridge, name: "ours")
        try w.apply { b in
            for t in [ref, ours] {
                b.add(t)
                for s in sets(t) { b.add(s) }
            }
        }
        let nftText = """
        add element bridge ref ports { "vethab12cd34" comment "net ctr1 eth0" }
        add element bridge ref allowed { "vethab12cd34" . 02:11:22:33:44:55 comment "net ctr1 eth0" }
        add element bridge ref macs { 0a:bb:cc:dd:ee:0f }
        add element bridge ref macport { 0a:bb:cc:dd:ee:0f . "veth0" }
        """
        let r = runCommand(["ip", "netns", "exec", w.ns, "nft", "-f", "-"], stdin: nftText)
        XCTAssertTrue(r.ok, r.description)
        let mac = MACAddress("02:11:22:33:44:55")!, other = MACAddress("0a:bb:cc:dd:ee:0f")!
        let s = sets(ours)
        try w.apply { b in
            b.addElements(s[0], [SetElement(.ifname("vethab12cd34"), comment: "net ctr1 eth0")])
            b.addElements(s[1], [SetElement(.ifname("vethab12cd34"), .mac(mac), comment: "net ctr1 eth0")])
            b.addElements(s[2], [SetElement(.mac(other))])
            b.addElements(s[3], [SetElement(.mac(other), .ifname("veth0"))])
        }
        // nft shows the same elements in both tables.
        let elems = try w.jsonElements()
        for name in ["ports", "allowed", "macs", "macport"] {
            XCTAssertEqual(elems["bridge ours \(name)"], elems["bridge ref \(name)"], name)
            XCTAssertEqual(elems["bridge ref \(name)"]?.count, 1, name)
        }
        XCTAssertTrue(elems["bridge ours allowed"]?.first?.contains("02:11:22:33:44:55") ?? false, "\(elems)")
        // And NFTSocket decodes nft's own elements into the values we wrote.
        let refSets = sets(ref)
        XCTAssertEqual(try w.sock.elements(of: refSets[1]),
                       [SetElement(key: [.ifname("vethab12cd34"), .mac(mac)], comment: "net ctr1 eth0")])
        XCTAssertEqual(try w.sock.elements(of: refSets[2]), [SetElement(.mac(other))])
        XCTAssertEqual(try w.sock.elements(of: refSets[3]), [SetElement(.mac(other), .ifname("veth0"))])
        // Deleting by key (the form DEL uses) removes exactly that element.
        try w.apply { b in b.destroyElements(refSets[1], [SetElement(.ifname("vethab12cd34"), .mac(mac))]) }
        XCTAssertEqual(try w.sock.elements(of: refSets[1]), [])
        XCTAssertEqual(KeyPart.mac("02:11:22:33:44:55"), .mac(mac))
        XCTAssertNil(KeyPart.mac("02:11:22"))
    }
}
