import Foundation
import Glibc
import XCTest
import SystemKit
import TestSupport

/// host-local with its data dir on a full tmpfs and on a read-only one, and plugins with few
/// file descriptors: each a CNI error JSON that names the path (never a crash), and nothing
/// half-written. The tmpfs lives in a private mount namespace (`unshare --mount`) that ends
/// with the shell, so the machine's mounts are never touched.
final class ExhaustionFaultTests: XCTestCase {
    /// tmpfs size: room for the first reservation's files, then filled completely.
    static let tinyFilesystem = "size=64k"
    /// The CNI spec's well-known code for an I/O failure.
    static let ioErrorCode = 5
    let network = "exhaust"

    override func setUpWithError() throws {
        try XCTSkipUnless(geteuid() == 0, "mounts a tmpfs in a private mount namespace: needs root")
    }

    /// `script` under `sh` in a private mount namespace with a tmpfs mounted on $D.
    func inPrivateTmpfs(_ script: String, world: TestWorld) throws -> CommandResult {
        let unshare = try XCTUnwrap(findExecutable("unshare"), "unshare (util-linux) is needed")
        let dir = world.tempDirectory("mnt")
        let setup = "set -e; mount -t tmpfs -o \(Self.tinyFilesystem) netlab-fault \"$D\"; set +e\n"
        return runCommand([unshare, "--mount", "--propagation", "private", "/bin/sh", "-c", setup + script],
                          environment: ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "D": dir,
                                        "PLUGIN": BuiltProducts.path("host-local"), "CONF": hostLocalConfig(dataDir: dir)])
    }

    func hostLocalConfig(dataDir: String) -> String {
        #"{"cniVersion":"1.0.0","name":"\#(network)","type":"host-local","#
            + #""ipam":{"type":"host-local","dataDir":"\#(dataDir)","ranges":[[{"subnet":"10.125.0.0/24"}]]}}"#
    }

    /// Runs host-local ADD for container $1 with $CONF, printing its stdout and then "EXIT=<status>".
    static let addFunction = """
        add() { echo "$CONF" | CNI_COMMAND=ADD CNI_CONTAINERID=$1 CNI_NETNS=/proc/self/ns/net CNI_IFNAME=eth0 \
          CNI_PATH=/nonexistent "$PLUGIN"; s=$?; echo; echo "EXIT=$s"; }
        listing() { echo "--- files"; cd "$D/exhaust" && for f in *; do echo "$f $(wc -c < "$f") $(cat "$f" | tr '\\n' ' ')"; done; }

        """

    func testFullDataDirIsAClearIOErrorAndLeavesNothingHalfWritten() throws {
        let world = TestWorld()
        defer { world.cleanup() }
        let out = try inPrivateTmpfs(Self.addFunction + """
            add first
            dd if=/dev/zero of="$D/fill" bs=1k 2>/dev/null
            echo "--- full"; add second
            listing
            """, world: world)
        let parts = try sections(out)
        XCTAssertTrue(parts[0].hasSuffix("EXIT=0"), "the first ADD (room left): \(out)")
        try assertIOError(parts[1], naming: "/" + network + "/", out)
        // Only the first container's files: no file of the second, no temporary file, nothing empty.
        let files = parts[2].split(separator: "\n").map(String.init)
        XCTAssertFalse(files.contains { $0.contains("second") }, "the failed ADD left a reservation: \(files)")
        XCTAssertFalse(files.contains { $0.contains(".tmp.") }, "temporary file left: \(files)")
        XCTAssertEqual(files.filter { $0.contains("first") }.count, 1, "the first reservation: \(files)")
        print("ExhaustionFaultTests full tmpfs: \(parts[1])")
    }

    func testReadOnlyDataDirIsAClearIOErrorAndKeepsTheState() throws {
        let world = TestWorld()
        defer { world.cleanup() }
        let out = try inPrivateTmpfs(Self.addFunction + """
            add first
            mount -o remount,ro "$D"
            echo "--- read-only"; add second
            listing
            """, world: world)
        let parts = try sections(out)
        XCTAssertTrue(parts[0].hasSuffix("EXIT=0"), "the first ADD: \(out)")
        try assertIOError(parts[1], naming: "/" + network, out)
        let files = parts[2].split(separator: "\n").map(String.init)
        XCTAssertFalse(files.contains { $0.contains("second") }, "the failed ADD left a reservation: \(files)")
        XCTAssertEqual(files.filter { $0.contains("first") }.count, 1, "the first reservation: \(files)")
        print("ExhaustionFaultTests read-only: \(parts[1])")
    }

    /// A full conflist (bridge + host-local + portmap) ADD and DEL with 64 descriptors each.
    func testSixtyFourDescriptorsAreEnoughForAConflist() throws {
        let world = TestWorld()
        defer { world.cleanup() }
        let prlimit = try XCTUnwrap(findExecutable("prlimit"))
        let ip = try XCTUnwrap(findExecutable("ip"))
        let host = try world.makeNetns("host")
        let netns = try world.makeBareNetns(["c"])[0]
        let list = #"{"cniVersion":"1.0.0","name":"fd64","plugins":[{"type":"bridge","bridge":"\#(world.shortName("nlfd"))","#
            + #""isGateway":true,"ipMasq":true,"ipam":{"type":"host-local","dataDir":"\#(world.tempDirectory("ipam"))","#
            + #""ranges":[[{"subnet":"10.126.0.0/24"}]]}},{"type":"portmap","capabilities":{"portMappings":true}}]}"#
        let conflist = world.tempDirectory("conf") + "/fd64.conflist"
        try Files.writeAtomically(conflist, Array(list.utf8))
        let cache = world.tempDirectory("cache")
        for verb in ["add", "del"] {
            let r = runCommand([prlimit, "--nofile=64", ip, "netns", "exec", host, BuiltProducts.path("cni-run"),
                                verb, conflist, "fd64", world.path(netns), cache],
                               environment: ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "CNI_PATH": BuiltProducts.directory,
                                             "CAP_ARGS": #"{"portMappings":[{"hostPort":18081,"containerPort":80,"protocol":"tcp"}]}"#])
            XCTAssertEqual(r.status, 0, "\(verb) with 64 descriptors: \(r.stdout) \(r.stderr)")
        }
    }

    /// With fewer descriptors than host-local needs, a CNI error and no crash.
    func testTooFewDescriptorsIsAClearError() throws {
        let world = TestWorld()
        defer { world.cleanup() }
        let prlimit = try XCTUnwrap(findExecutable("prlimit"))
        let dataDir = world.tempDirectory("ipam")
        // stdin, stdout, stderr and one more: the store's lock or directory needs another.
        let r = runCommand([prlimit, "--nofile=4", BuiltProducts.path("host-local")],
                           environment: ["CNI_COMMAND": "ADD", "CNI_CONTAINERID": "fd4", "CNI_NETNS": "/proc/self/ns/net",
                                         "CNI_IFNAME": "eth0", "CNI_PATH": "/nonexistent"],
                           stdin: hostLocalConfig(dataDir: dataDir))
        XCTAssertNotEqual(r.status, 0, "host-local ADD with 4 descriptors: \(r)")
        XCTAssertLessThan(r.status, 128, "killed by a signal: \(r)")
        let error = try XCTUnwrap(r.json as? [String: Any], "no CNI error JSON: \(r)")
        XCTAssertNotNil(error["code"] as? Int, "\(error)")
        let message = (error["msg"] as? String ?? "") + " " + (error["details"] as? String ?? "")
        XCTAssertTrue(message.contains("descriptor") || message.contains("EMFILE"), "the error says what ran out: \(error)")
        XCTAssertEqual(try hostLocalReservations(dataDir: dataDir, network: network), [], "reservation left")
        print("ExhaustionFaultTests 4 descriptors: \(r.stdout)")
    }

    // MARK: helpers

    /// The script's output split at its "--- " lines.
    func sections(_ out: CommandResult) throws -> [String] {
        let parts = out.stdout.components(separatedBy: "\n--- ").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
        XCTAssertEqual(parts.count, 3, "unexpected script output: \(out)")
        return parts.count == 3 ? parts : try XCTUnwrap(nil as [String]?, "script output")
    }

    func assertIOError(_ section: String, naming path: String, _ out: CommandResult,
                       file: StaticString = #filePath, line: UInt = #line) throws {
        let lines = section.split(separator: "\n")
        let json = lines.dropFirst().dropLast().joined(separator: "\n")
        XCTAssertFalse(section.hasSuffix("EXIT=0"), "ADD succeeded: \(out)", file: file, line: line)
        let error = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any],
                                  "no CNI error JSON: \(out)", file: file, line: line)
        XCTAssertEqual(error["code"] as? Int, Self.ioErrorCode, "\(error)", file: file, line: line)
        let message = (error["msg"] as? String ?? "") + " " + (error["details"] as? String ?? "")
        XCTAssertTrue(message.contains(path), "the message names the path: \(error)", file: file, line: line)
        XCTAssertFalse(out.stderr.contains("Fatal error"), out.stderr, file: file, line: line)
    }
}
