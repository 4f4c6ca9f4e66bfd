import CNI
import LoopbackPlugin

PluginMain.run(Loopback(), about: "netlab loopback plugin: brings lo up in the container netns")
