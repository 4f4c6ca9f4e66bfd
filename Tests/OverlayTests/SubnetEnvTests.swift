// subnet.env as flanneld writes it and the flannel plugin reads it.

import Glibc
import NetTypes
import Overlay
import SystemKit
import XCTest

final class SubnetEnvTests: XCTestCase {
    private var dir = ""

    override func setUpWithError() throws {
        var template = Array("/tmp/overlay-subnetenv-XXXXXX".utf8CString)
        let p = try XCTUnwrap(template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) })
        dir = String(cString: p)
    }

    override func tearDownWithError() throws { try Files.removeTree(dir) }

    private func dualConfig() throws -> NetworkConfig {
        try NetworkConfig(json: #"{"Network": "10.5.0.0/16", "EnableIPv6": true, "IPv6Network": "fc00::/48"}"#)
    }

    func testGoldenIPv4() throws {
        let config = try NetworkConfig(json: #"{"Network": "10.5.0.0/16"}"#)
        let env = SubnetEnv(config: config, subnets: SubnetKey(ipv4: CIDR("10.5.17.0/24")), mtu: 1450, ipMasq: true)
        XCTAssertEqual(env.text, "FLANNEL_NETWORK=10.5.0.0/16\nFLANNEL_SUBNET=10.5.17.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n")
        XCTAssertEqual(env.subnet?.network, CIDR("10.5.17.0/24"))
    }

    func testGoldenDualStack() throws {
        let env = SubnetEnv(config: try dualConfig(),
                            subnets: SubnetKey(ipv4: CIDR("10.5.17.0/24"), ipv6: CIDR("fc00:0:0:11::/64")),
                            mtu: 1430, ipMasq: false)
        XCTAssertEqual(env.text, """
            FLANNEL_NETWORK=10.5.0.0/16
            FLANNEL_SUBNET=10.5.17.1/24
            FLANNEL_IPV6_NETWORK=fc00::/48
            FLANNEL_IPV6_SUBNET=fc00:0:0:11::1/64
            FLANNEL_MTU=1430
            FLANNEL_IPMASQ=false

            """)
    }

    func testWriteIsAtomicAndReadsBack() throws {
        let path = dir + "/run/flannel/subnet.env"
        let env = SubnetEnv(config: try dualConfig(),
                            subnets: SubnetKey(ipv4: CIDR("10.5.3.0/24"), ipv6: CIDR("fc00:0:0:3::/64")), mtu: 1450, ipMasq: true)
        try env.write(to: path)
        XCTAssertEqual(try Files.readText(path), env.text)
        let st = try XCTUnwrap(try Files.status(path))
        XCTAssertEqual(st.st_mode & 0o777, 0o644)
        XCTAssertEqual(try SubnetEnv.read(path), env)
        XCTAssertEqual(try SubnetEnv.read(path)?.missingKeys, [])

        // A second write replaces the file whole; no temporary file stays behind.
        var smaller = env
        smaller.ipv6Network = nil
        smaller.ipv6Subnet = nil
        try smaller.write(to: path)
        XCTAssertEqual(try SubnetEnv.read(path), smaller)
        XCTAssertEqual(try Files.list(dir + "/run/flannel"), ["subnet.env"])
        XCTAssertNil(try SubnetEnv.read(dir + "/absent.env"))
    }

    func testReaderAcceptsWhatDotenvAllowsAndIgnoresUnknownKeys() throws {
        let env = try SubnetEnv(text: """
            # written by hand
            export FLANNEL_NETWORK=10.5.0.0/16
              FLANNEL_SUBNET = "10.5.9.1/24"\r
            FLANNEL_MTU='1400'
            FLANNEL_SOMETHING_NEW=whatever
            FLANNEL_IPMASQ=false
            """)
        XCTAssertEqual(env, SubnetEnv(network: CIDR("10.5.0.0/16"), subnet: CIDR("10.5.9.1/24"), mtu: 1400, ipMasq: false))
    }

    func testMalformedFilesNameTheLineAndKey() {
        let cases: [(String, Int, String?, String)] = [
            ("FLANNEL_NETWORK=10.5.0.0/16\nFLANNEL_SUBNET=10.5.9.1\n", 2, "FLANNEL_SUBNET", "IPv4 address/prefix"),
            ("FLANNEL_IPV6_SUBNET=10.5.9.1/24\n", 1, "FLANNEL_IPV6_SUBNET", "IPv6"),
            ("FLANNEL_MTU=1450\nFLANNEL_MTU=1400\n", 2, "FLANNEL_MTU", "first on line 1"),
            ("\n\nFLANNEL_MTU=-3\n", 3, "FLANNEL_MTU", "MTU"),
            ("FLANNEL_IPMASQ=yes\n", 1, "FLANNEL_IPMASQ", "true or false"),
            ("FLANNEL_NETWORK 10.5.0.0/16\n", 1, nil, "KEY=VALUE"),
            ("=10.5.0.0/16\n", 1, nil, "KEY=VALUE"),
        ]
        for (text, line, key, words) in cases {
            XCTAssertThrowsError(try SubnetEnv(text: text, document: "subnet.env /run/flannel/subnet.env")) { error in
                guard let e = error as? FormatError else { return XCTFail("\(error)") }
                XCTAssertEqual(e.line, line, text)
                XCTAssertEqual(e.field, key, text)
                XCTAssertTrue(e.description.contains(words), "\(e)")
                XCTAssertTrue(e.description.hasPrefix("subnet.env /run/flannel/subnet.env line \(line)"), "\(e)")
            }
        }
    }

    func testMissingKeysAsThePluginRequiresThem() throws {
        XCTAssertEqual(try SubnetEnv(text: "FLANNEL_NETWORK=10.5.0.0/16\n").missingKeys,
                       ["FLANNEL_SUBNET", "FLANNEL_IPV6_SUBNET", "FLANNEL_MTU", "FLANNEL_IPMASQ"])
        XCTAssertEqual(try SubnetEnv(text: "FLANNEL_IPV6_NETWORK=fc00::/48\nFLANNEL_IPV6_SUBNET=fc00:0:0:1::1/64\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n").missingKeys, [])
    }

    func testAFileThatCannotBeReadIsASystemError() throws {
        XCTAssertThrowsError(try SubnetEnv.read(dir)) { XCTAssertTrue($0 is SystemError, "\($0)") }
    }
}
