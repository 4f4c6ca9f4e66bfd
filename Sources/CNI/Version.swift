// Spec versions: which exist, which we speak, how they compare.

/// A CNI spec version ("1.1.0"). Compared numerically.
public struct CNIVersion: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var major: Int, minor: Int, patch: Int

    public init?(_ text: String) {
        let p = text.split(separator: ".", omittingEmptySubsequences: false)
        guard p.count == 3, let a = Int(p[0]), let b = Int(p[1]), let c = Int(p[2]),
              a >= 0, b >= 0, c >= 0 else { return nil }
        major = a; minor = b; patch = c
    }

    public static func < (x: CNIVersion, y: CNIVersion) -> Bool {
        (x.major, x.minor, x.patch) < (y.major, y.minor, y.patch)
    }
    public var description: String { "\(major).\(minor).\(patch)" }

    public static let v0_3_0 = CNIVersion("0.3.0")!
    public static let v0_3_1 = CNIVersion("0.3.1")!
    public static let v0_4_0 = CNIVersion("0.4.0")!
    public static let v1_0_0 = CNIVersion("1.0.0")!
    public static let v1_1_0 = CNIVersion("1.1.0")!

    /// Every version this library reads and writes, oldest first.
    public static let supported: [String] = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]
    /// The newest version: what we write when nothing asks otherwise.
    public static let current = "1.1.0"

    /// Throws code 1 unless `version` is one of `supported` (or the given list).
    public static func require(_ version: String, in list: [String] = supported, what: String = "config") throws(CNIError) {
        guard list.contains(version) else {
            let shown = version.isEmpty ? "(empty, meaning 0.1.0)" : version
            throw CNIError(code: .incompatibleVersion,
                           msg: "incompatible CNI versions",
                           details: "\(what) is \(shown), supported versions are [\(list.joined(separator: " "))]")
        }
    }

    /// True when `version` is at least `minimum` (an unparseable version is not).
    public static func atLeast(_ version: String, _ minimum: CNIVersion) -> Bool {
        guard let v = CNIVersion(version) else { return false }
        return v >= minimum
    }

    /// The newest version in `candidates` that is also in `supported`, for a conflist that
    /// lists several (`cniVersions`, spec 1.1).
    public static func negotiate(_ candidates: [String], supported: [String] = supported) -> String? {
        candidates.filter { supported.contains($0) }.compactMap { CNIVersion($0) }.max()?.description
    }
}
