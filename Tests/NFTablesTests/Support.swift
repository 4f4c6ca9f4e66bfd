import Foundation
import NFTables
import NetTypes
import TestSupport
import XCTest

/// A netns with an NFTSocket opened inside it, removed at teardown.
struct NFTWorld {
    let world: TestWorld
    let ns: String
    let sock: NFTSocket

    init(_ test: XCTestCase, role: String = "host") throws {
        world = TestWorld()
        ns = world.netns(role)
        let w = world
        test.addTeardownBlock { w.cleanup() }
        sock = try NFTSocket(namespacePath: world.path(ns))
    }

    func ruleset() -> String {
        let r = world.exec(in: ns, ["nft", "list", "ruleset"])
        XCTAssertTrue(r.ok, "\(r)")
        return r.stdout
    }

    /// `nft -j list ruleset` entries without metainfo, keyed by their kind.
    func json() -> [[String: Any]] {
        let r = world.exec(in: ns, ["nft", "-j", "list", "ruleset"])
        XCTAssertTrue(r.ok, "\(r)")
        let items = (r.jsonObject?["nftables"] as? [[String: Any]]) ?? []
        return items.filter { $0["metainfo"] == nil }
    }

    func apply(_ build: (inout Batch) -> Void) throws {
        var b = Batch()
        build(&b)
        try sock.apply(b)
    }
}

/// Normalises nft's text output: trims lines, drops blank ones.
func lines(_ s: String) -> [String] {
    s.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
}
