// host-local: CNI IPAM plugin allocating addresses from local ranges (see docs/plugins/host-local.md).
import CNI
import HostLocalPlugin

PluginMain.run(HostLocal(), about: HostLocal.about)
