import Foundation
import XCTest
import TestSupport

/// Many plugins started at once on one network, as a runtime starting a pod burst does.
final class BridgeConcurrencyTests: XCTestCase {
    /// Runs `body(i)` for every i on its own thread, all at once, and waits for them.
    func simultaneously<T>(_ n: Int, _ body: @escaping @Sendable (Int) -> T) -> [T] {
        nonisolated(unsafe) var out = [T?](repeating: nil, count: n)
        let lock = NSLock()
        let group = DispatchGroup()
        for i in 0..<n {
            group.enter()
            let t = Thread {
                let r = body(i)
                lock.withLock { out[i] = r }
                group.leave()
            }
            t.start()
        }
        group.wait()
        return out.map { $0! }
    }

    func testFiftyConcurrentAddsThenFiftyConcurrentDels() throws {
        let world = TestWorld()
        addTeardownBlock { world.cleanup() }
        let bw = BridgeWorld(world)
        let conf = bw.config(["isGateway": true, "isDefaultGateway": true, "ipMasq": true])
        let n = 50
        let ctrs = (0..<n).map { world.netns("c\($0)") }
        nonisolated(unsafe) let b = bw

        let adds = simultaneously(n) { i in b.run("ADD", conf, ctr: ctrs[i], id: "burst-\(i)") }
        for (i, r) in adds.enumerated() { XCTAssertEqual(r.status, 0, "ADD \(i): \(r.description)") }
        let addrs = adds.map { BridgeWorld.addresses($0).first ?? "" }
        XCTAssertEqual(Set(addrs).count, n, "addresses must be distinct: \(addrs.sorted())")
        XCTAssertEqual(bw.leases().count, n)
        XCTAssertEqual(bw.masqElements().count, n)
        XCTAssertEqual(bw.hostVeths().count, n)
        for a in addrs where !a.isEmpty {
            XCTAssertEqual(bw.ping(from: bw.host, BridgeWorld.ip(a)).status, 0, "host -> \(a)")
        }

        let dels = simultaneously(n) { i in b.run("DEL", conf, ctr: ctrs[i], id: "burst-\(i)") }
        for (i, r) in dels.enumerated() { XCTAssertEqual(r.status, 0, "DEL \(i): \(r.description)") }
        XCTAssertEqual(bw.leases(), [])
        XCTAssertEqual(bw.masqElements().count, 0)
        XCTAssertEqual(bw.hostVeths(), [])
    }
}
