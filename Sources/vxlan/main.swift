import CNI
import VxlanPlugin

PluginMain.run(Vxlan(), about: "netlab vxlan plugin: one L2 segment across hosts (a bridge with a VXLAN device per network), veths like bridge, IPAM")
