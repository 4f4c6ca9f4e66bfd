// A CNI runtime driver for benchmarks: runs ADD for N containers one after another, then DEL
// for each, through CNIRuntime (the conflist runner every netlab runtime uses), and prints
// the median and p95 latency of each verb. It runs in whatever netns it is started in (the
// bench script starts it inside a throw-away host netns); the container netns are given.
//
// Usage: cni-bench CONFLIST PLUGIN_DIRS CACHE_DIR NETNS_PATH...
//   PLUGIN_DIRS is ":"-separated. Output: one line per verb, `VERB median_ms p95_ms n`.

import CNI
import Glibc
import SystemKit

let nanosecondsPerSecond: UInt64 = 1_000_000_000

func now() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * nanosecondsPerSecond + UInt64(ts.tv_nsec)
}

func fail(_ msg: String) -> Never {
    // Nothing is left to report a failed write of the failure to; the exit code still says it.
    try? FileDescriptor.standardError.writeAll(Array("cni-bench: \(msg)\n".utf8), context: "stderr")
    exit(1)
}

let argv = CommandLine.arguments
guard argv.count >= 5 else { fail("usage: cni-bench CONFLIST PLUGIN_DIRS CACHE_DIR NETNS_PATH...") }
let list: NetworkConfigList
do { list = try NetworkConfigList.load(path: argv[1]) } catch { fail("load \(argv[1]): \(error)") }
let runtime = CNIRuntime(pluginDirectories: argv[2].split(separator: ":").map(String.init), cacheDirectory: argv[3])
let netns = Array(argv[4...])

func stats(_ samples: [UInt64]) -> (median: Double, p95: Double) {
    let s = samples.sorted()
    let med = s.count % 2 == 1 ? Double(s[s.count / 2]) : Double(s[s.count / 2 - 1] + s[s.count / 2]) / 2
    let p95 = Double(s[min(s.count - 1, Int((Double(s.count) * 0.95).rounded(.up)) - 1)])
    let nanosecondsPerMillisecond = 1e6
    return (med / nanosecondsPerMillisecond, p95 / nanosecondsPerMillisecond)
}

func format(_ v: Double) -> String {
    let hundredths = Int((v * 100).rounded())
    let frac = hundredths % 100
    return "\(hundredths / 100).\(frac < 10 ? "0" : "")\(frac)"
}

var adds: [UInt64] = [], dels: [UInt64] = []
let confs = netns.enumerated().map { i, ns in RuntimeConf(containerID: "bench-\(i)", netns: ns, ifName: "eth0") }
for rt in confs {
    let t0 = now()
    do { _ = try runtime.addNetworkList(list, rt) } catch { fail("ADD \(rt.containerID): \(error)") }
    adds.append(now() - t0)
}
for rt in confs {
    let t0 = now()
    do { try runtime.delNetworkList(list, rt) } catch { fail("DEL \(rt.containerID): \(error)") }
    dels.append(now() - t0)
}
let a = stats(adds), d = stats(dels)
print("ADD \(format(a.median)) \(format(a.p95)) \(adds.count)")
print("DEL \(format(d.median)) \(format(d.p95)) \(dels.count)")
