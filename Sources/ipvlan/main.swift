import CNI
import IpvlanPlugin

PluginMain.run(Ipvlan(), about: "netlab ipvlan plugin: an ipvlan of a master interface per container, IPAM or chained")
