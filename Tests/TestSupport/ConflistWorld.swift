import Foundation

/// A host netns with one bridge + host-local network conflist on disk, its IPAM data and
/// result cache in the world's temporary directories: what the tests that drive many
/// containers through `cni-run` share.
public struct ConflistWorld {
    public let host: String
    public let conflist: String
    public let cacheDir: String
    public let dataDir: String
    public let network: String

    /// `bridgeOptions` are merged into the bridge plugin's entry; `chained` plugins follow it.
    public init(_ world: TestWorld, network: String, cniVersion: String, bridgePrefix: String, subnet: String,
                bridgeOptions: [String: Any] = [:], chained: [[String: Any]]) throws {
        self.network = network
        host = try world.makeNetns("host")
        dataDir = world.tempDirectory("ipam")
        cacheDir = world.tempDirectory("cache")
        var bridge: [String: Any] = [
            "type": "bridge", "bridge": world.shortName(bridgePrefix), "isGateway": true, "ipMasq": true,
            "ipam": ["type": "host-local", "dataDir": dataDir, "ranges": [[["subnet": subnet]]]],
        ]
        bridge.merge(bridgeOptions) { _, new in new }
        let list: [String: Any] = ["cniVersion": cniVersion, "name": network, "plugins": [bridge] + chained]
        conflist = world.tempDirectory("conf") + "/\(network).conflist"
        try JSONSerialization.data(withJSONObject: list).write(to: URL(fileURLWithPath: conflist))
    }
}
