// Network configs, conflists, runtimeConfig capabilities, errors and name validation.

import XCTest
@testable import CNI
import NetTypes

private func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

private func code(_ body: () throws -> Void, file: StaticString = #filePath, line: UInt = #line) -> Int? {
    do { try body(); XCTFail("no error", file: file, line: line); return nil } catch let e as CNIError {
        return e.code.rawValue
    } catch { XCTFail("not a CNIError: \(error)", file: file, line: line); return nil }
}

final class ConfigTests: XCTestCase {
    /// The shape of the spec's 1.1.0 example conflist.
    let conflist = """
    {
      "cniVersion": "1.1.0",
      "cniVersions": ["0.3.1", "0.4.0", "1.0.0", "1.1.0"],
      "name": "dbnet",
      "plugins": [
        {"type": "bridge", "bridge": "cni0", "keyA": ["some more", "plugin specific", "configuration"],
         "ipam": {"type": "host-local", "subnet": "10.1.0.0/16", "gateway": "10.1.0.1",
                  "routes": [{"dst": "0.0.0.0/0"}]},
         "dns": {"nameservers": ["10.1.0.1"]}},
        {"type": "tuning", "capabilities": {"mac": true}, "sysctl": {"net.core.somaxconn": "500"}},
        {"type": "portmap", "capabilities": {"portMappings": true}}
      ]
    }
    """

    func testConflist110() throws {
        let l = try NetworkConfigList(bytes: bytes(conflist))
        XCTAssertEqual(l.name, "dbnet")
        XCTAssertEqual(l.cniVersion, "1.1.0")
        XCTAssertEqual(l.cniVersions ?? [], ["0.3.1", "0.4.0", "1.0.0", "1.1.0"])
        XCTAssertEqual(l.plugins.count, 3)
        XCTAssertEqual(l.plugins[2]["type"], "portmap")
        XCTAssertFalse(l.disableCheck)
        XCTAssertFalse(l.disableGC)
    }

    func testConflistFlagsAndNegotiation() throws {
        let l = try NetworkConfigList(bytes: bytes("""
        {"cniVersion": "0.4.0", "cniVersions": ["0.2.0", "1.0.0", "7.0.0"], "name": "n", "disableCheck": true,
         "disableGC": "true", "plugins": [{"type": "a"}]}
        """))
        XCTAssertEqual(l.cniVersion, "1.0.0")
        XCTAssertTrue(l.disableCheck)
        XCTAssertTrue(l.disableGC)
        XCTAssertEqual(code { _ = try NetworkConfigList(bytes: bytes(#"{"cniVersions":["0.2.0"],"name":"n","plugins":[{"type":"a"}]}"#)) }, 1)
        XCTAssertEqual(code { _ = try NetworkConfigList(bytes: bytes(#"{"cniVersion":"0.2.0","name":"n","plugins":[{"type":"a"}]}"#)) }, 1)
        XCTAssertEqual(code { _ = try NetworkConfigList(bytes: bytes(#"{"cniVersion":"1.0.0","name":"n","plugins":[]}"#)) }, 7)
        XCTAssertEqual(code { _ = try NetworkConfigList(bytes: bytes(#"{"cniVersion":"1.0.0","plugins":[{"type":"a"}]}"#)) }, 7)
        XCTAssertEqual(code { _ = try NetworkConfigList(bytes: bytes(#"{"cniVersion":"1.0.0","name":"a/b","plugins":[{"type":"a"}]}"#)) }, 7)
        XCTAssertEqual(code { _ = try NetworkConfigList(bytes: bytes(#"{"cniVersion":"1.0.0","name":"n","plugins":[{"x":1}]}"#)) }, 7)
        XCTAssertEqual(code { _ = try NetworkConfigList(bytes: bytes(#"{"cniVersion":"1.0.0","#)) }, 6)
    }

    func testSingleConfWrappedAsList() throws {
        let l = try NetworkConfigList(single: bytes(#"{"cniVersion":"0.3.1","name":"mynet","type":"bridge","bridge":"cni0"}"#))
        XCTAssertEqual(l.name, "mynet")
        XCTAssertEqual(l.cniVersion, "0.3.1")
        XCTAssertEqual(l.plugins, [["type": "bridge", "bridge": "cni0"]])
    }

    /// The spec's example of what a runtime sends a chained portmap plugin on ADD.
    func testPluginConfigWithPrevResultAndRuntimeConfig() throws {
        let c = try NetworkConfig(bytes: bytes("""
        {
          "type": "portmap", "name": "dbnet", "cniVersion": "1.1.0",
          "capabilities": {"portMappings": true},
          "runtimeConfig": {
            "portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"},
                             {"hostPort": 5353, "containerPort": 53, "protocol": "udp", "hostIP": "127.0.0.1"}],
            "ipRanges": [[{"subnet": "10.1.2.0/24", "rangeStart": "10.1.2.10", "gateway": "10.1.2.1"}]],
            "bandwidth": {"ingressRate": 1000000, "ingressBurst": 2000, "egressRate": 3000000, "egressBurst": 4000},
            "dns": {"servers": ["8.8.8.8"], "searches": ["example.com"], "options": ["ndots:5"]},
            "ips": ["10.10.0.1/24", "3ffe:ffff:0:01ff::1/64"],
            "mac": "c2:11:22:33:44:55",
            "aliases": {"dbnet": ["db", "postgres"]},
            "cgroupPath": "/kubelet.slice/pod1"
          },
          "prevResult": {
            "ips": [{"address": "10.1.0.5/16", "gateway": "10.1.0.1", "interface": 2}],
            "routes": [{"dst": "0.0.0.0/0"}],
            "interfaces": [{"name": "cni0", "mac": "00:11:22:33:44:55"},
                           {"name": "veth3243", "mac": "55:44:33:22:11:11"},
                           {"name": "eth0", "mac": "99:88:77:66:55:44", "sandbox": "/var/run/netns/blue"}],
            "dns": {"nameservers": ["10.1.0.1"]}
          }
        }
        """))
        XCTAssertEqual(c.name, "dbnet")
        XCTAssertEqual(c.type, "portmap")
        XCTAssertEqual(c.capabilities, ["portMappings": true])
        let rc = c.runtimeConfig
        XCTAssertEqual(rc.portMappings, [PortMapping(hostPort: 8080, containerPort: 80),
                                         PortMapping(hostPort: 5353, containerPort: 53, protocol: "udp", hostIP: "127.0.0.1")])
        XCTAssertEqual(rc.ipRanges?[0][0].subnet, CIDR("10.1.2.0/24"))
        XCTAssertEqual(rc.ipRanges?[0][0].rangeStart, IPAddress("10.1.2.10"))
        XCTAssertEqual(rc.bandwidth, Bandwidth(ingressRate: 1000000, ingressBurst: 2000, egressRate: 3000000, egressBurst: 4000))
        XCTAssertEqual(rc.dns, DNSCapability(servers: ["8.8.8.8"], searches: ["example.com"], options: ["ndots:5"]))
        XCTAssertEqual(rc.ips ?? [], ["10.10.0.1/24", "3ffe:ffff:0:01ff::1/64"])
        XCTAssertEqual(rc.mac, "c2:11:22:33:44:55")
        XCTAssertEqual(rc.aliases ?? [:], ["dbnet": ["db", "postgres"]])
        XCTAssertEqual(rc.other["cgroupPath"], "/kubelet.slice/pod1")
        let prev = try XCTUnwrap(c.prevResult)
        XCTAssertEqual(prev.cniVersion, "1.1.0", "prevResult takes the config's version")
        XCTAssertEqual(prev.ips.first?.address, CIDR("10.1.0.5/16"))
        XCTAssertEqual(prev.interfaces.count, 3)
    }

    /// The shape of the spec's 0.3.1/0.4.0 plugin config with ipam, dns and args.
    func testLegacyPluginConfig() throws {
        let c = try NetworkConfig(bytes: bytes("""
        {"cniVersion": "0.3.1", "name": "dbnet", "type": "bridge", "bridge": "cni0",
         "args": {"labels": {"appVersion": "1.0"}},
         "ipam": {"type": "host-local", "subnet": "10.1.0.0/16", "gateway": "10.1.0.1"},
         "dns": {"nameservers": ["10.1.0.1"]},
         "prevResult": {"cniVersion": "0.3.1", "ips": [{"version": "4", "address": "10.1.0.5/16"}]}}
        """))
        XCTAssertEqual(c.ipamType, "host-local")
        XCTAssertEqual(c.dns?.nameservers, ["10.1.0.1"])
        XCTAssertEqual(c.args?["labels"]?["appVersion"], "1.0")
        XCTAssertEqual(c.raw["bridge"], "cni0")
        XCTAssertEqual(c.prevResult?.ips.first?.version, "4")
        XCTAssertEqual(c.runtimeConfig, RuntimeConfig())
    }

    func testGCConfigCarriesValidAttachments() throws {
        let c = try NetworkConfig(bytes: bytes("""
        {"cniVersion": "1.1.0", "name": "dbnet", "type": "bridge",
         "cni.dev/valid-attachments": [{"containerID": "dummy", "ifname": "eth0"}]}
        """))
        XCTAssertEqual(c.validAttachments, [Attachment(containerID: "dummy", ifname: "eth0")])
    }

    struct BridgeConf: Decodable { var bridge: String; var mtu: Int?; var ipam: IPAM; struct IPAM: Decodable { var subnet: CIDR } }

    func testPluginSpecificDecodeErrors() throws {
        let ok = try NetworkConfig(bytes: bytes(#"{"cniVersion":"1.0.0","name":"n","type":"bridge","bridge":"br0","ipam":{"subnet":"10.0.0.0/8"}}"#))
        XCTAssertEqual(try ok.decode(BridgeConf.self).ipam.subnet, CIDR("10.0.0.0/8"))
        let missing = try NetworkConfig(bytes: bytes(#"{"cniVersion":"1.0.0","name":"n","type":"bridge","ipam":{"subnet":"10.0.0.0/8"}}"#))
        XCTAssertThrowsError(try missing.decode(BridgeConf.self)) {
            let e = $0 as? CNIError
            XCTAssertEqual(e?.code, 7)
            XCTAssertTrue(e?.msg.contains("\"bridge\"") ?? false, e?.msg ?? "")
        }
        let badValue = try NetworkConfig(bytes: bytes(#"{"cniVersion":"1.0.0","name":"n","type":"bridge","bridge":"b","ipam":{"subnet":"10.0.0.0"}}"#))
        XCTAssertThrowsError(try badValue.decode(BridgeConf.self)) {
            let e = $0 as? CNIError
            XCTAssertEqual(e?.code, 7)
            XCTAssertTrue(e?.msg.contains("ipam.subnet") ?? false, e?.msg ?? "")
        }
        let badType = try NetworkConfig(bytes: bytes(#"{"cniVersion":"1.0.0","name":"n","type":"bridge","bridge":"b","mtu":"big","ipam":{"subnet":"10.0.0.0/8"}}"#))
        XCTAssertThrowsError(try badType.decode(BridgeConf.self)) {
            let e = $0 as? CNIError
            XCTAssertEqual(e?.code, 6)
            XCTAssertTrue(e?.msg.contains("mtu") ?? false, e?.msg ?? "")
        }
    }

    /// The one way plugins read their options: `Options` decoded (code 6 for a wrong type),
    /// then validated into typed values with defaults (code 7 naming the field).
    func testPluginConfiguration() throws {
        struct Knob: PluginConfiguration {
            struct Options: Decodable { var level: Int? }
            var level: Int
            init(_ o: Options, request: CNIRequest) throws(CNIError) {
                level = o.level ?? 3
                guard (1...9).contains(level) else { throw CNIError.invalidConfig("level: \(level) is not in 1-9") }
            }
        }
        func request(_ json: String) throws -> CNIRequest {
            let b = bytes(json)
            return CNIRequest(command: .add, configBytes: b, config: try NetworkConfig(bytes: b))
        }
        XCTAssertEqual(try request(#"{"cniVersion":"1.0.0","name":"n","type":"knob"}"#).pluginConfig(Knob.self).level, 3)
        XCTAssertEqual(try request(#"{"cniVersion":"1.0.0","name":"n","type":"knob","level":5}"#).pluginConfig(Knob.self).level, 5)
        XCTAssertThrowsError(try request(#"{"cniVersion":"1.0.0","name":"n","type":"knob","level":12}"#).pluginConfig(Knob.self)) {
            XCTAssertEqual($0 as? CNIError, CNIError.invalidConfig("level: 12 is not in 1-9"))
        }
        XCTAssertThrowsError(try request(#"{"cniVersion":"1.0.0","name":"n","type":"knob","level":"high"}"#).pluginConfig(Knob.self)) {
            XCTAssertEqual(($0 as? CNIError)?.code, 6)
            XCTAssertTrue(($0 as? CNIError)?.msg.contains("level") ?? false, "\($0)")
        }
    }

    func testConfigErrors() {
        XCTAssertEqual(code { _ = try NetworkConfig(bytes: bytes("not json")) }, 6)
        XCTAssertEqual(code { _ = try NetworkConfig(bytes: bytes("[1,2]")) }, 6)
        XCTAssertEqual(code { _ = try NetworkConfig(bytes: bytes(#"{"name":"n","type":"t"}"#)) }, 1)
        XCTAssertEqual(code { _ = try NetworkConfig(bytes: bytes(#"{"cniVersion":"0.2.0","name":"n"}"#)) }, 1)
        XCTAssertEqual(code { _ = try NetworkConfig(bytes: bytes(#"{"cniVersion":"1.0.0","name":"n"}"#), supportedVersions: ["0.4.0"]) }, 1)
        XCTAssertEqual(code { _ = try NetworkConfig(bytes: bytes(#"{"cniVersion":"1.0.0","name":"n","runtimeConfig":{"portMappings":[{"hostPort":1}]}}"#)) }, 7)
        XCTAssertEqual(code { _ = try NetworkConfig(bytes: bytes(#"{"cniVersion":"1.0.0","name":"n","capabilities":{"mac":"yes"}}"#)) }, 6)
        XCTAssertEqual(code { _ = try NetworkConfig(bytes: bytes(#"{"cniVersion":"1.0.0","name":"n","prevResult":{"ips":[{}]}}"#)) }, 7)
    }

    func testNames() {
        for ok in ["a", "dbnet", "net_1.2-x", "0abc", String(repeating: "f", count: 64)] {
            XCTAssertNoThrow(try validateNetworkName(ok))
            XCTAssertNoThrow(try validateContainerID(ok))
        }
        for bad in ["", "-a", "_a", ".a", "a b", "a/b", "../x", "..", "a:b", "ä"] {
            XCTAssertEqual(code { try validateNetworkName(bad) }, 7, bad)
        }
        // Container IDs: escaping a directory is 7; other bad characters 4 (libcni); empty 4.
        XCTAssertEqual(code { try validateContainerID("") }, 4)
        for escape in ["../etc", "a/b", "/abs", ".hidden", ".."] { XCTAssertEqual(code { try validateContainerID(escape) }, 7, escape) }
        for bad in ["a b", "-x", "a;b", "a=b"] { XCTAssertEqual(code { try validateContainerID(bad) }, 4, bad) }
        for ok in ["eth0", "net1", "a.b", String(repeating: "x", count: 15)] { XCTAssertNoThrow(try validateInterfaceName(ok)) }
        for bad in ["", ".", "..", "a/b", "a:b", "a b", String(repeating: "x", count: 16)] {
            XCTAssertEqual(code { try validateInterfaceName(bad) }, 4, bad)
        }
    }

    func testErrorJSON() throws {
        let e = CNIError(code: .tryAgainLater, msg: "busy", details: "lock held")
        XCTAssertEqual(e.json(version: "1.0.0").jsonString,
                       #"{"cniVersion":"1.0.0","code":11,"details":"lock held","msg":"busy"}"#)
        XCTAssertEqual(CNIError.parse(e.json(version: "1.0.0").serialized()), e)
        XCTAssertNil(CNIError.parse(bytes(#"{"cniVersion":"1.0.0"}"#)))
        XCTAssertTrue(CNIError.Code.notAvailable ~= CNIError(code: 50, msg: "x"))
    }

    func testJSONValueSerialisation() throws {
        let v = try JSONValue.parse(bytes(#"{"b":[1,2.5,true,null,"x\"\n\u0001"],"a":{}}"#))
        XCTAssertEqual(v.jsonString, #"{"a":{},"b":[1,2.5,true,null,"x\"\n\u0001"]}"#)
        XCTAssertEqual(try JSONValue.parse(v.serialized(pretty: true)), v)
    }

    func testBase64() {
        for s in ["", "f", "fo", "foo", "foob", "fooba", "foobar"] {
            XCTAssertEqual(Base64.decode(Base64.encode(bytes(s))), bytes(s))
        }
        XCTAssertEqual(Base64.encode(bytes("foobar")), "Zm9vYmFy")
        XCTAssertEqual(Base64.encode(bytes("fo")), "Zm8=")
    }

    func testCNIArgs() throws {
        let a = try CNIRequest.parseArgs("IgnoreUnknown=1;K8S_POD_NAME=web-0;IP=10.0.0.5")
        XCTAssertEqual(a.map(\.0), ["IgnoreUnknown", "K8S_POD_NAME", "IP"])
        XCTAssertEqual(a.map(\.1), ["1", "web-0", "10.0.0.5"])
        XCTAssertEqual(code { _ = try CNIRequest.parseArgs("novalue") }, 4)
    }
}
