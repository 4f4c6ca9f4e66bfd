import CNI
import MacvlanPlugin

PluginMain.run(Macvlan(), about: Macvlan.about)
