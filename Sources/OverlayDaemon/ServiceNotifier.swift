// systemd's readiness protocol (Type=notify): one datagram "READY=1" to the unix socket
// named by $NOTIFY_SOCKET, once the daemon is ready. Without the variable, nothing happens.

import SystemKit

enum ServiceNotifier {
    static let socketVariable = "NOTIFY_SOCKET"

    /// Tells systemd the service is ready; returns the socket told, nil when none is set.
    @discardableResult
    static func ready(environment: [String: String] = Environment.current) throws(SystemError) -> String? {
        guard let path = environment[socketVariable], !path.isEmpty else { return nil }
        try UnixDatagram.send(Array("READY=1".utf8), to: path)
        return path
    }
}
