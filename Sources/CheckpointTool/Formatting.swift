import Checkpoint
import Foundation

/// Human-readable renderings of sizes, ratios, shapes and durations.
enum Formatting {
    /// `512 B`, `1.5 KiB`, `12.0 MiB`, `3.25 GiB`: binary units, three significant digits or so.
    static func bytes(_ count: Int) -> String {
        let units = ["KiB", "MiB", "GiB", "TiB", "PiB"]
        guard count >= 1024 || count < 0 else { return "\(count) B" }
        guard count >= 0 else { return "-" + bytes(count == Int.min ? Int.max : -count) }
        var value = Double(count) / 1024
        var unit = 0
        while value >= 1024 && unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return String(format: value < 10 ? "%.2f" : value < 100 ? "%.1f" : "%.0f", value) + " " + units[unit]
    }

    /// `bytes(_:)` of a size computed in floating point (a mean, a chart value), clamped to what an
    /// `Int` holds (NaN shows as 0 B): a display must never trap on a number a file made up.
    static func bytes(_ count: Double) -> String { bytes(integer(count)) }

    /// `value` rounded toward zero and clamped to `Int`'s range; NaN is 0.
    static func integer(_ value: Double) -> Int {
        guard !value.isNaN else { return 0 }
        if value >= 9.2e18 { return Int.max }
        if value <= -9.2e18 { return Int.min }
        return Int(value)
    }

    /// The sum of `values`, clamped to `Int`'s range instead of overflowing: totals over several
    /// manifests are only shown, and each manifest's own totals are checked when it is decoded.
    static func sum(_ values: some Sequence<Int>) -> Int {
        var total = 0
        for value in values {
            let (next, overflow) = total.addingReportingOverflow(value)
            if overflow { return value > 0 ? Int.max : Int.min }
            total = next
        }
        return total
    }

    /// `+104 B`, `-1.50 KiB`, `0 B`: a change in size.
    static func signedBytes(_ delta: Int) -> String {
        delta == 0 ? "0 B" : (delta > 0 ? "+" : "-") + bytes(delta.magnitude > Int.max ? Int.max : abs(delta))
    }

    /// `0.25`, `1.5e-07`, `12345`, `nan`, `inf`: six significant digits.
    static func number(_ value: Double) -> String {
        if value.isNaN { return "nan" }
        if value.isInfinite { return value < 0 ? "-inf" : "inf" }
        return String(format: "%.6g", value)
    }

    /// `raw / stored`, 1 when nothing is stored.
    static func ratio(raw: Int, stored: Int) -> Double {
        stored == 0 ? 1 : Double(raw) / Double(stored)
    }

    /// A ratio rounded to three decimals, for JSON.
    static func rounded(_ ratio: Double) -> Double { (ratio * 1000).rounded() / 1000 }

    /// `3.21x`.
    static func ratioText(_ ratio: Double) -> String { String(format: "%.2fx", ratio) }

    /// `64x32`, or `scalar` for a single value.
    static func shape(_ dimensions: [Int]) -> String {
        dimensions.isEmpty ? "scalar" : dimensions.map(String.init).joined(separator: "x")
    }

    /// `0.012 s`.
    static func seconds(_ value: Double) -> String { String(format: "%.3f s", value) }

    /// `0.42 ms`, `12.3 ms`, `1.25 s`: three significant digits or so, for short times.
    static func duration(_ value: Double) -> String {
        if value >= 1 { return String(format: value < 10 ? "%.2f s" : "%.1f s", value) }
        let milliseconds = value * 1000
        return String(format: milliseconds < 10 ? "%.2f ms" : milliseconds < 100 ? "%.1f ms" : "%.0f ms", milliseconds)
    }
}

/// A plain-text table whose columns are padded to their widest cell.
///
/// ```
/// STEP  CREATED               RANKS      RAW
///    1  2025-01-01T00:00:00Z      1  4.0 MiB
/// ```
struct TextTable {
    /// How a column's cells line up.
    enum Alignment {
        case left
        case right
    }

    /// A column's title and alignment.
    struct Column {
        var title: String
        var alignment: Alignment
    }

    var columns: [Column]
    var rows: [[String]] = []

    /// A table with these columns; titles of right-aligned columns start with `>`, e.g. `">RAW"`.
    init(_ titles: String...) {
        columns = titles.map { title in
            title.hasPrefix(">")
                ? Column(title: String(title.dropFirst()), alignment: .right) : Column(title: title, alignment: .left)
        }
    }

    /// Appends a row; it must have one cell per column.
    mutating func append(_ cells: [String]) {
        precondition(cells.count == columns.count, "a row needs one cell per column")
        rows.append(cells.map(PrintableText.escaped))
    }

    /// The table's lines, columns separated by two spaces, without trailing blanks.
    func lines() -> [String] {
        let all = [columns.map(\.title)] + rows
        let widths = columns.indices.map { column in all.map { $0[column].count }.max() ?? 0 }
        return all.map { cells in
            var line = ""
            for (index, cell) in cells.enumerated() {
                let padding = String(repeating: " ", count: widths[index] - cell.count)
                if index > 0 { line += "  " }
                line += columns[index].alignment == .right ? padding + cell : cell + padding
            }
            return String(line.reversed().drop(while: { $0 == " " }).reversed())
        }
    }
}
