// The overlayd processes netlab starts, one per (simulated host, overlay network): started
// detached through the netns helper, recorded by pid + start time, stopped by that record only.

import FoundationEssentials
import Glibc
import SystemKit

extension OverlayNetworks {
    /// Starts the daemon of `network` in `host`'s netns (unless the recorded one still runs).
    func startDaemon(_ host: SimulatedHost, _ network: OverlayNetwork) throws {
        if let d = try daemon(host.name, network.name), ProcessStat.isAlive(pid: d.pid, startTime: d.startTime) { return }
        let dir = hostDirectory(host.name, network.name)
        let arguments = [host.netnsPath, logPath(host.name, network.name), overlayd,
                         "--iface", "eth0", "--ip-masq", "--subnet-file", subnetFile(host.name, network.name),
                         "--state-dir", dir + "/state"] + storeArguments(network)
        let pid = try Subprocess.startDetached(netnsExec[0], arguments: Array(netnsExec.dropFirst()) + arguments,
                                               environment: Environment.current)
        guard let stat = ProcessStat.read(pid: pid) else {
            throw RuntimeError.state("overlayd for \(network.name) on host \(host.name) exited at once; see \(logPath(host.name, network.name))")
        }
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        let record = OverlayDaemonRecord(pid: pid, startTime: stat.startTime)
        try Files.writeAtomically(daemonPath(host.name, network.name), [UInt8](try enc.encode(record)) + [10])
    }

    func daemon(_ host: String, _ name: String) throws -> OverlayDaemonRecord? {
        guard let bytes = try Files.readIfPresent(daemonPath(host, name)) else { return nil }
        do { return try JSONDecoder().decode(OverlayDaemonRecord.self, from: Data(bytes)) } catch {
            throw RuntimeError.state("unreadable \(daemonPath(host, name)): \(error)")
        }
    }

    /// Waits until the daemon has written subnet.env (device and routes are in place then);
    /// fails early, with the end of its log, when it exits.
    func waitForSubnet(_ host: String, _ name: String) throws {
        var waited = 0
        while try leasedSubnet(host, name) == nil {
            let d = try daemon(host, name)
            guard let d, ProcessStat.isAlive(pid: d.pid, startTime: d.startTime) else {
                throw RuntimeError.state("overlayd for \(name) on host \(host) exited: \(logTail(host, name))")
            }
            guard waited < Self.readyTimeoutMilliseconds else {
                throw RuntimeError.state("overlayd for \(name) on host \(host) leased no subnet in \(Self.readyTimeoutMilliseconds / 1000) s: \(logTail(host, name))")
            }
            usleep(UInt32(Self.pollMilliseconds * 1000))
            waited += Self.pollMilliseconds
        }
    }

    /// The last line of a daemon's log, for an error message.
    func logTail(_ host: String, _ name: String) -> String {
        // An unreadable log leaves only its path to point at.
        let text = (try? Files.readIfPresent(logPath(host, name))).flatMap { $0 }.map { String(decoding: $0, as: UTF8.self) } ?? ""
        let last = text.split(separator: "\n").last.map(String.init) ?? "(no output)"
        return "\(last) (log: \(logPath(host, name)))"
    }

    /// SIGTERM to the recorded daemon (only if it is still the process recorded), SIGKILL when
    /// it has not exited in time.
    func stopDaemon(_ host: String, _ name: String) throws {
        guard let d = try daemon(host, name) else { return }
        var waited = 0
        var signal = SIGTERM
        while ProcessStat.isAlive(pid: d.pid, startTime: d.startTime) {
            if waited == 0 || waited == Self.stopTimeoutMilliseconds {
                if waited == Self.stopTimeoutMilliseconds { signal = SIGKILL }
                // The recorded process may exit between the check and the signal: ESRCH is done.
                if kill(d.pid, signal) != 0 && errno != ESRCH {
                    throw SystemError(operation: "kill", object: "overlayd pid \(d.pid)", errno: errno)
                }
            }
            usleep(UInt32(Self.pollMilliseconds * 1000))
            waited += Self.pollMilliseconds
        }
        // A daemon started by this very process is its child: reap it (nothing to reap otherwise).
        var status: Int32 = 0
        _ = waitpid(d.pid, &status, WNOHANG)
        try Files.remove(daemonPath(host, name))
    }
}
