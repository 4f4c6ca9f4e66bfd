// The demo's servers and clients: python3 programs run inside containers (the containers share
// the machine's root filesystem, which has python3). The NetlabTests use them too.

public enum DemoScripts {
    /// A TCP server on `port` that answers every connection with `reply`, or with the peer's
    /// address when `reply` is nil (to show what address a connection came from).
    public static func server(port: Int, reply: String?) -> String {
        """
        import socket
        s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", \(port))); s.listen(16)
        while True:
            c, a = s.accept(); c.sendall(\(reply.map { "b\"\($0)\"" } ?? "a[0].encode()")); c.close()
        """
    }

    /// A client that connects to `host`:`port` (retrying for 6 s while the server starts) and
    /// prints the reply; exit status 1 when it never connects.
    public static func client(_ host: String, port: Int) -> String {
        """
        import socket, sys, time
        for i in range(60):
            try:
                s = socket.create_connection(("\(host)", \(port)), timeout=2); print(s.recv(200).decode()); sys.exit(0)
            except OSError:
                time.sleep(0.1)
        sys.exit(1)
        """
    }
}
