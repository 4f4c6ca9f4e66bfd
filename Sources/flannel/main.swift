import CNI
import FlannelPlugin

PluginMain.run(Flannel(), about: "netlab flannel plugin: the overlay daemon's subnet.env (overlayd or flanneld) delegated to bridge + host-local")
