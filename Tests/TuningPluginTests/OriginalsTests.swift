import XCTest
import CNI
import SystemKit
import TestSupport
@testable import TuningPlugin

/// The saved originals: the reference plugin's file format read, ours written and read back.
final class OriginalsTests: XCTestCase {
    func testReadsAFileTheReferencePluginWrote() throws {
        // json.MarshalIndent of the reference's configToRestore.
        let text = "{\n \"mac\": \"82:e6:a5:c3:c6:01\",\n \"promisc\": false,\n \"mtu\": 1500,\n \"allmulti\": true,\n \"txQLen\": 1000\n}"
        let o = try Originals(json: JSONValue.parse(Array(text.utf8)), file: "ref.json")
        XCTAssertEqual(o.mac?.description, "82:e6:a5:c3:c6:01")
        XCTAssertEqual(o.promisc, false)
        XCTAssertEqual(o.mtu, 1500)
        XCTAssertEqual(o.allmulti, true)
        XCTAssertEqual(o.txQueueLength, 1000)
        XCTAssertEqual(o.sysctls, [:])
        XCTAssertNil(o.renamedTo)
    }

    func testRoundTripThroughTheStore() throws {
        let world = TestWorld()
        defer { world.cleanup() }
        let store = OriginalsStore(directory: world.tempDirectory("store") + "/d")
        var o = Originals()
        o.mtu = 1500
        o.txQueueLength = 0
        o.sysctls = ["net/core/somaxconn": "4096"]
        o.renamedTo = "net1"
        o.network = "n"
        try store.save(o, containerID: "c", ifName: "eth0")
        XCTAssertEqual(try store.load(containerID: "c", ifName: "eth0"), o)
        XCTAssertNil(try store.load(containerID: "other", ifName: "eth0"))
        XCTAssertEqual(try store.stale(network: "n", valid: []), [store.path(containerID: "c", ifName: "eth0")])
        XCTAssertEqual(try store.stale(network: "n", valid: [Attachment(containerID: "c", ifname: "eth0")]), [])
        XCTAssertEqual(try store.stale(network: "m", valid: []), [])
        try store.remove(containerID: "c", ifName: "eth0")
        XCTAssertNil(try store.load(containerID: "c", ifName: "eth0"))
    }

    func testMergeKeepsWhatWasSavedFirst() {
        var first = Originals()
        first.mtu = 1500
        first.sysctls = ["a": "1"]
        var later = Originals()
        later.mtu = 1400
        later.promisc = false
        later.sysctls = ["a": "2", "b": "3"]
        first.merge(missingFrom: later)
        XCTAssertEqual(first.mtu, 1500)
        XCTAssertEqual(first.promisc, false)
        XCTAssertEqual(first.sysctls, ["a": "1", "b": "3"])
    }
}
