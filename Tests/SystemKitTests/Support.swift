import Glibc
import XCTest
import SystemKit

extension XCTestCase {
    /// A fresh directory under /tmp, removed (without following symlinks) when the test ends.
    func makeTemporaryDirectory() throws -> String {
        var template = Array("/tmp/nlt-systemkit-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        guard made != nil else { throw SystemError(operation: "mkdtemp", object: "/tmp", errno: .current) }
        let dir = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        addTeardownBlock { XCTAssertNoThrow(try Files.removeTree(dir)) }
        return dir
    }
}

/// The permission bits of `path` (lstat), or nil when nothing is there.
func permissions(_ path: String) throws -> mode_t? {
    try Files.linkStatus(path).map { $0.st_mode & 0o7777 }
}

func text(_ path: String) throws -> String? { try Files.readText(path) }
