// The container MAC a runtime asks for, read the same way by every plugin that sets one.

import CNI
import NetTypes

extension CNIRequest {
    /// The MAC address asked for: `runtimeConfig.mac` (capability `mac`), else CNI_ARGS `MAC`,
    /// else `args.cni.mac`, else `configured` (a plugin's own `mac` option); nil when none is.
    /// One that is not a unicast, non-zero MAC is code 7 naming where it came from.
    public func requestedMAC(configured: String? = nil) throws(CNIError) -> MACAddress? {
        let sources: [(String, String?)] = [
            ("runtimeConfig.mac", config.runtimeConfig.mac), ("CNI_ARGS MAC", arg("MAC")),
            ("args.cni.mac", config.args?["cni"]?["mac"]?.stringValue), ("mac", configured),
        ]
        guard let (field, text) = sources.first(where: { $0.1 != nil }).map({ ($0.0, $0.1!) }), !text.isEmpty else {
            return nil
        }
        guard let mac = MACAddress(text), !mac.isMulticast, !mac.isZero else {
            throw CNIError.invalidConfig("\(field): invalid unicast MAC address \"\(text)\"")
        }
        return mac
    }
}
