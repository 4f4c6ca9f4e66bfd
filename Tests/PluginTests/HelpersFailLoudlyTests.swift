import Foundation
import XCTest
import TestSupport

/// Every helper that reads kernel or disk state back, or sets a test world up, fails the test
/// when its tool fails, prints something else than asked for, or is pointed at a netns that is
/// not there: a broken `ip` or `nft` must never read as "nothing left". The helpers report
/// through `TestFailures`, which these tests capture (Linux XCTest has no XCTExpectFailure);
/// the throwing forms are asserted to throw.
final class HelpersFailLoudlyTests: XCTestCase {
    var world: TestWorld!

    override func setUp() {
        world = TestWorld()
        addTeardownBlock { [world] in world?.cleanup() }
    }

    enum Breakage {
        /// Exits 1 with a message on stderr.
        case fails
        /// Exits 0 printing text that is not JSON.
        case garbage
        /// Exits 0 printing JSON of the wrong shape (no nft metainfo, no array).
        case wrongJSON

        var script: String {
            switch self {
            case .fails: "#!/bin/sh\necho \"planted broken $(basename $0)\" >&2\nexit 1\n"
            case .garbage: "#!/bin/sh\necho 'this is not json {'\n"
            case .wrongJSON: "#!/bin/sh\necho '{\"nftables\": []}'\n"
            }
        }
    }

    /// Runs `body` with a `tools` that breaks as told first on PATH (for the helpers' own
    /// lookups and for what `ip netns exec` starts), then restores PATH.
    func withBroken<T>(_ tools: [String], _ breakage: Breakage, _ body: () throws -> T) throws -> T {
        let dir = world.tempDirectory("broken-\(tools.joined(separator: "-"))")
        for tool in tools {
            let path = dir + "/" + tool
            try breakage.script.write(toFile: path, atomically: true, encoding: .utf8)
            XCTAssertEqual(chmod(path, 0o755), 0)
        }
        let saved = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/sbin:/usr/bin:/sbin:/bin"
        setenv("PATH", dir + ":" + saved, 1)
        defer { setenv("PATH", saved, 1) }
        return try body()
    }

    /// Asserts that `read` recorded at least one failure, each naming `command` (when given) and
    /// containing `evidence` (the broken tool's stderr, or what was wrong with its output).
    func assertFailsLoudly<T>(_ what: String, command: String?, evidence: String,
                              file: StaticString = #filePath, line: UInt = #line, _ read: () -> T) {
        let (value, failures) = TestFailures.capturing(read)
        XCTAssertFalse(failures.isEmpty, "\(what) passed silently and returned \(value)", file: file, line: line)
        for f in failures {
            if let command {
                XCTAssertTrue(f.contains(command), "\(what): failure does not name `\(command)`: \(f)", file: file, line: line)
            }
            XCTAssertTrue(f.contains(evidence), "\(what): failure does not say \(evidence): \(f)", file: file, line: line)
        }
    }

    func testEveryReaderFailsWhenIPFails() throws {
        let bw = BridgeWorld(world, role: "brhost")
        let pm = PortmapWorld(world)
        try withBroken(["ip"], .fails) {
            let evidence = "planted broken ip"
            assertFailsLoudly("ipJSON", command: "ip -n \(bw.host) -j link show", evidence: evidence) { world.ipJSON(bw.host, ["link", "show"]) }
            assertFailsLoudly("links", command: "ip -n", evidence: evidence) { world.links(bw.host) }
            assertFailsLoudly("hostVeths", command: "ip -n \(bw.host)", evidence: evidence) { bw.hostVeths() }
            assertFailsLoudly("masqElements", command: "nft -j list ruleset", evidence: evidence) { bw.masqElements() }
            assertFailsLoudly("ruleset", command: "nft -j list ruleset", evidence: evidence) { world.ruleset(bw.host) }
            assertFailsLoudly("portmap elements", command: "nft -j list ruleset", evidence: evidence) { pm.elements() }
            assertFailsLoudly("portmap ruleset", command: "nft -j list ruleset", evidence: evidence) { pm.ruleset() }
            XCTAssertThrowsError(try world.readIPJSON(bw.host, ["link", "show"]))
            XCTAssertThrowsError(try NFTRuleset.read(in: bw.host))
        }
    }

    func testSetupFailsLoudlyWhenIPFails() throws {
        try withBroken(["ip"], .fails) {
            assertFailsLoudly("netns", command: "ip netns add", evidence: "planted broken ip") { world.netns("setup") }
            XCTAssertThrowsError(try world.makeNetns("setup2")) { e in
                XCTAssertTrue("\(e)".contains("ip netns add") && "\(e)".contains("planted broken ip"), "\(e)")
            }
            XCTAssertThrowsError(try world.makeBareNetns(["b1", "b2"]))
            assertFailsLoudly("PortmapWorld", command: "ip", evidence: "planted broken ip") { PortmapWorld(world) }
        }
    }

    func testOutputThatIsNotWhatWasAskedForFails() throws {
        let bw = BridgeWorld(world)
        try withBroken(["ip"], .garbage) {
            assertFailsLoudly("ipJSON", command: "ip -n", evidence: "printed no JSON array") { world.ipJSON(bw.host, ["link", "show"]) }
            assertFailsLoudly("hostVeths", command: "ip -n", evidence: "printed no JSON array") { bw.hostVeths() }
        }
        try withBroken(["nft"], .garbage) {
            assertFailsLoudly("masqElements", command: "nft -j list ruleset", evidence: "printed no JSON object") { bw.masqElements() }
        }
        try withBroken(["nft"], .wrongJSON) {
            assertFailsLoudly("masqElements", command: "nft -j list ruleset", evidence: "metainfo") { bw.masqElements() }
        }
    }

    func testEveryNFTReaderFailsWhenNFTFails() throws {
        let bw = BridgeWorld(world, role: "brhost")
        let pm = PortmapWorld(world)
        try withBroken(["nft"], .fails) {
            let evidence = "planted broken nft"
            assertFailsLoudly("masqElements", command: "nft -j list ruleset", evidence: evidence) { bw.masqElements() }
            assertFailsLoudly("portmap elements", command: "nft -j list ruleset", evidence: evidence) { pm.elements() }
            assertFailsLoudly("portmap ruleset", command: "nft -j list ruleset", evidence: evidence) { pm.ruleset() }
            assertFailsLoudly("ruleset", command: "nft -j list ruleset", evidence: evidence) { world.ruleset(pm.host) }
        }
    }

    func testMissingOrUnreadableNetnsFails() throws {
        let missing = "\(TestWorld.namePrefix)\(world.tag)-missing"
        assertFailsLoudly("ipJSON of a missing netns", command: "ip -n \(missing)", evidence: missing) { world.ipJSON(missing, ["link", "show"]) }
        assertFailsLoudly("ruleset of a missing netns", command: "nft -j list ruleset", evidence: missing) { world.ruleset(missing) }

        // A plain file where a netns bind mount should be (what is left when the mount went away).
        let plain = "\(TestWorld.namePrefix)\(world.tag)-plain"
        XCTAssertTrue(FileManager.default.createFile(atPath: world.path(plain), contents: Data()))
        defer { unlink(world.path(plain)) }
        assertFailsLoudly("ipJSON of a plain file", command: "ip -n \(plain)", evidence: plain) { world.ipJSON(plain, ["link", "show"]) }
        assertFailsLoudly("ruleset of a plain file", command: "nft -j list ruleset", evidence: plain) { world.ruleset(plain) }

        // A world whose host netns was deleted under it.
        let bw = BridgeWorld(world)
        try runChecked(["ip", "netns", "del", bw.host])
        assertFailsLoudly("hostVeths", command: "ip -n \(bw.host)", evidence: bw.host) { bw.hostVeths() }
        assertFailsLoudly("masqElements", command: "nft -j list ruleset", evidence: bw.host) { bw.masqElements() }
        assertFailsLoudly("links", command: "ip -n \(bw.host)", evidence: bw.host) { world.links(bw.host) }
    }

    func testUnreadableDataDirectoryFails() throws {
        let bw = BridgeWorld(world)
        // No network directory yet: nothing reserved, and no failure.
        let (none, quiet) = TestFailures.capturing { bw.leases() }
        XCTAssertEqual(none, [])
        XCTAssertEqual(quiet, [])
        // A file where the data directory should be.
        try FileManager.default.removeItem(atPath: bw.dataDir)
        XCTAssertTrue(FileManager.default.createFile(atPath: bw.dataDir, contents: Data("x".utf8)))
        assertFailsLoudly("leases", command: nil, evidence: bw.dataDir) { bw.leases() }
        XCTAssertThrowsError(try hostLocalReservations(dataDir: bw.dataDir, network: bw.network))
    }

    /// The other half: with working tools the same helpers see state that is there, and
    /// report nothing. (A helper that always failed would pass the tests above.)
    func testHelpersSeeRealStateWithoutFailures() throws {
        let bw = BridgeWorld(world)
        let veth = world.shortName("nlv")
        try runChecked(["ip", "-n", bw.host, "link", "add", veth, "type", "veth", "peer", "name", veth + "p"])
        try runChecked(["ip", "netns", "exec", bw.host, "nft", "-f", "-"], stdin: """
            table inet netlab {
                map masq_probe { type ipv4_addr : verdict; elements = { 10.1.2.3 comment "net ctr eth0" : accept } }
                set pm_probe { type inet_service; elements = { 8080 } }
            }
            """)
        try runChecked(["mkdir", "-p", bw.dataDir + "/" + bw.network])
        for f in ["10.1.2.3", "lock", "last_reserved_ip.0"] {
            XCTAssertTrue(FileManager.default.createFile(atPath: bw.dataDir + "/" + bw.network + "/" + f, contents: Data()))
        }
        let (seen, failures) = TestFailures.capturing {
            (bw.hostVeths(), bw.masqElements(), world.ruleset(bw.host).sets(table: "netlab"), bw.leases())
        }
        XCTAssertEqual(failures, [])
        XCTAssertEqual(Set(seen.0), [veth, veth + "p"])
        XCTAssertEqual(seen.1.map(\.key), ["10.1.2.3"])
        XCTAssertEqual(seen.1.map(\.comment), ["net ctr eth0"])
        XCTAssertEqual(Set(seen.2.map(\.name)), ["masq_probe", "pm_probe"])
        XCTAssertEqual(seen.2.first { $0.name == "pm_probe" }?.elements.map(\.key), ["8080"])
        XCTAssertEqual(seen.3, ["10.1.2.3"])
    }
}
