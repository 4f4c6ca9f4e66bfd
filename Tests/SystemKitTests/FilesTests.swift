import Glibc
import XCTest
@testable import SystemKit

final class FilesTests: XCTestCase {
    // MARK: writeAtomically

    func testAtomicWriteHasTheContentAndExactlyThePermissions() throws {
        let dir = try makeTemporaryDirectory()
        let path = dir + "/state"
        // 0o666 would become 0o644 under the usual umask if the mode were only given to open.
        try Files.writeAtomically(path, Array("first".utf8), permissions: 0o666)
        XCTAssertEqual(try text(path), "first")
        XCTAssertEqual(try permissions(path), 0o666)
        // Replacing a file with other permissions gives the new ones.
        try Files.writeAtomically(path, Array("second".utf8), permissions: 0o600)
        XCTAssertEqual(try text(path), "second")
        XCTAssertEqual(try permissions(path), 0o600)
        // An empty file is a file too.
        try Files.writeAtomically(path, [UInt8]())
        XCTAssertEqual(try Files.read(path), [])
        XCTAssertEqual(try Files.list(dir), ["state"], "no temporary file is left beside it")
    }

    func testAtomicWriteReplacesASymlinkInsteadOfFollowingIt() throws {
        let dir = try makeTemporaryDirectory()
        let target = dir + "/target", link = dir + "/link"
        try Files.writeAtomically(target, Array("target".utf8))
        XCTAssertEqual(symlink(target, link), 0)
        try Files.writeAtomically(link, Array("new".utf8))
        XCTAssertEqual(try text(target), "target")
        let st = try XCTUnwrap(Files.linkStatus(link))
        XCTAssertEqual(st.st_mode & S_IFMT, S_IFREG)
        XCTAssertEqual(try text(link), "new")
    }

    func testAFailureBeforeTheRenameLeavesTheOldFileAndNoTemporaryFile() throws {
        let dir = try makeTemporaryDirectory()
        let path = dir + "/config"
        try Files.writeAtomically(path, Array("old".utf8))
        let inode = try XCTUnwrap(Files.linkStatus(path)).st_ino

        struct Crash: Error {}
        var seen: (tmp: String, content: String?, current: String?)?
        Files.beforeRename = { tmp in
            // At this point the new content is complete (and synced) beside the old file.
            seen = (tmp, try text(tmp), try text(path))
            throw Crash()
        }
        defer { Files.beforeRename = nil }
        XCTAssertThrowsError(try Files.writeAtomically(path, Array("new".utf8))) { error in
            let e = error as? SystemError
            XCTAssertEqual(e?.operation, "write")
            XCTAssertEqual(e?.object, seen?.tmp)
            XCTAssertTrue(e?.message?.contains("Crash") == true, "\(error)")
        }
        XCTAssertEqual(seen?.content, "new")
        XCTAssertEqual(seen?.current, "old")
        XCTAssertTrue(seen?.tmp.hasPrefix(dir + "/") == true, "the temporary file is beside the target: \(String(describing: seen))")
        XCTAssertEqual(try text(path), "old")
        XCTAssertEqual(try Files.linkStatus(path)?.st_ino, inode, "the old file itself, untouched")
        XCTAssertEqual(try Files.list(dir), ["config"], "the temporary file was removed")
    }

    // MARK: createExclusive

    func testReadIfPresentWithoutFollowingRefusesASymlink() throws {
        let dir = try makeTemporaryDirectory()
        let target = dir + "/target", link = dir + "/link"
        try Files.writeAtomically(target, Array("secret".utf8))
        XCTAssertEqual(symlink(target, link), 0)
        XCTAssertEqual(try Files.readIfPresent(target, followSymlink: false), Array("secret".utf8))
        XCTAssertNil(try Files.readIfPresent(dir + "/absent", followSymlink: false))
        XCTAssertThrowsError(try Files.readIfPresent(link, followSymlink: false)) { error in
            XCTAssertEqual((error as? SystemError)?.errno, .loop)
            XCTAssertEqual((error as? SystemError)?.object, link)
        }
        XCTAssertEqual(try Files.readIfPresent(link, followSymlink: true), Array("secret".utf8))
    }

    func testCreateExclusiveCreatesOnceAndNeverOverwrites() throws {
        let dir = try makeTemporaryDirectory()
        let path = dir + "/10.0.0.2"
        XCTAssertTrue(try Files.createExclusive(path, Array("ctr-1\neth0".utf8), permissions: 0o640))
        XCTAssertEqual(try text(path), "ctr-1\neth0")
        XCTAssertEqual(try permissions(path), 0o640 & ~currentUmask())
        XCTAssertFalse(try Files.createExclusive(path, Array("ctr-2\neth0".utf8)))
        XCTAssertEqual(try text(path), "ctr-1\neth0")
    }

    func testCreateExclusiveNeverFollowsAPlantedSymlink() throws {
        let dir = try makeTemporaryDirectory()
        // A dangling link: following it would create the target.
        let target = dir + "/victim", link = dir + "/10.0.0.3"
        XCTAssertEqual(symlink(target, link), 0)
        XCTAssertFalse(try Files.createExclusive(link, Array("x".utf8)))
        XCTAssertNil(try Files.linkStatus(target), "the link's target was created")
        // A link to an existing file: the file keeps its content.
        try Files.writeAtomically(target, Array("precious".utf8))
        XCTAssertFalse(try Files.createExclusive(link, Array("x".utf8)))
        XCTAssertEqual(try text(target), "precious")
    }

    func testWritesIntoAMissingDirectoryFail() throws {
        let dir = try makeTemporaryDirectory()
        XCTAssertThrowsError(try Files.writeAtomically(dir + "/missing/file", [1])) { error in
            XCTAssertEqual((error as? SystemError)?.kind, .notFound)
        }
        XCTAssertThrowsError(try Files.createExclusive(dir + "/missing/file", [1])) { error in
            XCTAssertEqual((error as? SystemError)?.kind, .notFound)
            XCTAssertEqual((error as? SystemError)?.object, dir + "/missing/file")
        }
    }

    // MARK: directories

    func testMakeDirectoriesCreatesEveryLevelOnceAndAgainIsFine() throws {
        let dir = try makeTemporaryDirectory()
        let deep = dir + "/a/b/c"
        try Files.makeDirectories(deep, permissions: 0o700)
        for d in [dir + "/a", dir + "/a/b", deep] {
            XCTAssertTrue(Files.isDirectory(d), d)
            XCTAssertEqual(try permissions(d), 0o700, d)
        }
        try Files.makeDirectories(deep, permissions: 0o700)
        try Files.makeDirectories(deep + "/", permissions: 0o700)
        XCTAssertEqual(try Files.list(dir + "/a/b"), ["c"])
    }

    func testMakeDirectoriesFailsWhereAFileIsInTheWay() throws {
        let dir = try makeTemporaryDirectory()
        try Files.writeAtomically(dir + "/file", [1])
        // The level that is a file is named, with the errno `mkdir -p` gives: ENOTDIR where
        // a parent should be, EEXIST where the directory itself should be.
        for (path, errno) in [(dir + "/file/sub", Errno.notDirectory), (dir + "/file", Errno.exists)] {
            XCTAssertThrowsError(try Files.makeDirectories(path), path) { error in
                XCTAssertEqual((error as? SystemError)?.errno, errno, "\(error)")
                XCTAssertEqual((error as? SystemError)?.object, dir + "/file")
            }
        }
        XCTAssertThrowsError(try Files.makeDirectory(dir + "/file"))
        XCTAssertThrowsError(try Files.makeDirectory(dir, existingIsFine: false)) { error in
            XCTAssertEqual((error as? SystemError)?.kind, .exists)
        }
    }

    func testListIsSortedAndMissingDirectoriesAreNotFound() throws {
        let dir = try makeTemporaryDirectory()
        for name in ["b", "a", "c"] { try Files.writeAtomically(dir + "/" + name, [0]) }
        XCTAssertEqual(try Files.list(dir), ["a", "b", "c"])
        XCTAssertThrowsError(try Files.list(dir + "/missing")) { error in
            XCTAssertEqual((error as? SystemError)?.kind, .notFound)
            XCTAssertEqual((error as? SystemError)?.object, dir + "/missing")
        }
        XCTAssertEqual(try Files.listIfPresent(dir + "/missing"), [])
        XCTAssertNil(try Files.readIfPresent(dir + "/missing"))
        XCTAssertNil(try Files.readText(dir + "/missing"))
        XCTAssertThrowsError(try Files.read(dir + "/missing"))
    }

    // MARK: removeTree

    func testRemoveTreeRemovesEverythingButNeverFollowsSymlinksOut() throws {
        let dir = try makeTemporaryDirectory()
        let outside = dir + "/outside", tree = dir + "/tree"
        try Files.makeDirectories(outside + "/keep")
        try Files.writeAtomically(outside + "/keep/file", Array("keep".utf8))
        try Files.writeAtomically(outside + "/file", Array("keep".utf8))
        try Files.makeDirectories(tree + "/x/y")
        try Files.writeAtomically(tree + "/x/y/z", [1])
        try Files.writeAtomically(tree + "/top", [1])
        XCTAssertEqual(symlink(outside + "/keep", tree + "/x/dirlink"), 0)
        XCTAssertEqual(symlink(outside + "/file", tree + "/filelink"), 0)
        XCTAssertEqual(symlink(dir + "/nowhere", tree + "/dangling"), 0)

        try Files.removeTree(tree)
        XCTAssertNil(try Files.linkStatus(tree))
        XCTAssertEqual(try text(outside + "/keep/file"), "keep")
        XCTAssertEqual(try text(outside + "/file"), "keep")

        // A symlink given as the tree itself: the link goes, its target stays.
        XCTAssertEqual(symlink(outside, dir + "/rootlink"), 0)
        try Files.removeTree(dir + "/rootlink")
        XCTAssertNil(try Files.linkStatus(dir + "/rootlink"))
        XCTAssertEqual(try text(outside + "/keep/file"), "keep")
        // Nothing there is no error.
        try Files.removeTree(dir + "/never-was")
    }

    func testRemoveOfAMissingFileIsFine() throws {
        let dir = try makeTemporaryDirectory()
        try Files.remove(dir + "/missing")
        XCTAssertThrowsError(try Files.remove(dir)) { error in
            XCTAssertEqual((error as? SystemError)?.operation, "unlink")
        }
    }

    func testDirectoryName() {
        XCTAssertEqual(Files.directoryName("/a/b/c"), "/a/b")
        XCTAssertEqual(Files.directoryName("/c"), "/")
        XCTAssertEqual(Files.directoryName("c"), ".")
    }
}

/// The process umask (read by setting it and putting it back).
func currentUmask() -> mode_t {
    let mask = umask(0o022)
    umask(mask)
    return mask
}
