import CNI
import MacvlanPlugin

PluginMain.run(Macvlan(), about: "netlab macvlan plugin: a macvlan of a master interface per container, IPAM")
