// Used only by tests: another process racing on one embedded store.
//
//   lease-store-race DB PREFIX COUNT NAME
//
// creates PREFIX0 ... PREFIX<COUNT-1> if absent with the value NAME and prints one line per
// key: "won KEY" or "lost KEY HOLDER". A store error is printed and exits 1.

import Glibc
import Overlay
import OverlayStores
import SystemKit

let args = CommandLine.arguments
guard args.count == 5, let count = Int(args[3]) else {
    print("usage: lease-store-race DB PREFIX COUNT NAME")
    exit(2)
}
do {
    let store = try await EmbeddedLeaseStore.open(path: args[1])
    var lines: [String] = []
    for i in 0..<count {
        let key = args[2] + String(i)
        switch try await store.create(key, text: args[4], ttl: nil) {
        case .created: lines.append("won \(key)")
        case .exists(let holder): lines.append("lost \(key) \(holder.text)")
        }
    }
    await store.close()
    print(lines.joined(separator: "\n"))
} catch {
    print("error: \(error)")
    exit(1)
}
