import Foundation
import Netlink
import NetTypes
import TestSupport
import SystemKit
import XCTest

private struct Boom: Error {}

final class NamespaceTests: XCTestCase {
    func testCreateAndDeleteNamedNamespace() throws {
        _ = TestWorld()   // sweeps stale test namespaces
        let name = "\(TestWorld.namePrefix)\(getpid())-named-\(UInt32.random(in: 0..<UInt32.max))"
        addTeardownBlock { runCommand(["ip", "netns", "del", name]) }
        let path = try NetworkNamespace.create(named: name)
        XCTAssertEqual(path, "/run/netns/" + name)
        // /run/netns is a shared mount point, as iproute2 makes it.
        let mountinfo = try String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)
        let runNetns = mountinfo.split(separator: "\n").filter { $0.split(separator: " ")[4] == "/run/netns" }
        XCTAssertTrue(runNetns.contains { $0.contains("shared:") }, "\(runNetns)")
        // The path itself is a namespace (nsfs), not the empty file the mount was made on.
        XCTAssertTrue(Namespaces.isNamespaceFile(path), "the netns file is a bind mount")
        let list = try runChecked(["ip", "netns", "list"]).stdout
        XCTAssertTrue(list.split(separator: "\n").contains { $0.split(separator: " ").first.map(String.init) == name }, list)
        // It is a namespace of its own: not the test process's, with only `lo` in it.
        XCTAssertNotEqual(try inode(ofNamespaceAt: path), try inode(ofNamespaceAt: "/proc/self/ns/net"))
        let links = try runCommand(["ip", "-n", name, "-j", "link", "show"]).checkedJSONArray()
        XCTAssertEqual(links.compactMap { $0["ifname"] as? String }, ["lo"])
        XCTAssertThrowsError(try NetworkNamespace.create(named: name)) { XCTAssertTrue(($0 as! NetlinkError).isAlreadyExists) }

        try NetworkNamespace.delete(named: name)
        XCTAssertFalse(try runChecked(["ip", "netns", "list"]).stdout.contains(name))
        XCTAssertFalse(FileManager.default.fileExists(atPath: path))
        XCTAssertThrowsError(try NetworkNamespace.delete(named: name)) { XCTAssertTrue(($0 as! NetlinkError).isNotFound, "\($0)") }
    }

    func testOpenByPathAndPid() throws {
        let (world, ns) = try makeWorld(self)
        let n = try NetworkNamespace.open(path: world.path(ns[0]))
        XCTAssertEqual(try n.inode, try inode(ofNamespaceAt: world.path(ns[0])))
        XCTAssertEqual(try NetworkNamespace.open(pid: getpid()).inode, try inode(ofNamespaceAt: "/proc/self/ns/net"))
        XCTAssertThrowsError(try NetworkNamespace.open(path: "/run/netns/does-not-exist-\(getpid())")) {
            XCTAssertEqual(($0 as! NetlinkError).errno, Errno(ENOENT))
        }
    }

    func testRestoresNamespaceAfterThrow() throws {
        let (world, ns) = try makeWorld(self)
        let target = try inode(ofNamespaceAt: world.path(ns[0]))
        let before = try inode(ofNamespaceAt: "/proc/thread-self/ns/net")
        var seenInside: UInt64 = 0
        XCTAssertThrowsError(try withNetworkNamespace(world.path(ns[0])) { () throws -> Void in
            seenInside = try inode(ofNamespaceAt: "/proc/thread-self/ns/net")
            throw Boom()
        }) { XCTAssertTrue($0 is Boom) }
        XCTAssertEqual(seenInside, target)
        XCTAssertEqual(try inode(ofNamespaceAt: "/proc/thread-self/ns/net"), before)
        // The value of a body is returned, and work inside sees the namespace's links.
        let names = try withNetworkNamespace(ns[0]) { try RouteSocket().links().map(\.name) }
        XCTAssertEqual(names, ["lo"])
        XCTAssertEqual(try inode(ofNamespaceAt: "/proc/thread-self/ns/net"), before)
    }

    func testConcurrentUseNeverLeaksNamespaces() throws {
        let (world, ns) = try makeWorld(self, (0..<8).map { "c\($0)" })
        let original = try inode(ofNamespaceAt: "/proc/thread-self/ns/net")
        let expected = try ns.map { try inode(ofNamespaceAt: world.path($0)) }
        XCTAssertEqual(Set(expected).count, 8)
        let lock = NSLock()
        nonisolated(unsafe) var failures: [String] = []
        DispatchQueue.concurrentPerform(iterations: 8) { t in
            for i in 0..<50 {
                do {
                    let outsideBefore = try inode(ofNamespaceAt: "/proc/thread-self/ns/net")
                    var inside: UInt64?
                    do {
                        inside = try withNetworkNamespace(world.path(ns[t])) { () throws -> UInt64 in
                            let v = try inode(ofNamespaceAt: "/proc/thread-self/ns/net")
                            if i % 7 == 0 { throw Boom() }
                            return v
                        }
                    } catch is Boom {}
                    let outsideAfter = try inode(ofNamespaceAt: "/proc/thread-self/ns/net")
                    if let inside, inside != expected[t] { lock.withLock { failures.append("thread \(t) iteration \(i) saw \(inside)") } }
                    if outsideBefore != original || outsideAfter != original {
                        lock.withLock { failures.append("thread \(t) iteration \(i) outside \(outsideBefore)/\(outsideAfter)") }
                    }
                } catch {
                    lock.withLock { failures.append("thread \(t) iteration \(i): \(error)") }
                }
            }
        }
        XCTAssertEqual(failures, [])
    }
}
