// Shared pieces of the host-local integration tests: a temporary data directory, configs,
// and running the built `host-local` (or the reference one) as a runtime does.

import Foundation
import XCTest
import TestSupport

/// One test's host-local setup: a world for cleanup and a private data directory.
final class HostLocalHarness: Sendable {
    let world = TestWorld()
    let dataDir: String
    /// The reference plugin from Debian's containernetworking-plugins, when installed.
    static let referencePlugin = "/usr/lib/cni/host-local"
    /// A netns path for CNI_NETNS: host-local never enters it, but ADD/CHECK require one.
    static let netns = "/var/run/netns/hostlocal-test"

    init(_ test: XCTestCase) {
        dataDir = world.tempDirectory("hostlocal")
        let w = world
        test.addTeardownBlock { w.cleanup() }
    }

    /// A network config with the given `ipam` keys (JSON object body without braces, e.g.
    /// `"subnet": "10.1.0.0/24"`); `dataDir` is added unless the body sets it.
    func config(_ ipamBody: String, name: String = "net", version: String = "1.0.0", extra: String = "") -> String {
        let dir = ipamBody.contains("\"dataDir\"") ? "" : ", \"dataDir\": \"\(dataDir)\""
        let more = extra.isEmpty ? "" : ", " + extra
        return #"{"cniVersion": "\#(version)", "name": "\#(name)", "type": "bridge"\#(more), "ipam": {"type": "host-local", \#(ipamBody)\#(dir)}}"#
    }

    /// Runs our plugin (or `plugin`, e.g. the reference path) with one verb.
    @discardableResult
    func run(_ command: String, _ config: String, id: String? = "ctr1", ifname: String? = "eth0",
             args: String? = nil, plugin: String = "host-local") -> CommandResult {
        let needsNetns = command == "ADD" || command == "CHECK"
        let forAttachment = command == "ADD" || command == "DEL" || command == "CHECK"
        return world.runPlugin(plugin, command: command, config: config,
                               containerID: forAttachment ? id : nil,
                               netns: needsNetns ? HostLocalHarness.netns : nil,
                               ifname: forAttachment ? ifname : nil, args: args)
    }

    /// The state directory of network `name`.
    func networkDir(_ name: String = "net") -> String { dataDir + "/" + name }

    /// File names in the network's state directory (empty while it does not exist). A
    /// directory that cannot be listed fails the running test.
    func files(_ name: String = "net", file: StaticString = #filePath, line: UInt = #line) -> Set<String> {
        TestFailures.reporting([], file: file, line: line) {
            guard FileManager.default.fileExists(atPath: networkDir(name)) else { return [] }
            return Set(try FileManager.default.contentsOfDirectory(atPath: networkDir(name)))
        }
    }

    /// Address files only (not `lock` or `last_reserved_ip.N`).
    func addressFiles(_ name: String = "net", file: StaticString = #filePath, line: UInt = #line) -> Set<String> {
        files(name, file: file, line: line).filter { $0 != "lock" && !$0.hasPrefix("last_reserved_ip.") }
    }

    /// A file's bytes as text; a missing or unreadable file fails the running test (nil).
    func read(_ name: String, network: String = "net", file: StaticString = #filePath, line: UInt = #line) -> String? {
        TestFailures.reporting(nil, file: file, line: line) {
            try String(contentsOfFile: networkDir(network) + "/" + name, encoding: .utf8)
        }
    }

    static var hasReference: Bool { FileManager.default.isExecutableFile(atPath: referencePlugin) }
}

/// Parses JSON text into a Foundation object (nil when it is not JSON).
func hostLocalJSON(_ text: String) -> NSObject? {
    guard let d = text.data(using: .utf8) else { return nil }
    // Not JSON: nil is the answer asked for (the callers fail on it).
    return try? JSONSerialization.jsonObject(with: d) as? NSObject
}

/// Asserts that two JSON texts hold the same value (key order and spacing do not matter).
func assertHostLocalJSON(_ actual: String, equals expected: String, file: StaticString = #filePath, line: UInt = #line) {
    guard let a = hostLocalJSON(actual) else { return XCTFail("not JSON: \(actual)", file: file, line: line) }
    guard let e = hostLocalJSON(expected) else { return XCTFail("expected text is not JSON: \(expected)", file: file, line: line) }
    XCTAssertEqual(a, e, "\nactual:   \(actual)\nexpected: \(expected)", file: file, line: line)
}

extension CommandResult {
    /// The `ips[].address` values of an ADD result.
    var hostLocalAddresses: [String] {
        (jsonObject?["ips"] as? [[String: Any]] ?? []).compactMap { $0["address"] as? String }
    }
    /// The error code of an error result.
    var cniCode: Int? { jsonObject?["code"] as? Int }
    var cniMessage: String { jsonObject?["msg"] as? String ?? "" }
}
