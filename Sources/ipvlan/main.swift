import CNI
import IpvlanPlugin

PluginMain.run(Ipvlan(), about: Ipvlan.about)
