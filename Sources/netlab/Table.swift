// The CLI's one table layout (ps, network ls, host ls, demo): columns padded to their widest
// cell, the last column left unpadded.

/// `rows` (the first is the header) as aligned lines, columns separated by `gap`.
func formatTable(_ rows: [[String]], gap: String = "   ") -> String {
    guard let first = rows.first else { return "" }
    let widths = (0..<first.count).map { c in rows.map { $0[c].count }.max()! }
    return rows.map { row in
        row.enumerated().map { i, cell in
            i == row.count - 1 ? cell : cell + String(repeating: " ", count: widths[i] - cell.count)
        }.joined(separator: gap)
    }.joined(separator: "\n")
}

func printTable(_ rows: [[String]], gap: String = "   ") throws {
    guard !rows.isEmpty else { return }
    try printOut(formatTable(rows, gap: gap))
}
