import CNI
import FirewallPlugin

PluginMain.run(Firewall(), about: "netlab firewall plugin: forwarded traffic of the container accepted, bridges isolated (nftables)")
