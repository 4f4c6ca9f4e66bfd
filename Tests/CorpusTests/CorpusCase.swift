// One case of the bad-input corpus (Tests/Corpus/<group>/<case>.json, described in
// Tests/Corpus/README.md): what goes on stdin, the environment, the plugins it applies to,
// and the error every one of them must answer with.

import Foundation

struct CorpusCase: CustomStringConvertible {
    /// "<group>/<case>" (the file's path below Tests/Corpus, without ".json").
    let name: String
    let about: String
    /// Plugin names, or ["*"] for every plugin.
    let plugins: [String]
    let command: String
    /// Raw stdin text (may be anything, including truncated JSON), or nil to use `base`+`patch`.
    let raw: String?
    /// The base config ("@plugin": the plugin's own) and a JSON merge patch (RFC 7396) over it.
    let base: String
    let patch: Any?
    /// Environment overrides: a string value (placeholders allowed), or NSNull to unset.
    let env: [String: Any]
    /// subnet.env text written before the case (flannel), nil for the world's default.
    let subnetEnv: String?
    let code: Int
    /// Text the error's msg must contain (the field it names).
    let messageContains: String

    var description: String { name }

    /// Every case below `root` (bases/ excluded), sorted by name.
    static func loadAll(from root: String) throws -> [CorpusCase] {
        let fm = FileManager.default
        var out: [CorpusCase] = []
        for group in try fm.contentsOfDirectory(atPath: root).sorted() where group != "bases" {
            var isDir: ObjCBool = false
            guard fm.fileExists(atPath: root + "/" + group, isDirectory: &isDir), isDir.boolValue else { continue }
            for file in try fm.contentsOfDirectory(atPath: root + "/" + group).sorted() where file.hasSuffix(".json") {
                out.append(try CorpusCase(path: root + "/" + group + "/" + file,
                                          name: group + "/" + String(file.dropLast(".json".count))))
            }
        }
        return out
    }

    struct Malformed: Error, CustomStringConvertible {
        let path: String, problem: String
        var description: String { "corpus case \(path): \(problem)" }
    }

    init(path: String, name: String) throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        guard let o = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw Malformed(path: path, problem: "not a JSON object")
        }
        func need<T>(_ key: String, _ type: T.Type) throws -> T {
            guard let v = o[key] as? T else { throw Malformed(path: path, problem: "missing or mistyped \"\(key)\"") }
            return v
        }
        self.name = name
        about = try need("about", String.self)
        plugins = try need("plugins", [String].self)
        command = o["command"] as? String ?? "ADD"
        let stdin = try need("stdin", [String: Any].self)
        raw = stdin["raw"] as? String
        base = stdin["base"] as? String ?? "@plugin"
        patch = stdin["patch"]
        env = o["env"] as? [String: Any] ?? [:]
        subnetEnv = o["subnetEnv"] as? String
        code = try need("code", Int.self)
        messageContains = try need("messageContains", String.self)
        guard raw != nil || stdin["base"] != nil else { throw Malformed(path: path, problem: "stdin needs \"raw\" or \"base\"") }
    }

    func applies(to plugin: String) -> Bool { plugins.contains("*") || plugins.contains(plugin) }
}

/// RFC 7396 JSON merge patch: objects merge key by key, null removes a key, anything else replaces.
func mergePatch(_ target: Any, _ patch: Any) -> Any {
    guard let p = patch as? [String: Any] else { return patch }
    var t = target as? [String: Any] ?? [:]
    for (k, v) in p {
        if v is NSNull { t.removeValue(forKey: k) } else { t[k] = mergePatch(t[k] as Any, v) }
    }
    return t
}

/// Replaces every placeholder in the strings of a JSON value.
func substitute(_ value: Any, _ replace: (String) -> String) -> Any {
    switch value {
    case let s as String: return replace(s)
    case let a as [Any]: return a.map { substitute($0, replace) }
    case let o as [String: Any]: return o.mapValues { substitute($0, replace) }
    default: return value
    }
}
