import Foundation
import Netlink
import NetTypes
import TestSupport
import SystemKit
import XCTest

/// A world with one netns and a RouteSocket opened inside it.
func makeWorld(_ test: XCTestCase, _ roles: [String] = ["host"]) throws -> (TestWorld, [String]) {
    let world = TestWorld()
    test.addTeardownBlock { world.cleanup() }
    let names = roles.map { world.netns($0) }
    return (world, names)
}

extension TestWorld {
    /// `ip -d -j -n NS link show dev NAME`, the first entry.
    func linkDetails(_ ns: String, _ name: String) -> [String: Any]? {
        ipJSON(ns, ["-d", "link", "show", "dev", name]).first
    }
}

func inode(ofNamespaceAt path: String) -> UInt64 {
    var st = stat()
    return stat(path, &st) == 0 ? UInt64(st.st_ino) : 0
}
