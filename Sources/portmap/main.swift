import CNI
import PortmapPlugin

PluginMain.run(Portmap(), about: "netlab portmap plugin: publishes container ports through nftables maps")
