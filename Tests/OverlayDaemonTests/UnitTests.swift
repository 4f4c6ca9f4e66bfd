// The daemon's pieces that need no namespace: flags and their environment variables,
// durations, the renewal schedule, the VTEP MAC, the underlay choice, the lease table, and
// the systemd notification.

import Foundation
import Glibc
import NetTypes
import Overlay
@testable import OverlayDaemon
import OverlayStores
import SystemKit
import TestSupport
import XCTest

final class FlagTests: XCTestCase {
    func testEnvironmentFillsFlagsTheCommandLineLeftOut() throws {
        let env = ["FLANNELD_ETCD_ENDPOINTS": "http://a:2379,http://b:2379", "FLANNELD_IFACE": "eth1,192.0.2.1",
                   "FLANNELD_IFACE_REGEX": "^10\\.[0-9]{1,3}\\.", "FLANNELD_IP_MASQ": "true",
                   "FLANNELD_SUBNET_FILE": "/env/subnet.env", "UNRELATED": "x"]
        let merged = try FlagEnvironment.merge(["--subnet-file", "/cli/subnet.env"], environment: env)
        XCTAssertEqual(merged, ["--subnet-file", "/cli/subnet.env", "--etcd-endpoints", "http://a:2379,http://b:2379",
                                "--iface", "eth1", "--iface", "192.0.2.1", "--iface-regex", "^10\\.[0-9]{1,3}\\.",
                                "--ip-masq"])
        let command = try OverlaydCommand.parseAsRoot(merged) as! OverlaydCommand
        let settings = try command.settings()
        XCTAssertEqual(settings.subnetFile, "/cli/subnet.env", "the command line wins")
        XCTAssertEqual(settings.underlay.interfaces, ["eth1", "192.0.2.1"])
        XCTAssertEqual(settings.underlay.interfacePatterns, ["^10\\.[0-9]{1,3}\\."], "a regular expression keeps its commas")
        XCTAssertTrue(settings.ipMasq)
        XCTAssertEqual(settings.store.kind, .etcd)
        XCTAssertEqual(settings.store.etcd?.endpoints, ["http://a:2379", "http://b:2379"])
    }

    func testGoFlagSpellingsAreAccepted() throws {
        let merged = try FlagEnvironment.merge(["-etcd-prefix=/x/network", "-ip-masq=false", "--iface=eth2",
                                                "-subnet-lease-renew-margin", "5"], environment: [:])
        XCTAssertEqual(merged, ["--etcd-prefix=/x/network", "--iface=eth2", "--subnet-lease-renew-margin", "5"])
        let settings = try (OverlaydCommand.parseAsRoot(merged) as! OverlaydCommand).settings()
        XCTAssertEqual(settings.store.layout.configKey, "/x/network/config")
        XCTAssertFalse(settings.ipMasq)
        XCTAssertEqual(settings.renewMargin, .seconds(300), "flanneld's margin is in minutes")
        XCTAssertEqual(settings.store.kind, .embedded, "no etcd endpoint: the embedded store")
        XCTAssertEqual(settings.leaseTTL, .seconds(86400))
        XCTAssertNil(settings.healthz, "port 0: no /healthz, as flanneld")
    }

    func testSubcommandsTakeOnlyTheStoreFlagsFromTheEnvironment() throws {
        let env = ["FLANNELD_IFACE": "eth0", "FLANNELD_STORE_PATH": "/tmp/x.db"]
        XCTAssertEqual(try FlagEnvironment.merge(["leases"], environment: env), ["leases", "--store-path", "/tmp/x.db"])
        XCTAssertEqual(try FlagEnvironment.merge(["config", "put", "-"], environment: env),
                       ["config", "put", "-", "--store-path", "/tmp/x.db"])
        XCTAssertEqual(try FlagEnvironment.merge(["config", "put", "--", "-f"], environment: env),
                       ["config", "put", "--store-path", "/tmp/x.db", "--", "-f"])
    }

    func testBadValuesAreRefusedNamingTheFlag() throws {
        XCTAssertThrowsError(try FlagEnvironment.merge([], environment: ["FLANNELD_IP_MASQ": "yes"])) {
            XCTAssertTrue("\($0)".contains("FLANNELD_IP_MASQ"), "\($0)")
        }
        for (args, flag) in [(["--subnet-lease-ttl", "10"], "--subnet-lease-ttl"), (["--public-ip", "fd00::1"], "--public-ip"),
                             (["--subnet-lease-renew-margin", "soon"], "--subnet-lease-renew-margin"),
                             (["--healthz-port", "70000"], "--healthz-port"),
                             (["--store", "embedded", "--etcd-endpoints", "http://a:2379"], "--etcd-endpoints")] {
            let command = try OverlaydCommand.parseAsRoot(args) as! OverlaydCommand
            XCTAssertThrowsError(try command.settings(), "\(args)") { XCTAssertTrue("\($0)".contains(flag), "\($0)") }
        }
    }

    func testDurationsAndTheRenewalSchedule() {
        XCTAssertEqual(GoDuration.parse("10s"), .seconds(10))
        XCTAssertEqual(GoDuration.parse("1h30m"), .seconds(5400))
        XCTAssertEqual(GoDuration.parse("1.5s"), .milliseconds(1500))
        XCTAssertEqual(GoDuration.parse("300ms"), .milliseconds(300))
        XCTAssertNil(GoDuration.parse("10"))
        XCTAssertNil(GoDuration.parse("5 m"))
        XCTAssertEqual(GoDuration.format(.seconds(86400)), "24h")
        XCTAssertEqual(GoDuration.format(.milliseconds(2500)), "2.5s")
        // flannel's defaults: renew an hour before the 24 h lease runs out.
        XCTAssertEqual(DaemonSettings.renewInterval(ttl: .seconds(86400), margin: .seconds(3600)), .seconds(82800))
        // A margin not shorter than the TTL: halfway.
        XCTAssertEqual(DaemonSettings.renewInterval(ttl: .seconds(3), margin: .seconds(3600)), .milliseconds(1500))
        XCTAssertEqual(DaemonSettings.renewInterval(ttl: .seconds(10), margin: .seconds(10)), .seconds(5))
    }
}

final class IdentityAndUnderlayTests: XCTestCase {
    func testTheVTEPMACIsStableUnicastAndPerHost() throws {
        let directory = NSTemporaryDirectory() + "overlayd-seed-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: directory) }  // a test directory: leftovers are harmless
        let seed = try VTEPIdentity.seed(in: directory)
        XCTAssertEqual(try VTEPIdentity.seed(in: directory), seed, "read back, not made again")
        let ip = IPAddress("198.18.0.11")!
        let mac = VTEPIdentity.mac(seed: seed, publicIP: ip, vni: 1, family: .v4)
        XCTAssertEqual(VTEPIdentity.mac(seed: seed, publicIP: ip, vni: 1, family: .v4), mac)
        XCTAssertFalse(mac.isMulticast)
        XCTAssertEqual(mac.bytes[0] & 0x02, 0x02, "locally administered")
        XCTAssertNotEqual(VTEPIdentity.mac(seed: seed, publicIP: IPAddress("198.18.0.12")!, vni: 1, family: .v4), mac)
        XCTAssertNotEqual(VTEPIdentity.mac(seed: seed, publicIP: ip, vni: 2, family: .v4), mac)
        XCTAssertNotEqual(VTEPIdentity.mac(seed: seed, publicIP: ip, vni: 1, family: .v6), mac)
        try "not hex\n".write(toFile: directory + "/" + VTEPIdentity.seedFileName, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try VTEPIdentity.seed(in: directory), "a damaged seed is reported, not replaced")
    }

    private let interfaces = [
        InterfaceCandidate(name: "lo", mtu: 65536, addresses: []),
        InterfaceCandidate(name: "eth0", mtu: 1500, addresses: [IPAddress("192.0.2.10")!, IPAddress("2001:db8::10")!]),
        InterfaceCandidate(name: "ens5", mtu: 9001, addresses: [IPAddress("198.51.100.7")!]),
    ]

    func testTheUnderlayIsChosenAsFlanneldChoosesIt() throws {
        func pick(_ s: UnderlaySettings, defaultRoute: String? = "eth0") throws -> Underlay {
            let (chosen, named) = try UnderlayChoice.choose(s, among: interfaces, defaultRoute: defaultRoute)
            return UnderlayChoice.underlay(s, chosen, named: named)
        }
        XCTAssertEqual(try pick(UnderlaySettings()).name, "eth0", "the default route's interface")
        XCTAssertEqual(try pick(UnderlaySettings(interfaces: ["missing", "ens5"])).name, "ens5", "the first match wins")
        let byAddress = try pick(UnderlaySettings(interfaces: ["198.51.100.7"]))
        XCTAssertEqual(byAddress.name, "ens5")
        XCTAssertEqual(byAddress.localIPv4, IPAddress("198.51.100.7"))
        XCTAssertEqual(try pick(UnderlaySettings(interfacePatterns: ["^198\\.51\\."])).name, "ens5", "addresses first")
        XCTAssertEqual(try pick(UnderlaySettings(interfacePatterns: ["^ens"])).name, "ens5", "then names")
        let behindNAT = try pick(UnderlaySettings(interfaces: ["eth0"], publicIP: IPAddress("203.0.113.1")))
        XCTAssertEqual(behindNAT.localIPv4, IPAddress("192.0.2.10"), "packets leave from the interface's address")
        XCTAssertEqual(behindNAT.publicIP, IPAddress("203.0.113.1"), "the lease announces --public-ip")
        XCTAssertEqual(behindNAT.localIPv6, IPAddress("2001:db8::10"))
        XCTAssertThrowsError(try pick(UnderlaySettings(interfaces: ["wlan0"]))) { XCTAssertTrue("\($0)".contains("--iface wlan0")) }
        XCTAssertThrowsError(try pick(UnderlaySettings(interfacePatterns: ["(["]))) { XCTAssertTrue("\($0)".contains("--iface-regex")) }
        XCTAssertThrowsError(try pick(UnderlaySettings(), defaultRoute: nil)) { XCTAssertTrue("\($0)".contains("default route")) }
    }
}

final class StoreCommandTests: XCTestCase {
    func testConfigPutRefusesByFieldAndTheLeaseTableListsEveryLease() throws {
        let directory = NSTemporaryDirectory() + "overlayd-store-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: directory) }  // a test directory: leftovers are harmless
        let table: String = try blocking {
            let store = try await EmbeddedLeaseStore.open(path: directory + "/leases.db")
            let layout = StoreLayout()
            do {
                _ = try await StoreCommands.putConfig(Array(#"{"Network": "10.1.0.0/16", "SubnetLen": 8}"#.utf8),
                                                      store: store, layout: layout)
                XCTFail("a SubnetLen shorter than the network is refused")
            } catch {
                XCTAssertTrue("\(error)".contains("SubnetLen"), "\(error)")
            }
            _ = try await StoreCommands.putConfig(Array(#"{"Network": "10.1.0.0/16"}"#.utf8), store: store, layout: layout)
            let attributes = LeaseAttributes(publicIP: IPAddress("192.0.2.1"),
                                             backendData: VXLANLeaseData(vni: 1, vtepMAC: MACAddress("0e:00:00:00:00:01")!))
            _ = try await store.create(layout.leaseKey(SubnetKey(ipv4: CIDR("10.1.7.0/24"))), text: attributes.json, ttl: .seconds(3600))
            let rows = try await StoreCommands.leaseRows(store: store, layout: layout)
            await store.close()
            return StoreCommands.table(rows)
        }
        let lines = table.split(separator: "\n")
        XCTAssertEqual(lines.count, 2, table)
        XCTAssertTrue(lines[0].hasPrefix("SUBNET"), table)
        XCTAssertTrue(lines[1].hasPrefix("10.1.7.0/24  192.0.2.1  0e:00:00:00:00:01  "), table)
        XCTAssertTrue(lines[1].contains("UTC (in 59m") || lines[1].contains("UTC (in 1h"), table)
    }

    func testReadyIsSentToTheNotifySocket() throws {
        let notify = try NotifySocket(path: NSTemporaryDirectory() + "overlayd-notify-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        XCTAssertEqual(try ServiceNotifier.ready(environment: ["NOTIFY_SOCKET": notify.path]), notify.path)
        XCTAssertEqual(notify.received(), ["READY=1"])
        XCTAssertNil(try ServiceNotifier.ready(environment: [:]), "no socket, no message")
    }
}
