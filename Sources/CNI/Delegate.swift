// Delegation: a plugin calls another plugin (an IPAM plugin, or bridge from flannel) found on
// CNI_PATH, with its own environment (CNI_COMMAND possibly changed) and a config on stdin.
// A delegate's error JSON comes back as a thrown CNIError with the same code, msg and details.

import SystemKit

public enum Delegate {
    /// ADD on the plugin `type`, with `config` on stdin; the result in the config's version.
    public static func add(type: String, config: [UInt8], request: CNIRequest,
                           environment overrides: [String: String] = [:]) throws(CNIError) -> CNIResult {
        let out = try invoke(type: type, command: .add, config: config, request: request, overrides: overrides)
        // The delegate parsed the same config already; a version-less one decodes as the result says.
        let version = (try? JSONValue.parse(config))?["cniVersion"]?.stringValue
        return try CNIResult.decode(out, version: version)
    }

    public static func del(type: String, config: [UInt8], request: CNIRequest,
                           environment overrides: [String: String] = [:]) throws(CNIError) {
        _ = try invoke(type: type, command: .del, config: config, request: request, overrides: overrides)
    }

    public static func check(type: String, config: [UInt8], request: CNIRequest,
                             environment overrides: [String: String] = [:]) throws(CNIError) {
        _ = try invoke(type: type, command: .check, config: config, request: request, overrides: overrides)
    }

    public static func status(type: String, config: [UInt8], request: CNIRequest,
                              environment overrides: [String: String] = [:]) throws(CNIError) {
        _ = try invoke(type: type, command: .status, config: config, request: request, overrides: overrides)
    }

    public static func gc(type: String, config: [UInt8], request: CNIRequest,
                          environment overrides: [String: String] = [:]) throws(CNIError) {
        _ = try invoke(type: type, command: .gc, config: config, request: request, overrides: overrides)
    }

    /// The IPAM shorthand: runs `ipam.type` with the request's own config (what the reference
    /// plugins do: the IPAM plugin reads its section out of the whole config).
    public static func ipamAdd(_ request: CNIRequest) throws(CNIError) -> CNIResult {
        guard let t = request.config.ipamType, !t.isEmpty else {
            throw CNIError.invalidConfig("missing required field \"ipam.type\"")
        }
        return try add(type: t, config: request.configBytes, request: request)
    }

    public static func ipamDel(_ request: CNIRequest) throws(CNIError) {
        guard let t = request.config.ipamType, !t.isEmpty else { return }
        try del(type: t, config: request.configBytes, request: request)
    }

    /// Runs `type` from the request's CNI_PATH with the request's environment, CNI_COMMAND
    /// set to `command`, then `overrides` applied (an empty value removes the variable).
    public static func invoke(type: String, command: CNICommand, config: [UInt8], request: CNIRequest,
                              overrides: [String: String] = [:]) throws(CNIError) -> [UInt8] {
        var env = request.environment
        if env.isEmpty { env = Environment.current }
        env["CNI_COMMAND"] = command.rawValue
        for (k, v) in overrides { env[k] = v.isEmpty ? nil : v }
        let path = try locate(type: type, environment: env, request: request)
        return try PluginExec.invoke(path, environment: env, stdin: config)
    }

    /// The executable `type` names on the CNI_PATH of `environment` (the request's own, or
    /// this process's when the request carries none), as `invoke` would run it. A type that
    /// is no plain file name is code 7; one found nowhere is the "failed to find plugin" error.
    public static func locate(type: String, environment: [String: String]? = nil,
                              request: CNIRequest) throws(CNIError) -> String {
        let env = environment ?? (request.environment.isEmpty ? Environment.current : request.environment)
        let dirs = (env["CNI_PATH"] ?? "").split(separator: ":").map(String.init)
        return try PluginExec.find(type, in: dirs.isEmpty ? request.path : dirs)
    }
}
