@testable import Netlink
import Foundation
import NetTypes
import SystemKit
import TestSupport
import XCTest

/// The one retry rule for dumps a concurrent change interrupted (NetlinkWire), played with an
/// injected dump: no kernel involved.
final class InterruptedDumpRetryTests: XCTestCase {
    private let interrupted = SystemError(operation: "list links", object: "ns", errno: .interrupted)

    func testSucceedsAfterInterruptionsBelowTheLimit() throws {
        for k in [0, 1, NetlinkWire.dumpAttempts - 1] {
            var calls = 0
            let result = try NetlinkWire.retryingInterruptedDump("list links", "ns", subsystem: nil) { () throws(SystemError) -> Int in
                calls += 1
                if calls <= k { throw interrupted }
                return 42
            }
            XCTAssertEqual(result, 42, "after \(k) interruptions")
            XCTAssertEqual(calls, k + 1, "one call per interruption, then the one that succeeds")
        }
    }

    func testKeepsBeingInterruptedBecomesTryAgain() {
        var calls = 0
        XCTAssertThrowsError(try NetlinkWire.retryingInterruptedDump("list tables", "ruleset", subsystem: "nftables") {
            () throws(SystemError) -> Int in
            calls += 1
            throw interrupted
        }) { error in
            guard let e = error as? SystemError else { return XCTFail("\(error)") }
            XCTAssertEqual(e.kind, .tryAgain)
            XCTAssertTrue(e.isTransient)
            XCTAssertEqual(e.operation, "list tables")
            XCTAssertEqual(e.object, "ruleset")
            XCTAssertEqual(e.subsystem, "nftables")
            XCTAssertTrue(e.message?.contains("try again later") ?? false, "\(e)")
            XCTAssertTrue(e.description.hasPrefix("nftables: list tables ruleset: "), e.description)
        }
        XCTAssertEqual(calls, NetlinkWire.dumpAttempts)
    }

    func testOtherErrorsPassThroughAtOnce() {
        let gone = SystemError(operation: "list rules", object: "inet t/c", errno: .noSuchFileOrDirectory,
                               message: "No such chain", subsystem: "nftables")
        var calls = 0
        XCTAssertThrowsError(try NetlinkWire.retryingInterruptedDump("list rules", "inet t/c", subsystem: "nftables") {
            () throws(SystemError) -> Int in
            calls += 1
            throw gone
        }) { XCTAssertEqual($0 as? SystemError, gone) }
        XCTAssertEqual(calls, 1)
    }

    func testCallerDecidesWhatCountsAsInterrupted() {
        var calls = 0
        // An EINTR the predicate does not recognise is an ordinary error.
        XCTAssertThrowsError(try NetlinkWire.retryingInterruptedDump("x", "y", subsystem: nil, isInterrupted: { _ in false }) {
            () throws(SystemError) -> Int in
            calls += 1
            throw interrupted
        }) { XCTAssertEqual(($0 as? SystemError)?.kind, .other) }
        XCTAssertEqual(calls, 1)
    }
}

/// Dumps of a namespace whose links and addresses change all the time: every dump answers,
/// with the stable part of the state intact, and the restart path really ran.
final class RouteDumpChurnTests: XCTestCase {
    func testLinkAndAddressDumpsSurviveConcurrentChanges() throws {
        let (world, ns) = try makeWorld(self)
        let path = world.path(ns[0])
        let setup = try RouteSocket(namespace: path)
        // Enough links and addresses that each dump spans several messages, so a change can
        // land between two of them (a dump that fits one message is never interrupted).
        let stableLinks = 40, stableAddresses = 200
        for i in 0..<stableLinks { try setup.addVethPair(name: "st\(i)", peerName: "sp\(i)") }
        let anchor = try setup.requireLink(named: "st0")
        let stable = (0..<stableAddresses).map { CIDR("10.77.\($0 / 250).\($0 % 250 + 1)/32")! }
        for a in stable { try setup.addAddress(anchor.index, a) }
        try setup.addVethPair(name: "cz0", peerName: "cz1")
        let churnIndex = try setup.requireLink(named: "cz0").index

        let reader = try RouteSocket(namespace: path)
        let writer = try RouteSocket(namespace: path)
        let done = DoneFlag()
        let deadline = Date().addingTimeInterval(20)
        let churn: @Sendable () throws -> Void = {
            var i = 0
            while !done.isSet && Date() < deadline {
                let a = CIDR("10.78.\(i % 250).1/24")!
                try writer.addAddress(churnIndex, a)
                try writer.deleteAddress(churnIndex, a)
                if i % 20 == 0 {
                    try writer.addVethPair(name: "ch0", peerName: "ch1")
                    try writer.deleteLink(named: "ch0")
                }
                i += 1
            }
        }
        // Hundreds of rounds, and on until the churn has interrupted a dump (or time is up).
        let list: @Sendable () throws -> Void = {
            defer { done.set() }
            var round = 0
            while round < 300 || (reader.restartedDumps == 0 && Date() < deadline) {
                // Every stable link once (an interrupted attempt must leave nothing behind).
                let names = try reader.links().map(\.name)
                let stableNames = names.filter { $0.hasPrefix("st") || $0.hasPrefix("sp") }
                guard stableNames.count == 2 * stableLinks, Set(stableNames).count == 2 * stableLinks else {
                    throw SystemError(operation: "check", object: "links", errno: .noSuchDevice,
                                      message: "round \(round): \(stableNames.count) stable links listed: \(names.sorted())")
                }
                let listed = try reader.addresses(index: anchor.index).map(\.address)
                guard listed.count == stable.count, Set(listed) == Set(stable) else {
                    throw SystemError(operation: "check", object: "addresses", errno: .noSuchDeviceOrAddress,
                                      message: "round \(round): \(listed.count) addresses instead of \(stable.count)")
                }
                round += 1
            }
        }
        let errors = Threads.runConcurrently([list, churn])
        XCTAssertTrue(errors.isEmpty, "\(errors)")
        XCTAssertGreaterThan(reader.restartedDumps, 0, "no dump was interrupted: the churn did not overlap the dumps")
    }
}

/// Set once by the thread that finishes first.
final class DoneFlag: @unchecked Sendable {
    private let lock = Lock()
    private var value = false
    var isSet: Bool { lock.withLock { value } }
    func set() { lock.withLock { value = true } }
}
