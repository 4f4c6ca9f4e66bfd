// host-local: CNI IPAM plugin allocating addresses from local ranges (see docs/plugins/host-local.md).
import CNI
import HostLocalPlugin

PluginMain.run(HostLocal(), about: "host-local: netlab IPAM plugin, addresses from local ranges with state in <dataDir>/<network>")
