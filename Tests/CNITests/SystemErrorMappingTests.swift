// The one mapping of system and kernel errors to CNI errors (CNIError(_:context:)), and what
// a plugin's verb throwing a SystemError looks like on the wire through PluginMain.

import XCTest
@testable import CNI
import SystemKit

final class SystemErrorMappingTests: XCTestCase {
    func testNamespaceGoneIsUnknownContainer() {
        let e = SystemError(operation: "open netns", object: "/run/netns/ctr9", errno: .noSuchFileOrDirectory,
                            kind: .namespaceGone)
        let c = CNIError(e)
        XCTAssertEqual(c.code, .unknownContainer)
        XCTAssertEqual(c.msg, "open netns /run/netns/ctr9: ENOENT (No such file or directory)")
        // The kind decides, not the errno: a path that holds no namespace any more is code 3 too.
        let plain = SystemError(operation: "open netns", object: "/run/netns/ctr9", errno: .invalidArgument,
                                kind: .namespaceGone, message: "not a namespace file")
        XCTAssertEqual(CNIError(plain).code, 3)
    }

    func testTransientAndBusyAreTryAgainLater() {
        let interrupted = SystemError(operation: "list tables", object: "", errno: .interrupted, kind: .tryAgain,
                                      subsystem: "nftables")
        XCTAssertEqual(CNIError(interrupted).code, .tryAgainLater)
        XCTAssertEqual(CNIError(SystemError(operation: "add veth", object: "veth1", errno: .busy)).code, 11)
        XCTAssertEqual(CNIError(SystemError(operation: "flock(LOCK_EX)", object: "/d/lock", errno: .tryAgain)).code, 11)
    }

    func testFileOperationsAreIOFailure() {
        for op in ["open", "read", "write", "fsync", "rename to", "mkdir", "unlink", "opendir", "flock(LOCK_EX)"] {
            let e = SystemError(operation: op, object: "/var/lib/cni/networks/n/10.0.0.2", errno: .noSpace)
            XCTAssertEqual(CNIError(e).code, .ioFailure, op)
        }
        XCTAssertEqual(CNIError(SystemError(operation: "open", object: "/x", errno: .permissionDenied)).code, 5)
    }

    func testEverythingElseIsInternal() {
        // Netlink and nftables failures are not file failures, whatever their operation's name.
        let nft = SystemError(operation: "add element", object: "inet netlab map pm_v4", errno: .exists, subsystem: "nftables")
        XCTAssertEqual(CNIError(nft).code, .internal)
        let sameNameOtherLayer = SystemError(operation: "write", object: "nfnetlink", errno: .noBufferSpace, subsystem: "nftables")
        XCTAssertEqual(CNIError(sameNameOtherLayer).code, 999)
        XCTAssertEqual(CNIError(SystemError(operation: "add route", object: "eth0", errno: .networkUnreachable)).code, 999)
        XCTAssertEqual(CNIError(SystemError(operation: "set link up", object: "eth0", errno: .notPermitted)).code, 999)
    }

    func testKernelTextGoesToDetailsAndContextPrefixesMsg() {
        let e = SystemError(operation: "add element", object: "inet netlab map masq_v4", errno: .invalidArgument,
                            message: "Element key out of range", subsystem: "nftables", index: 3)
        let c = CNIError(e, context: "bridge ADD")
        XCTAssertEqual(c.details, "Element key out of range")
        XCTAssertEqual(c.msg, "bridge ADD: nftables: add element inet netlab map masq_v4: EINVAL (Invalid argument) "
            + "(batch operation #3): Element key out of range")
        XCTAssertEqual(CNIError(SystemError(operation: "open", object: "/x", errno: .exists)).details, "")
    }

    func testMappingAndWrapping() throws {
        let e = SystemError(operation: "add veth", object: "veth0", errno: .tryAgain)
        XCTAssertThrowsError(try CNIError.mapping("step") { () throws -> Int in throw e }) { err in
            XCTAssertEqual(err as? CNIError, CNIError(code: .tryAgainLater, msg: "step: add veth veth0: EAGAIN (Resource temporarily unavailable)"))
        }
        // Errors that are not SystemErrors pass `mapping` unchanged.
        let own = CNIError.invalidConfig("x")
        XCTAssertThrowsError(try CNIError.mapping("step") { () throws -> Int in throw own }) { err in
            XCTAssertEqual(err as? CNIError, own)
        }
        XCTAssertEqual(try CNIError.mapping("step") { 42 }, 42)
        XCTAssertEqual(CNIError.wrapping(own, context: "ignored for CNIErrors"), own)
        XCTAssertEqual(CNIError.wrapping(e, context: "c").code, 11)
    }

    func testCombiningKeepsASharedCodeAndEveryMessage() throws {
        XCTAssertNil(CNIError.combining([]))
        let busy = SystemError(operation: "delete link", object: "eth0", errno: .busy)
        XCTAssertEqual(CNIError.combining([busy], context: "bridge DEL"),
                       CNIError(code: .tryAgainLater, msg: "bridge DEL: delete link eth0: EBUSY (Device or resource busy)"))
        let again = CNIError.tryAgainLater("IPAM lock held", details: "flock")
        let both = try XCTUnwrap(CNIError.combining([busy, again], context: "bridge DEL"))
        XCTAssertEqual(both.code, .tryAgainLater)
        XCTAssertEqual(both.msg, "bridge DEL: delete link eth0: EBUSY (Device or resource busy); IPAM lock held")
        XCTAssertEqual(both.details, "flock")
        let mixed = try XCTUnwrap(CNIError.combining([again, CNIError.ioFailure("disk")]))
        XCTAssertEqual(mixed.code, .internal)
        XCTAssertEqual(mixed.msg, "IPAM lock held; disk")
    }

    /// A plugin whose verb throws a SystemError: the runtime reads its kind's code, the
    /// kernel's words in `details`, exit status 1.
    func testPluginMainKeepsCodeAndKernelText() throws {
        let p = Recorder()
        p.failWith = SystemError(operation: "list tables", object: "", errno: .interrupted, kind: .tryAgain,
                                 message: "dump interrupted 3 times", subsystem: "nftables")
        let env = ["CNI_COMMAND": "DEL", "CNI_CONTAINERID": "ctr1", "CNI_IFNAME": "eth0", "CNI_PATH": "/opt/cni/bin"]
        let (out, code) = PluginMain.execute(p, environment: env, stdin: Array(#"{"cniVersion":"1.0.0","name":"n","type":"r"}"#.utf8))
        XCTAssertEqual(code, 1)
        let json = try JSONValue.parse(out)
        XCTAssertEqual(json["code"]?.intValue, 11)
        XCTAssertEqual(json["details"]?.stringValue, "dump interrupted 3 times")
        XCTAssertEqual(json["msg"]?.stringValue, "nftables: list tables: EINTR (Interrupted system call): dump interrupted 3 times")

        p.failWith = SystemError(operation: "open netns", object: "/run/netns/gone", errno: .noSuchFileOrDirectory,
                                 kind: .namespaceGone)
        let (out3, _) = PluginMain.execute(p, environment: env, stdin: Array(#"{"cniVersion":"1.0.0","name":"n","type":"r"}"#.utf8))
        XCTAssertEqual(try JSONValue.parse(out3)["code"]?.intValue, 3)
    }
}
