import CNI
import PortmapPlugin

PluginMain.run(Portmap(), about: Portmap.about)
