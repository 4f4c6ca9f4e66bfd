import Glibc
import XCTest
import SystemKit
import TestSupport

/// The leftovers of an atomic write whose process was killed before the rename (the crash-fault
/// test found one in the runtime's result cache): removed when their writer is gone, kept while
/// it lives, and names that merely look alike are never touched.
final class AbandonedTemporariesTests: XCTestCase {
    func testOnlyTemporariesOfDeadWritersAreRemoved() throws {
        let world = TestWorld()
        defer { world.cleanup() }
        let dir = world.tempDirectory("cache")
        // A pid above the kernel's limit (pid_max is at most 2^22) belongs to no process.
        let dead = "net-c1-eth0.tmp.\(Int32(1 << 22) + 7).1"
        let alive = "net-c1-eth0.tmp.\(getpid()).2"
        for name in [dead, alive, "net-c1-eth0", "net-c1-eth0.tmp.notapid.1", "other.tmp.\(Int32(1 << 22) + 7).1"] {
            try Files.writeAtomically(dir + "/" + name, Array("x".utf8))
        }
        let removed = try Files.removeAbandonedTemporaries(in: dir, namePrefix: "net-c1-eth0.tmp.")
        XCTAssertEqual(removed, [dead])
        XCTAssertEqual(try Files.list(dir).sorted(),
                       [alive, "net-c1-eth0", "net-c1-eth0.tmp.notapid.1", "other.tmp.\(Int32(1 << 22) + 7).1"].sorted())
    }
}
