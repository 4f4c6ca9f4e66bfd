// nftables state of a test netns, read back with `nft -j list ruleset`. The whole ruleset is
// read (not one table), so "the table is not there" is an answer and never an error, while
// a failing or lying `nft` is always an error: the output must be nft's JSON, metainfo first.

import Foundation

/// The ruleset of one netns as `nft -j` prints it.
public struct NFTRuleset: @unchecked Sendable {
    /// Every entry but the metainfo: [{"table": {…}}, {"chain": {…}}, {"set": {…}}, …].
    public var entries: [[String: Any]]

    /// A ruleset without tables (what a helper gives after recording a failed read).
    public static let empty = NFTRuleset(entries: [])

    public init(entries: [[String: Any]]) { self.entries = entries }

    /// Parses `nft -j list ruleset` output; throws unless it is nft's JSON.
    public init(_ result: CommandResult) throws(CommandFailure) {
        let object = try result.checkedJSONObject()
        guard let items = object["nftables"] as? [[String: Any]],
              items.contains(where: { $0["metainfo"] != nil }) else {
            throw CommandFailure(result, "printed JSON without nft's \"nftables\" list and metainfo")
        }
        entries = items.filter { $0["metainfo"] == nil }
    }

    /// The ruleset of `netns` (`ip netns exec NS nft -j list ruleset`).
    public static func read(in netns: String) throws(CommandFailure) -> NFTRuleset {
        try NFTRuleset(runCommand(["ip", "netns", "exec", netns, "nft", "-j", "list", "ruleset"]))
    }

    public func hasTable(family: String, name: String) -> Bool {
        entries.contains { e in
            guard let t = e["table"] as? [String: Any] else { return false }
            return t["family"] as? String == family && t["name"] as? String == name
        }
    }

    /// Every set and map of the tables named `table` (of `family`, when given).
    public func sets(table: String, family: String? = nil) -> [NFTRuleset.SetContents] {
        entries.compactMap { e -> SetContents? in
            let kind = e["set"] != nil ? "set" : "map"
            guard let s = (e["set"] ?? e["map"]) as? [String: Any], s["table"] as? String == table,
                  let fam = s["family"] as? String, family == nil || fam == family,
                  let name = s["name"] as? String else { return nil }
            let elements = (s["elem"] as? [Any] ?? []).map(Element.init)
            return SetContents(family: fam, table: table, name: name, kind: kind, elements: elements)
        }
    }
}

extension NFTRuleset {
    /// One set or map with its elements.
    public struct SetContents: @unchecked Sendable {
        public var family: String
        public var table: String
        public var name: String
        /// "set" or "map".
        public var kind: String
        public var elements: [Element]
    }

    /// One element as nft prints it: a bare value, `{"elem": {"val": …, "comment": …}}`, or for
    /// maps a `[key, data]` pair whose key is either of those.
    public struct Element: @unchecked Sendable {
        public var raw: Any
        /// The key: strings and numbers as they are, anything else (prefix, range, concat) as JSON.
        public var key: String
        public var comment: String?

        public init(_ raw: Any) {
            self.raw = raw
            var keyPart = raw
            if let pair = raw as? [Any], let first = pair.first { keyPart = first }
            if let wrapped = (keyPart as? [String: Any])?["elem"] as? [String: Any] {
                comment = wrapped["comment"] as? String
                keyPart = wrapped["val"] ?? wrapped
            }
            key = Element.text(keyPart)
        }

        static func text(_ value: Any) -> String {
            if let s = value as? String { return s }
            if let n = value as? NSNumber { return n.stringValue }
            // Produced by JSONSerialization a moment ago, so it serializes back.
            let data = try! JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .fragmentsAllowed])
            return String(decoding: data, as: UTF8.self)
        }
    }
}
