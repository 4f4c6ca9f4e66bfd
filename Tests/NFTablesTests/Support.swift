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

    /// `nft -j list ruleset` entries without metainfo, keyed by their kind; throws when `nft`
    /// fails or prints something else than its JSON.
    func json() throws -> [[String: Any]] {
        try NFTRuleset.read(in: ns).entries
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

extension NFTWorld {
    /// For every set and map in `nft -j list ruleset`: "family table name" -> its elements as
    /// canonical JSON strings, sorted (hash sets list in random order).
    func jsonElements() throws -> [String: [String]] {
        var out: [String: [String]] = [:]
        for item in try json() {
            guard let s = (item["set"] as? [String: Any]) ?? (item["map"] as? [String: Any]),
                  let fam = s["family"] as? String, let t = s["table"] as? String, let n = s["name"] as? String
            else { continue }
            let elems = (s["elem"] as? [Any]) ?? []
            out["\(fam) \(t) \(n)"] = elems.map { e in
                let d = try! JSONSerialization.data(withJSONObject: e, options: [.sortedKeys, .fragmentsAllowed])
                return String(decoding: d, as: UTF8.self)
            }.sorted()
        }
        return out
    }
}

/// nft's text output with every `elements = { … }` block removed (their order is random).
func withoutElements(_ text: String) -> [String] {
    var out: [String] = []
    var skipping = false
    for l in lines(text) {
        if l.hasPrefix("elements = {") { skipping = true }
        if !skipping { out.append(l) }
        if skipping && l.hasSuffix("}") { skipping = false }
    }
    return out
}

extension NFTWorld {
    /// Adds each case once as nft text to `refChain` (`nft add rule <refPrefix> <text>`) and
    /// once through the builder to `ourChain`, then asserts the kernel holds the same
    /// expressions for both, rule by rule.
    func assertSameExpressions(refPrefix: String, refChain: Chain, ourChain: Chain,
                               _ cases: [(String, (RuleBuilder) -> RuleBuilder)],
                               file: StaticString = #filePath, line: UInt = #line) throws {
        var batch = Batch()
        for (text, build) in cases {
            let r = world.exec(in: ns, ["nft", "add rule \(refPrefix) \(text)"])
            XCTAssertTrue(r.ok, "nft rejected \(text): \(r)", file: file, line: line)
            batch.add(Rule(chain: ourChain, build))
        }
        try sock.apply(batch)
        let theirs = try sock.rules(chain: refChain), mine = try sock.rules(chain: ourChain)
        XCTAssertEqual(theirs.count, cases.count, file: file, line: line)
        XCTAssertEqual(mine.count, cases.count, file: file, line: line)
        for (i, (t, m)) in zip(theirs, mine).enumerated() {
            let te = lines(t.summary).filter { $0.hasPrefix("[") }, me = lines(m.summary).filter { $0.hasPrefix("[") }
            XCTAssertFalse(te.isEmpty, file: file, line: line)
            XCTAssertEqual(me, te, cases[i].0, file: file, line: line)
        }
    }
}
