// Runs every case of the bad-input corpus against every plugin it applies to, as the built
// executable with the case's environment and stdin inside a host netns: each must exit
// non-zero (and below 128: no signal), print exactly one JSON error object on stdout with the
// case's code and a msg naming the field, print no "Fatal error", finish within the timeout,
// and leave links, addresses, both nft rulesets and every file under the data root as they were.

import Foundation
import XCTest
import TestSupport

final class CorpusTests: XCTestCase {
    /// Every plugin the corpus covers. A plugin added to the suite belongs here.
    static let plugins = ["loopback", "bridge", "host-local", "portmap", "firewall", "tuning", "macvlan", "ipvlan", "flannel"]
    /// Exit statuses from here on mean the process died of a signal (the shell's convention).
    static let signalledStatus: Int32 = 128
    /// The spec's error codes a case may expect (1-11 well-known, 50/51 STATUS, 999 internal).
    static let wellKnownCodes: Set<Int> = [1, 2, 3, 4, 5, 6, 7, 11, 50, 51]
    /// 999 only where the case says it is the reference's answer (a plugin missing on CNI_PATH).
    static let internalCode = 999

    static func cases() throws -> [CorpusCase] { try CorpusCase.loadAll(from: CorpusWorld.corpusRoot) }

    func testTheCorpusIsWellFormed() throws {
        let cases = try Self.cases()
        XCTAssertGreaterThanOrEqual(cases.count, 200)
        for c in cases {
            XCTAssertTrue(Self.wellKnownCodes.contains(c.code) || (c.code == Self.internalCode && c.about.contains("reference")),
                          "\(c): code \(c.code) is not a well-known one")
            XCTAssertFalse(c.messageContains.isEmpty, "\(c): names no field")
            for p in c.plugins where p != "*" { XCTAssertTrue(Self.plugins.contains(p), "\(c): unknown plugin \(p)") }
        }
        for p in Self.plugins {
            XCTAssertGreaterThan(cases.filter { $0.plugins.contains(p) }.count, 0, "no case of its own for \(p)")
        }
    }

    func testLoopback() throws { try runCorpus("loopback") }
    func testBridge() throws { try runCorpus("bridge") }
    func testHostLocal() throws { try runCorpus("host-local") }
    func testPortmap() throws { try runCorpus("portmap") }
    func testFirewall() throws { try runCorpus("firewall") }
    func testTuning() throws { try runCorpus("tuning") }
    func testMacvlan() throws { try runCorpus("macvlan") }
    func testIpvlan() throws { try runCorpus("ipvlan") }
    func testFlannel() throws { try runCorpus("flannel") }

    func runCorpus(_ plugin: String) throws {
        let world = TestWorld()
        addTeardownBlock { world.cleanup() }
        let w = try CorpusWorld(world, plugin: plugin)
        let cases = try Self.cases().filter { $0.applies(to: plugin) }
        var before = try w.state()
        var failed = 0
        for c in cases {
            let r = try w.run(c)
            if let problem = Self.problem(c, r) {
                failed += 1
                XCTFail("\(plugin) \(c): \(problem)\nstdout: \(r.stdout.prefix(600))\nstderr: \(r.stderr.prefix(600))")
            }
            if r.status == 0 && c.command == "ADD" {
                // An ADD that should have failed did not: DEL it, so the next cases start clean.
                _ = try w.run(c, command: "DEL")
            }
            if c.subnetEnv != nil { try w.writeSubnetEnv(CorpusWorld.defaultSubnetEnv) }
            let after = try w.state()
            if after != before {
                XCTFail("\(plugin) \(c): left state behind:\n\(Self.difference(before, after))")
                before = after  // judge the next case against what is there now
            }
        }
        print("corpus \(plugin): \(cases.count) cases, \(failed) failed")
    }

    /// What is wrong with the plugin's answer to `c`, nil when it is as the case expects.
    static func problem(_ c: CorpusCase, _ r: CommandResult) -> String? {
        if r.stderr.contains("killed after a timeout") { return "hung (no answer in \(CorpusWorld.timeout) s)" }
        if r.status >= signalledStatus { return "died of a signal (exit \(r.status))" }
        if r.stderr.contains("Fatal error") { return "crashed (Fatal error on stderr)" }
        if r.status == 0 { return "succeeded" }
        let text = r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        // Exactly one object: two objects, or anything around one, does not parse.
        guard let data = text.data(using: .utf8), let o = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            return "stdout is not exactly one JSON object"
        }
        guard o["cniVersion"] is String, let msg = o["msg"] as? String, let code = o["code"] as? Int else {
            return "the error object lacks cniVersion, code or msg"
        }
        if code != c.code { return "code \(code), expected \(c.code) (msg: \(msg))" }
        // The reference puts some specifics in details (the versions of "incompatible CNI versions").
        let named = msg + " " + (o["details"] as? String ?? "")
        if !named.contains(c.messageContains) { return "msg and details do not name \"\(c.messageContains)\": \(named)" }
        return nil
    }

    static func difference(_ a: CorpusWorld.State, _ b: CorpusWorld.State) -> String {
        var out: [String] = []
        if a.hostAddresses != b.hostAddresses { out.append("host links/addresses: \(b.hostAddresses)") }
        if a.containerAddresses != b.containerAddresses { out.append("container links/addresses: \(b.containerAddresses)") }
        if a.hostRuleset != b.hostRuleset { out.append("host nft: \(b.hostRuleset.prefix(1500))") }
        if a.containerRuleset != b.containerRuleset { out.append("container nft: \(b.containerRuleset.prefix(1500))") }
        for key in Set(a.files.keys).union(b.files.keys).sorted() where a.files[key] != b.files[key] {
            out.append("file \(key): \(a.files[key] ?? "absent") -> \(b.files[key] ?? "absent")")
        }
        return out.joined(separator: "\n")
    }
}
