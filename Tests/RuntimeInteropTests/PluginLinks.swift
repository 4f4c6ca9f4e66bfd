// The plugins as they are installed: one directory holding a link per plugin name to the
// built multi-call executable (netlab-cni), and nothing else, so a runtime pointed at it can
// only use our plugins.

import Foundation
import TestSupport

struct PluginLinks {
    let directory: String
    let names: [String]

    init() throws {
        let exe = BuiltProducts.path("netlab-cni")
        names = try runChecked([exe, "--list"]).stdout.split(separator: "\n").map(String.init)
        directory = NSTemporaryDirectory() + "netlab-plugins-\(getpid())-\(UInt32.random(in: 0..<UInt32.max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
        for name in names {
            try FileManager.default.createSymbolicLink(atPath: directory + "/" + name, withDestinationPath: exe)
        }
    }

    func remove() throws {
        try FileManager.default.removeItem(atPath: directory)
    }
}
