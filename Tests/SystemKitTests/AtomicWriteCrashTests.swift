import Foundation
import Glibc
import XCTest
import SystemKit
import TestSupport

/// A real crash between the write and the rename of `Files.writeAtomically`: a separate
/// process (atomic-write-probe) stops at exactly that point and is killed with SIGKILL.
final class AtomicWriteCrashTests: XCTestCase {
    func testAKillBetweenWriteAndRenameLeavesTheOldFileIntact() throws {
        let dir = try makeTemporaryDirectory()
        let path = dir + "/last_reserved_ip.0"
        try Files.writeAtomically(path, Array("10.0.0.7".utf8))
        let inode = try XCTUnwrap(Files.linkStatus(path)).st_ino

        let probe = Process()
        probe.executableURL = URL(fileURLWithPath: BuiltProducts.path("atomic-write-probe"))
        probe.arguments = [path, "10.0.0.8"]
        let out = Pipe(), err = Pipe()
        probe.standardOutput = out
        probe.standardError = err
        try probe.run()
        let pid = probe.processIdentifier
        // Should the probe never get there, it is killed after a while and the read below ends.
        let watchdog = DispatchWorkItem { kill(pid, SIGKILL) }
        DispatchQueue.global().asyncAfter(deadline: .now() + 20, execute: watchdog)

        let line = readLine(out.fileHandleForReading)
        XCTAssertTrue(line.hasPrefix("ready "), "the probe did not stop before the rename: \(line) \(String(decoding: err.fileHandleForReading.availableData, as: UTF8.self))")
        let tmp = String(line.dropFirst("ready ".count))
        // It sits between write and rename: the new content is complete beside the old file.
        XCTAssertEqual(try Files.readText(tmp), "10.0.0.8")
        XCTAssertEqual(try Files.readText(path), "10.0.0.7")

        XCTAssertEqual(kill(pid, SIGKILL), 0)
        probe.waitUntilExit()
        watchdog.cancel()
        XCTAssertEqual(probe.terminationReason, .uncaughtSignal)
        XCTAssertEqual(probe.terminationStatus, SIGKILL)

        // After the crash: the old file, unchanged and the same file; only the temporary
        // file is left over (no process was alive to remove it).
        XCTAssertEqual(try Files.readText(path), "10.0.0.7")
        XCTAssertEqual(try Files.linkStatus(path)?.st_ino, inode)
        XCTAssertTrue(tmp.hasPrefix(dir + "/"), tmp)
        XCTAssertEqual(try Files.list(dir), ["last_reserved_ip.0", String(tmp.dropFirst(dir.count + 1))].sorted())
        // The leftover does not stand in the way of the next write.
        try Files.writeAtomically(path, Array("10.0.0.9".utf8))
        XCTAssertEqual(try Files.readText(path), "10.0.0.9")
    }

    /// Reads up to the first newline (or the end of the stream).
    func readLine(_ handle: FileHandle) -> String {
        var data = Data()
        while !data.contains(UInt8(ascii: "\n")) {
            let chunk = handle.availableData
            if chunk.isEmpty { break }
            data += chunk
        }
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
