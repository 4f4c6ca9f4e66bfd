import CNI
import FirewallPlugin

PluginMain.run(Firewall(), about: Firewall.about)
