// 50 host-local processes at once on one network, as a runtime starting 50 containers
// causes: every one must get its own address, and 50 DELs at once must leave nothing.

import Foundation
import XCTest
import TestSupport

final class HostLocalConcurrencyTests: XCTestCase {
    func testFiftyConcurrentAddsGetDistinctAddressesAndFiftyDelsEmptyTheStore() {
        let h = HostLocalHarness(self)
        let conf = h.config(#""ranges": [[{"subnet": "10.70.0.0/24"}], [{"subnet": "fd70::/64"}]]"#, name: "busy")
        let n = 50

        let adds = hostLocalRunTogether(n) { i in h.run("ADD", conf, id: "ctr-\(i)") }
        for (i, r) in adds.enumerated() {
            XCTAssertEqual(r.status, 0, "ADD ctr-\(i): \(r)")
            XCTAssertEqual(r.hostLocalAddresses.count, 2, "ADD ctr-\(i): \(r)")
        }
        let all = adds.flatMap(\.hostLocalAddresses)
        XCTAssertEqual(Set(all).count, 2 * n, "duplicate addresses handed out: \(all.sorted())")
        // From an empty store the round robin hands out exactly the first 50 of each set.
        XCTAssertEqual(Set(all.filter { !$0.contains(":") }), Set((2...51).map { "10.70.0.\($0)/24" }))
        XCTAssertEqual(Set(all.filter { $0.contains(":") }), Set((2...51).map { "fd70::\(String($0, radix: 16))/64" }))
        // Each file names the container that got the address.
        for (i, r) in adds.enumerated() {
            for a in r.hostLocalAddresses {
                let ip = String(a.prefix { $0 != "/" })
                XCTAssertEqual(h.read(ip, network: "busy"), "ctr-\(i)\r\neth0")
            }
        }
        XCTAssertEqual(h.addressFiles("busy").count, 2 * n)

        let dels = hostLocalRunTogether(n) { i in h.run("DEL", conf, id: "ctr-\(i)") }
        for (i, r) in dels.enumerated() { XCTAssertEqual(r.status, 0, "DEL ctr-\(i): \(r)") }
        XCTAssertEqual(h.files("busy"), ["lock", "last_reserved_ip.0", "last_reserved_ip.1"])
    }
}

/// Starts `count` threads that wait at one gate and then each run `body(i)` at once.
func hostLocalRunTogether(_ count: Int, _ body: @escaping @Sendable (Int) -> CommandResult) -> [CommandResult] {
    let state = HostLocalStartGate(count: count)
    let done = DispatchGroup()
    for i in 0..<count {
        done.enter()
        let t = Thread {
            state.waitForOpen()
            state.store(body(i), at: i)
            done.leave()
        }
        t.stackSize = 1 << 20
        t.start()
    }
    state.open()
    done.wait()
    return state.results.map { $0! }
}

/// A gate the worker threads wait at, and the slots they put their results in.
final class HostLocalStartGate: @unchecked Sendable {
    private let condition = NSCondition()
    private var isOpen = false
    private(set) var results: [CommandResult?]

    init(count: Int) { results = Array(repeating: nil, count: count) }

    func waitForOpen() {
        condition.lock()
        while !isOpen { condition.wait() }
        condition.unlock()
    }

    func open() {
        condition.lock()
        isOpen = true
        condition.broadcast()
        condition.unlock()
    }

    func store(_ r: CommandResult, at i: Int) {
        condition.lock()
        results[i] = r
        condition.unlock()
    }
}
