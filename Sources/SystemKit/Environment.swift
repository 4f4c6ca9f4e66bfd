// The process environment, read once per call as a dictionary.

import Glibc

public enum Environment {
    /// Every variable of the calling process.
    public static var current: [String: String] {
        var env: [String: String] = [:]
        var p = environ
        while let entry = p.pointee {
            let s = String(cString: entry)
            if let eq = s.firstIndex(of: "=") { env[String(s[..<eq])] = String(s[s.index(after: eq)...]) }
            p += 1
        }
        return env
    }

    /// One variable, nil when unset.
    public static subscript(_ name: String) -> String? {
        getenv(name).map { String(cString: $0) }
    }
}
