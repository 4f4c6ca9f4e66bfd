import CNI
import LoopbackPlugin

PluginMain.run(Loopback(), about: Loopback.about)
