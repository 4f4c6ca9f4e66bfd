import CNI
import TuningPlugin

PluginMain.run(Tuning(), about: Tuning.about)
