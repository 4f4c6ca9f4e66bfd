// cni-run: a CNI runtime for tests, one attachment per process, the way a container runtime
// runs libcni: a conflist executed through CNIRuntime (prevResult chaining, the result cache,
// DEL in reverse order with the cached result). Like cnitool, it takes the plugin directories
// from CNI_PATH and the capability arguments (e.g. portMappings) from CAP_ARGS.
//
// Usage: cni-run add|del|check|gc CONFLIST CONTAINERID NETNS CACHE_DIR
//   add prints the result (in the list's version) on stdout; a failure prints the CNI error
//   JSON on stdout and exits 1. gc (CONTAINERID and NETNS unused) collects the network with no
//   valid attachment left, as a runtime does once its last container is gone.

import CNI
import Glibc
import SystemKit

func finish(_ bytes: [UInt8], status: Int32) -> Never {
    // The exit status is the answer; output that cannot be written changes nothing about it.
    try? FileDescriptor.standardOutput.writeAll(bytes + [UInt8(ascii: "\n")])
    exit(status)
}

func fail(_ error: CNIError, version: String) -> Never {
    finish(error.json(version: version).serialized(), status: 1)
}

let args = CommandLine.arguments
guard args.count == 6, ["add", "del", "check", "gc"].contains(args[1]) else {
    fail(.invalidEnvironment("usage: cni-run add|del|check|gc CONFLIST CONTAINERID NETNS CACHE_DIR"), version: CNIVersion.current)
}
guard let cniPath = Environment["CNI_PATH"], !cniPath.isEmpty else {
    fail(.invalidEnvironment("CNI_PATH is not set"), version: CNIVersion.current)
}

let list: NetworkConfigList
do { list = try NetworkConfigList.load(path: args[2]) } catch { fail(error, version: CNIVersion.current) }
var capabilityArgs: [String: JSONValue] = [:]
if let text = Environment["CAP_ARGS"], !text.isEmpty {
    let value: JSONValue
    do { value = try JSONValue.parse(Array(text.utf8), what: "CAP_ARGS") } catch { fail(error, version: list.cniVersion) }
    guard let object = value.objectValue else { fail(.decodingFailure("CAP_ARGS is not a JSON object"), version: list.cniVersion) }
    capabilityArgs = object
}

let runtime = CNIRuntime(pluginDirectories: cniPath.split(separator: ":").map(String.init), cacheDirectory: args[5])
let rt = RuntimeConf(containerID: args[3], netns: args[4], ifName: "eth0", capabilityArgs: capabilityArgs)
do {
    switch args[1] {
    case "add": finish(try runtime.addNetworkList(list, rt).encoded(version: list.cniVersion), status: 0)
    case "del": try runtime.delNetworkList(list, rt)
    case "gc": try runtime.gcNetworkList(list, validAttachments: [])
    default: try runtime.checkNetworkList(list, rt)
    }
} catch {
    fail(error, version: list.cniVersion)
}
exit(0)
