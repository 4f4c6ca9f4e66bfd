import CNI
import TuningPlugin

PluginMain.run(Tuning(), about: "netlab tuning plugin: container sysctls and interface attributes, put back at DEL")
