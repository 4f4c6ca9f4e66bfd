// The seam between the process runtime and networking: the runtime makes the netns and
// calls an attacher before the container's command runs; the CNI runtime plugs in here.

/// Attaches a container's own network namespace to its network(s) and detaches it again.
///
/// `attach` is called for modes `none` and `network(NAME)` (never for `host` or
/// `container:NAME`, which use a netns someone else owns), after the netns exists and is
/// bind-mounted at `netnsPath`, and before the command starts. Its result (network name ->
/// result JSON, e.g. the CNI result) is stored in `ContainerRecord.networks`. If it
/// throws, the runtime tears the container down (calling `detach` too) and reports the error.
///
/// `detach` is called when the container is removed (`rm`, `--rm`, failed start) with the
/// record holding the results `attach` returned. `netnsPath` is nil when the netns is gone
/// already (crash cleanup): a CNI DEL must then still release addresses and rules. It must
/// succeed when there is nothing to undo, and may be called for a container that `attach`
/// never finished for.
import CNI

public protocol NetworkAttacher: Sendable {
    func validate(mode: NetworkMode) throws
    func attach(container: ContainerRecord, netnsPath: String) throws -> [String: JSONValue]
    func detach(container: ContainerRecord, netnsPath: String?) throws
}

/// No networking backend: mode `none` gets a bare netns (`lo` stays down), and a named
/// network is refused with an error saying so.
public struct NoNetworkAttacher: NetworkAttacher {
    public init() {}

    public func attach(container: ContainerRecord, netnsPath: String) throws -> [String: JSONValue] {
        if case .network(let name) = container.networkMode {
            throw RuntimeError.networkUnavailable(network: name, reason: "no network backend is configured in this build")
        }
        return [:]
    }

    public func detach(container: ContainerRecord, netnsPath: String?) throws {}
}

extension NetworkAttacher {
    /// Checked before anything is created for a container (e.g. that its network exists).
    public func validate(mode: NetworkMode) throws {}
}
