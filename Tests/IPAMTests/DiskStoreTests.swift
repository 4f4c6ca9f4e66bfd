import Foundation
import XCTest
import NetTypes
import SystemKit
import TestSupport
@testable import IPAM

final class DiskStoreTests: XCTestCase {
    var dataDir = ""

    override func setUpWithError() throws {
        dataDir = try makeTempDir(self)
    }

    /// `ipam` is a JSON object; the test's dataDir is added to it.
    func diskAllocator(_ ipam: String, network: String = "testnet") throws -> Allocator {
        let body = ipam.dropLast()  // the closing brace
        let json = #"{"name": "\#(network)", "ipam": \#(body), "dataDir": "\#(dataDir)"}}"#
        return try Allocator(network: network, settings: try settings(json))
    }

    /// A state file's text; throws when it is missing or unreadable.
    func contents(_ name: String, network: String = "testnet") throws -> String {
        String(decoding: try Files.read(dataDir + "/" + network + "/" + name), as: UTF8.self)
    }

    /// The names in the network's state directory; throws when it cannot be listed.
    func files(network: String = "testnet") throws -> Set<String> {
        Set(try Files.list(dataDir + "/" + network))
    }

    func testReferenceLayout() throws {
        let a = try diskAllocator(#"{"ranges": [[{"subnet": "10.1.0.0/24"}], [{"subnet": "fd00:1::/64"}]]}"#)
        let got = try a.allocate(containerID: "ctr-1", ifName: "eth0")
        XCTAssertEqual(got.map(\.address.description), ["10.1.0.2/24", "fd00:1::2/64"])
        XCTAssertEqual(try files(), ["lock", "10.1.0.2", "fd00:1::2", "last_reserved_ip.0", "last_reserved_ip.1"])
        XCTAssertEqual(try contents("10.1.0.2"), "ctr-1\r\neth0")
        XCTAssertEqual(try contents("fd00:1::2"), "ctr-1\r\neth0")
        XCTAssertEqual(try contents("last_reserved_ip.0"), "10.1.0.2")
        XCTAssertEqual(try contents("last_reserved_ip.1"), "fd00:1::2")
        let attrs = try FileManager.default.attributesOfItem(atPath: dataDir + "/testnet/10.1.0.2")
        XCTAssertEqual((attrs[.posixPermissions] as? NSNumber)?.intValue, 0o644, "the reference plugin writes 0644 files")

        // A second store instance (another plugin process) continues the round robin.
        let b = try diskAllocator(#"{"ranges": [[{"subnet": "10.1.0.0/24"}], [{"subnet": "fd00:1::/64"}]]}"#)
        XCTAssertEqual(try b.allocate(containerID: "ctr-2", ifName: "eth0").map(\.address.address),
                       [ip("10.1.0.3"), ip("fd00:1::3")])
        XCTAssertEqual(try b.release(containerID: "ctr-1", ifName: "eth0").count, 2)
        XCTAssertEqual(try b.release(containerID: "ctr-1", ifName: "eth0").count, 0)
        XCTAssertEqual(try files(), ["lock", "10.1.0.3", "fd00:1::3", "last_reserved_ip.0", "last_reserved_ip.1"])
    }

    func testLegacyAndHandWrittenFiles() throws {
        let a = try diskAllocator(#"{"subnet": "10.1.0.0/24"}"#)
        let dir = dataDir + "/testnet/"
        try "legacy-ctr".write(toFile: dir + "10.1.0.50", atomically: false, encoding: .utf8)
        try "echoed-ctr\r\neth0\n".write(toFile: dir + "10.1.0.51", atomically: false, encoding: .utf8)
        try "junk".write(toFile: dir + "not-an-ip", atomically: false, encoding: .utf8)
        let all = try a.reservations()
        XCTAssertEqual(all, [Reservation(address: ip("10.1.0.50"), containerID: "legacy-ctr", ifName: nil),
                             Reservation(address: ip("10.1.0.51"), containerID: "echoed-ctr", ifName: "eth0")])
        XCTAssertNoThrow(try a.check(containerID: "legacy-ctr", ifName: "eth0"))
        XCTAssertEqual(try a.release(containerID: "legacy-ctr", ifName: "eth0"), [ip("10.1.0.50")])
        XCTAssertEqual(try a.release(containerID: "echoed-ctr", ifName: "eth0"), [ip("10.1.0.51")])
        XCTAssertEqual(try files(), ["lock", "not-an-ip"])
    }

    func testRequestedAddressTakenOnDisk() throws {
        let a = try diskAllocator(#"{"subnet": "10.1.0.0/24"}"#)
        XCTAssertEqual(try a.allocate(containerID: "a", ifName: "eth0", requested: [ip("10.1.0.9")])[0].address.description, "10.1.0.9/24")
        XCTAssertThrowsError(try a.allocate(containerID: "b", ifName: "eth0", requested: [ip("10.1.0.9")])) { e in
            XCTAssertEqual(e as? IPAMError, .addressInUse(address: ip("10.1.0.9"), owner: "container a interface eth0"))
        }
        XCTAssertEqual(try contents("10.1.0.9"), "a\r\neth0")
    }

    func testGCOnDisk() throws {
        let a = try diskAllocator(#"{"subnet": "10.1.0.0/24"}"#)
        for id in ["x", "y", "z"] { _ = try a.allocate(containerID: id, ifName: "eth0") }
        XCTAssertEqual(try a.gc(validAttachments: [AttachmentID(containerID: "y", ifName: "eth0")]), [ip("10.1.0.2"), ip("10.1.0.4")])
        XCTAssertEqual(try files(), ["lock", "last_reserved_ip.0", "10.1.0.3"])
    }

    func testNetworkNamesThatEscapeAreRejected() throws {
        for bad in ["", ".", "..", "../etc", "a/b", "/abs", "x\ny", String(repeating: "n", count: 256)] {
            XCTAssertThrowsError(try DiskStore(network: bad, dataDir: dataDir), "\(bad.debugDescription)") { e in
                XCTAssertEqual((e as? IPAMError)?.cniCode, 7)
            }
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dataDir), [])
        XCTAssertEqual(try DiskStore(network: "ok-net.1", dataDir: dataDir + "/").directory, dataDir + "/ok-net.1")
    }

    /// A store failure carries the system error itself (operation, path, errno) and becomes
    /// CNI code 5 through the one mapping, its message naming all three.
    func testIOErrorsCarryTheSystemError() throws {
        try "file".write(toFile: dataDir + "/blocker", atomically: false, encoding: .utf8)
        XCTAssertThrowsError(try DiskStore(network: "n", dataDir: dataDir + "/blocker")) { e in
            XCTAssertEqual(e as? IPAMError, .io(SystemError(operation: "mkdir", object: dataDir + "/blocker", errno: .notDirectory)))
            let cni = (e as? IPAMError)?.cniError
            XCTAssertEqual(cni?.code, 5)
            XCTAssertEqual(cni?.msg, "mkdir \(dataDir)/blocker: ENOTDIR (Not a directory)")
        }
    }

    /// A busy lock (EWOULDBLOCK is EAGAIN on Linux) says "try again later" (11), not "I/O failure".
    func testTransientStoreErrorIsCode11() {
        let e = IPAMError.io(SystemError(operation: "flock(LOCK_EX)", object: "/d/lock", errno: .tryAgain))
        XCTAssertEqual(e.cniCode, 11)
    }

    /// Symlinks planted in the network's directory are never followed when the store writes:
    /// a reservation file that is a link counts as taken, `last_reserved_ip` replaces the link
    /// itself, and a `lock` link is refused (ELOOP, code 5). The link targets stay untouched.
    func testPlantedSymlinksAreNotFollowed() throws {
        let outside = dataDir + "/outside"
        try "precious".write(toFile: outside, atomically: false, encoding: .utf8)
        let dir = dataDir + "/testnet"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: dir + "/10.1.0.2", withDestinationPath: outside)
        try FileManager.default.createSymbolicLink(atPath: dir + "/last_reserved_ip.0", withDestinationPath: outside)
        let a = try diskAllocator(#"{"subnet": "10.1.0.0/24"}"#)
        // The round robin restarts at the range start (the link holds no address): .2 is taken.
        XCTAssertEqual(try a.allocate(containerID: "ctr", ifName: "eth0").map(\.address.description), ["10.1.0.3/24"])
        XCTAssertEqual(try String(contentsOfFile: outside, encoding: .utf8), "precious")
        let attrs = try FileManager.default.attributesOfItem(atPath: dir + "/last_reserved_ip.0")
        XCTAssertEqual(attrs[.type] as? FileAttributeType, .typeRegular, "the link was replaced by a file")
        XCTAssertEqual(try contents("last_reserved_ip.0"), "10.1.0.3")

        try FileManager.default.removeItem(atPath: dir + "/lock")
        try FileManager.default.createSymbolicLink(atPath: dir + "/lock", withDestinationPath: dataDir + "/lock-target")
        XCTAssertThrowsError(try a.allocate(containerID: "ctr2", ifName: "eth0")) { e in
            guard case .io(let se, _)? = e as? IPAMError else { return XCTFail("\(e)") }
            XCTAssertEqual(se.errno, .loop)
            XCTAssertEqual((e as? IPAMError)?.cniCode, 5)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: dataDir + "/lock-target"), "the lock followed the link")
    }

    /// The lock is a real flock on `<network>/lock`: another process cannot take it while
    /// an operation runs, and can once it is over.
    func testLockIsAnExclusiveFlock() throws {
        let store = try DiskStore(network: "locked", dataDir: dataDir)
        let lockPath = store.directory + "/lock"
        let inside = try store.withLock { runCommand(["flock", "-n", lockPath, "true"]) }
        XCTAssertEqual(inside.status, 1, "flock -n succeeded while the store held the lock")
        let after = runCommand(["flock", "-n", lockPath, "true"])
        XCTAssertEqual(after.status, 0, "\(after)")
    }

    /// 50 allocations at once from 50 threads, each with its own store (its own open()
    /// of the lock file, so flock excludes them from one another as it does processes):
    /// 50 distinct addresses; then 50 concurrent releases leave no address file.
    func testConcurrentAllocateAndRelease() throws {
        let n = 50
        final class Results: @unchecked Sendable {
            let lock = NSLock()
            var byIndex: [Int: Result<[IPAddress], any Error>] = [:]
            func set(_ i: Int, _ r: Result<[IPAddress], any Error>) { lock.lock(); byIndex[i] = r; lock.unlock() }
        }
        func runAll(_ body: @escaping @Sendable (Int) throws -> [IPAddress]) -> Results {
            let results = Results()
            let group = DispatchGroup()
            let start = DispatchSemaphore(value: 0)
            for i in 0..<n {
                group.enter()
                Thread {
                    start.wait()  // all threads are running before any starts its work
                    results.set(i, Result { try body(i) })
                    group.leave()
                }.start()
            }
            for _ in 0..<n { start.signal() }
            group.wait()
            return results
        }
        let conf = try settings(#"{"name": "race", "ipam": {"subnet": "10.7.0.0/24", "dataDir": "\#(dataDir)"}}"#)
        let allocated = runAll { i in
            try Allocator(network: "race", settings: conf).allocate(containerID: "ctr-\(i)", ifName: "eth0").map(\.address.address)
        }
        var addresses: [IPAddress] = []
        for i in 0..<n {
            let got = try XCTUnwrap(allocated.byIndex[i]).get()
            XCTAssertEqual(got.count, 1)
            addresses.append(got[0])
        }
        XCTAssertEqual(Set(addresses).count, n, "an address was handed out twice")
        // Round robin from an empty store hands out exactly .2 … .51.
        XCTAssertEqual(Set(addresses), Set((2...51).map { IPAddress.v4(0x0a07_0000 + UInt32($0)) }))
        XCTAssertEqual(try files(network: "race").filter { IPAddress($0) != nil }.count, n)
        for i in 0..<n {
            XCTAssertEqual(try contents(addresses[i].description, network: "race"), "ctr-\(i)\r\neth0")
        }

        let released = runAll { i in
            try Allocator(network: "race", settings: conf).release(containerID: "ctr-\(i)", ifName: "eth0")
        }
        for i in 0..<n {
            XCTAssertEqual(try XCTUnwrap(released.byIndex[i]).get(), [addresses[i]])
        }
        XCTAssertEqual(try files(network: "race"), ["lock", "last_reserved_ip.0"])
    }

    /// Drop-in check against the reference plugin (Debian's containernetworking-plugins),
    /// when installed: both share one data directory and continue each other's round robin.
    func testInteroperatesWithReferenceHostLocal() throws {
        let reference = "/usr/lib/cni/host-local"
        guard FileManager.default.isExecutableFile(atPath: reference) else {
            throw XCTSkip("reference host-local not installed at \(reference)")
        }
        let conf = #"{"cniVersion": "0.4.0", "name": "interop", "ipam": {"type": "host-local", "subnet": "10.9.0.0/24", "dataDir": "\#(dataDir)"}}"#
        func refRun(_ command: String, _ id: String) -> CommandResult {
            runCommand([reference], environment: [
                "CNI_COMMAND": command, "CNI_CONTAINERID": id, "CNI_NETNS": "/var/run/netns/none",
                "CNI_IFNAME": "eth0", "CNI_PATH": "/usr/lib/cni",
            ], stdin: conf)
        }
        let r1 = refRun("ADD", "ref-1")
        XCTAssertTrue(r1.ok, "\(r1)")
        XCTAssertTrue(r1.stdout.contains("10.9.0.2/24"), r1.stdout)
        let ours = try Allocator(network: "interop", settings: try settings(conf))
        XCTAssertEqual(try ours.allocate(containerID: "ours-1", ifName: "eth0")[0].address.description, "10.9.0.3/24")
        let r2 = refRun("ADD", "ref-2")
        XCTAssertTrue(r2.stdout.contains("10.9.0.4/24"), "\(r2)")
        XCTAssertEqual(try ours.reservations().map(\.containerID), ["ref-1", "ours-1", "ref-2"])
        // Each side releases the other's reservations.
        XCTAssertEqual(try ours.release(containerID: "ref-1", ifName: "eth0"), [ip("10.9.0.2")])
        let d = refRun("DEL", "ours-1")
        XCTAssertTrue(d.ok, "\(d)")
        XCTAssertEqual(try ours.reservations().map(\.containerID), ["ref-2"])
    }
}
