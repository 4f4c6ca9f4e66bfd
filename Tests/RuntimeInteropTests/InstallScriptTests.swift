// scripts/install.sh as a person runs it: a release install into an empty prefix, the installed
// plugins answering with no environment at all (no Swift, no PATH), only the C libraries the
// docs name as dependencies, and --uninstall leaving the prefix as empty as it was.

import Foundation
import TestSupport
import XCTest

final class InstallScriptTests: XCTestCase {
    /// The repository root (this file is Tests/RuntimeInteropTests/InstallScriptTests.swift).
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().path
    /// The shared libraries an installed binary may need: the C libraries the docs name
    /// (libnl-3-200, libnl-route-3-200, libnftnl11, libmnl0) and glibc's own; the C++ runtime
    /// the Swift runtime uses is linked in (Package.swift, `staticCxxRuntime`).
    static let allowedLibraries: Set<String> = [
        "libnl-3.so.200", "libnl-route-3.so.200", "libnftnl.so.11", "libmnl.so.0",
        "libc.so.6", "libm.so.6", "libpthread.so.0", "libdl.so.2", "librt.so.1", "libutil.so.1",
        "linux-vdso.so.1", "ld-linux-x86-64.so.2", "ld-linux-aarch64.so.1",
    ]

    func testInstallIntoAPrefixRunsWithoutSwiftAndUninstallLeavesItEmpty() throws {
        let prefix = try runChecked(["mktemp", "-d"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        defer { _ = runCommand(["rm", "-rf", prefix]) }  // checked below: the prefix must end up empty
        let install = runCommand([Self.repository + "/scripts/install.sh", "--prefix", prefix], timeout: 3600)
        XCTAssertEqual(install.status, 0, "\(install)")

        let bin = prefix + "/opt/cni/bin"
        let names = try runChecked([bin + "/netlab-cni", "--list"]).stdout.split(separator: "\n").map(String.init)
        XCTAssertTrue(names.contains("bridge") && names.contains("host-local"), "\(names)")
        let inode = try inodeOf(bin + "/netlab-cni")
        for name in names {
            XCTAssertEqual(try inodeOf(bin + "/" + name), inode, "\(name) is a hard link of netlab-cni")
        }
        XCTAssertTrue(FileManager.default.isExecutableFile(atPath: prefix + "/usr/local/bin/netlab"))

        // `env -i`: no PATH, no Swift, nothing.
        let version = runCommand(["env", "-i", "CNI_COMMAND=VERSION", bin + "/bridge"])
        XCTAssertEqual(version.status, 0, "\(version)")
        XCTAssertEqual(version.jsonObject?["cniVersion"] as? String, "1.1.0", version.stdout)
        XCTAssertEqual((version.jsonObject?["supportedVersions"] as? [String])?.contains("0.4.0"), true, version.stdout)
        for exe in [bin + "/netlab-cni", prefix + "/usr/local/bin/netlab"] {
            let libs = try sharedLibraries(exe)
            XCTAssertEqual(libs.subtracting(Self.allowedLibraries), [], "\(exe) needs more than the documented libraries")
        }
        // Stripped: no symbol table section left.
        XCTAssertFalse(try runChecked(["readelf", "-S", "-W", bin + "/netlab-cni"]).stdout.contains(".symtab"), "netlab-cni is stripped")

        let uninstall = runCommand([Self.repository + "/scripts/install.sh", "--prefix", prefix, "--uninstall"])
        XCTAssertEqual(uninstall.status, 0, "\(uninstall)")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: prefix), [], "uninstall leaves the prefix empty")
    }

    private func inodeOf(_ path: String) throws -> UInt64 {
        let attrs = try FileManager.default.attributesOfItem(atPath: path)
        return try XCTUnwrap(attrs[.systemFileNumber] as? UInt64)
    }

    /// The sonames `ldd` lists for an executable.
    private func sharedLibraries(_ exe: String) throws -> Set<String> {
        let out = try runChecked(["ldd", exe]).stdout
        return Set(out.split(separator: "\n").compactMap { line in
            line.split(separator: " ").first.map { String($0.split(separator: "/").last ?? $0).trimmingCharacters(in: .whitespaces) }
        })
    }
}
