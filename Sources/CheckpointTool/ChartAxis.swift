import Foundation

/// A value axis: nicely rounded ticks in a unit chosen for the data (KiB or MiB, ms or s).
struct ChartAxis {
    /// Tick positions in data units, from 0 up to ``top``.
    var ticks: [Double]
    /// A label per tick.
    var labels: [String]
    /// The value at the top of the plot.
    var top: Double { ticks.last ?? 1 }

    /// Ticks at 1, 2, 2.5 or 5 times a power of ten (in `unit`s), covering `maximum`.
    init(maximum: Double, unit: Double = 1, suffix: String = "", count: Int = 5) {
        let scaled = maximum.isFinite && maximum > 0 ? maximum / unit : 1
        let rough = scaled / Double(count)
        let magnitude = pow(10, (log10(rough)).rounded(.down))
        let step = [1, 2, 2.5, 5, 10].map { $0 * magnitude }.first { $0 >= rough } ?? rough
        let steps = min(100, Formatting.integer((scaled / step).rounded(.up)))
        ticks = (0...max(1, steps)).map { Double($0) * step * unit }
        labels = (0...max(1, steps)).map { index in
            let value = Double(index) * step
            return (value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : String(format: "%g", value))
                + suffix
        }
    }

    /// An axis in B, KiB, MiB, GiB or TiB.
    static func bytes(maximum: Double) -> ChartAxis {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var unit = 0
        while unit < units.count - 1 && maximum >= pow(1024, Double(unit + 1)) { unit += 1 }
        return ChartAxis(maximum: maximum, unit: pow(1024, Double(unit)), suffix: " " + units[unit])
    }

    /// An axis in ms below a second, else in s.
    static func seconds(maximum: Double) -> ChartAxis {
        maximum < 1
            ? ChartAxis(maximum: maximum, unit: 0.001, suffix: " ms") : ChartAxis(maximum: maximum, suffix: " s")
    }

    /// An axis of ratios, `2.5x`.
    static func ratio(maximum: Double) -> ChartAxis { ChartAxis(maximum: max(1, maximum), suffix: "x") }
}
