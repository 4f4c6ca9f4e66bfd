import BridgePlugin
import CNI

PluginMain.run(Bridge(), about: Bridge.about)
