import BridgePlugin
import CNI

PluginMain.run(Bridge(), about: "netlab bridge plugin: veth pairs on a Linux bridge, IPAM, gateway and ipMasq (nftables)")
