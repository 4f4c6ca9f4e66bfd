import CNI
import FlannelPlugin

PluginMain.run(Flannel(), about: Flannel.about)
