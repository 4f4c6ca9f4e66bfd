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

/// The inode of a namespace file; throws when it cannot be read (two failed reads must never
/// compare equal as "the same namespace").
func inode(ofNamespaceAt path: String) throws(SystemError) -> UInt64 {
    var st = stat()
    try syscall("stat", path) { stat(path, &st) }
    return UInt64(st.st_ino)
}
