// Durations written as Go writes them (`time.ParseDuration`): a sequence of decimal numbers,
// each with a unit, "10s", "5m", "24h", "1h30m", "1.5h", "300ms". flanneld's users write
// their lease TTLs and intervals this way.

public enum GoDuration {
    /// Nanoseconds per unit, longest unit names first so "ms" is not read as "m".
    private static let units: [(name: String, nanoseconds: Double)] = [
        ("ns", 1), ("us", 1e3), ("µs", 1e3), ("ms", 1e6), ("s", 1e9), ("m", 60e9), ("h", 3600e9),
    ]

    /// The duration `text` names, nil when it is not one ("0" alone is zero, as in Go).
    public static func parse(_ text: String) -> Duration? {
        if text == "0" { return .zero }
        var rest = Substring(text)
        guard !rest.isEmpty else { return nil }
        var total = 0.0
        while !rest.isEmpty {
            let number = rest.prefix { $0.isASCII && ($0.isNumber || $0 == ".") }
            guard !number.isEmpty, let value = Double(number) else { return nil }
            rest = rest.dropFirst(number.count)
            guard let unit = units.first(where: { rest.hasPrefix($0.name) }) else { return nil }
            rest = rest.dropFirst(unit.name.count)
            total += value * unit.nanoseconds
        }
        guard total.isFinite, total < Double(Int64.max) else { return nil }
        return .nanoseconds(Int64(total))
    }

    /// `d` in Go's words, largest units first ("24h0m0s" is written "24h"; "1h30m", "2.5s").
    public static func format(_ d: Duration) -> String {
        let (seconds, attoseconds) = d.components
        var s = seconds
        let milliseconds = attoseconds / 1_000_000_000_000_000
        if s == 0 && milliseconds == 0 { return "0s" }
        var out = ""
        if s >= 3600 { out += "\(s / 3600)h"; s %= 3600 }
        if s >= 60 { out += "\(s / 60)m"; s %= 60 }
        if s > 0 || milliseconds > 0 {
            var fraction = String(milliseconds + 1000).dropFirst()
            while fraction.last == "0" { fraction.removeLast() }
            out += fraction.isEmpty ? "\(s)s" : "\(s).\(fraction)s"
        }
        return out
    }
}
