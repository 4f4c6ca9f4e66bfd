import CNI
import VxlanPlugin

PluginMain.run(Vxlan(), about: Vxlan.about)
