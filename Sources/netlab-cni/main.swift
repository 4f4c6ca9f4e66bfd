// netlab-cni: every plugin of the suite in one executable, installed once with a hard link per
// plugin name (scripts/install.sh asks it for the names with `--list`). Each name behaves
// exactly as that plugin's own executable. A new plugin is one line here (and its module in
// this target's dependencies in Package.swift).
import BridgePlugin
import CNI
import FirewallPlugin
import FlannelPlugin
import HostLocalPlugin
import IpvlanPlugin
import LoopbackPlugin
import MacvlanPlugin
import PortmapPlugin
import TuningPlugin
import VxlanPlugin

MultiCall.run([
    PluginEntry("loopback") { PluginMain.run(Loopback(), about: Loopback.about) },
    PluginEntry("bridge") { PluginMain.run(Bridge(), about: Bridge.about) },
    PluginEntry("host-local") { PluginMain.run(HostLocal(), about: HostLocal.about) },
    PluginEntry("portmap") { PluginMain.run(Portmap(), about: Portmap.about) },
    PluginEntry("firewall") { PluginMain.run(Firewall(), about: Firewall.about) },
    PluginEntry("tuning") { PluginMain.run(Tuning(), about: Tuning.about) },
    PluginEntry("macvlan") { PluginMain.run(Macvlan(), about: Macvlan.about) },
    PluginEntry("ipvlan") { PluginMain.run(Ipvlan(), about: Ipvlan.about) },
    PluginEntry("vxlan") { PluginMain.run(Vxlan(), about: Vxlan.about) },
    PluginEntry("flannel") { PluginMain.run(Flannel(), about: Flannel.about) },
])
