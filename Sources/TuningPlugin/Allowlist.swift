// The administrator's sysctl allowlist, as the reference plugin reads it: when
// /etc/cni/tuning/allowlist.conf exists, each non-empty line is a regular expression, and a
// sysctl key (as written in the config) is allowed only when one of them matches somewhere
// in it. Without the file every network sysctl is allowed.

import CNI
import SystemKit

enum SysctlAllowlist {
    /// The reference plugin's path.
    static let path = "/etc/cni/tuning/allowlist.conf"

    /// Code 7 naming the first key no pattern of the file at `path` matches; nothing when the
    /// file does not exist. An unreadable file is code 5, a line that is no regular
    /// expression code 999 naming the line.
    static func check(_ keys: [SysctlKey], path: String = path) throws(CNIError) {
        guard !keys.isEmpty else { return }
        let file: String?
        do throws(SystemError) { file = try Files.readText(path) } catch { throw CNIError(error, context: "read the sysctl allowlist") }
        guard let text = file else { return }
        let lines = text.split(separator: "\n").map { $0.trimmingCharacters(in: " \t\r") }.filter { !$0.isEmpty }
        var patterns: [Regex<AnyRegexOutput>] = []
        for (i, line) in lines.enumerated() {
            do {
                patterns.append(try Regex(line))
            } catch {
                throw CNIError(code: .internal, msg: "\(path): pattern \(i + 1) \"\(line)\" is not a regular expression: \(error)")
            }
        }
        for key in keys.sorted() where !patterns.contains(where: { key.written.contains($0) }) {
            throw CNIError.invalidConfig("sysctl: key \"\(key.written)\" is not allowed by \(path) (allowed: \(lines.joined(separator: ", ")))")
        }
    }
}

extension Substring {
    func trimmingCharacters(in set: String) -> String {
        var s = self[...]
        while let c = s.first, set.contains(c) { s.removeFirst() }
        while let c = s.last, set.contains(c) { s.removeLast() }
        return String(s)
    }
}
