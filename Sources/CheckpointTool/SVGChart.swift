import Foundation

/// Inline SVG charts: no scripts, no external resources; every label is escaped and every bar
/// has a `<title>` that browsers show on hover.
enum SVGChart {
    /// One set of values, one per category, drawn in one color.
    struct Series {
        var name: String
        var color: String
        /// One value per category; NaN for none (a gap).
        var values: [Double]
    }

    /// A dashed horizontal line across the plot, e.g. the mean.
    struct Reference {
        var label: String
        var value: Double
    }

    static let width = 960.0
    static let left = 76.0
    static let right = 70.0
    static let top = 30.0
    static let bottom = 46.0

    /// Vertical bars, one per category, the series stacked on each other.
    /// - Parameters:
    ///   - categories: The x labels (e.g. steps), shown thinned out when there are many.
    ///   - axisTitle: What the categories are, under the axis.
    ///   - series: The stacked parts, bottom first.
    ///   - axis: Makes the value axis for the largest stack.
    ///   - text: A value as the hover text shows it.
    ///   - reference: A dashed line across, e.g. the mean.
    ///   - line: A series drawn as a line over the bars, on its own axis at the right.
    static func bars(
        categories: [String],
        axisTitle: String,
        series: [Series],
        axis: (Double) -> ChartAxis,
        text: (Double) -> String,
        reference: Reference? = nil,
        line: (series: Series, axis: ChartAxis, text: (Double) -> String)? = nil,
        height: Double = 300
    ) -> String {
        let count = categories.count
        let totals = (0..<count).map { index in series.reduce(0) { $0 + finite($1.values[index]) } }
        let valueAxis = axis(max(totals.max() ?? 0, reference?.value ?? 0))
        let plotHeight = height - top - bottom
        let band = count == 0 ? 0 : min((width - left - right) / Double(count), 56)
        let start = left + ((width - left - right) - band * Double(count)) / 2
        func y(_ value: Double, _ axis: ChartAxis) -> Double {
            top + plotHeight * (1 - min(value, axis.top) / axis.top)
        }

        var svg = open(height: height, label: series.map(\.name).joined(separator: ", "))
        svg += grid(valueAxis, height: height)
        let barWidth = band >= 4 ? band * 0.8 : band
        for index in 0..<count {
            var base = 0.0
            let x = start + Double(index) * band + (band - barWidth) / 2
            for part in series {
                let value = finite(part.values[index])
                guard value > 0 else { continue }
                let upper = y(base + value, valueAxis)
                let lower = y(base, valueAxis)
                svg +=
                    "<rect x=\"\(f(x))\" y=\"\(f(upper))\" width=\"\(f(barWidth))\" height=\"\(f(max(0, lower - upper)))\" "
                svg += "fill=\"\(part.color)\"><title>\(HTML.escape(categories[index])): "
                svg += "\(HTML.escape(part.name)) \(HTML.escape(text(value)))</title></rect>\n"
                base += value
            }
        }
        if let reference {
            let level = y(reference.value, valueAxis)
            svg += "<line class=\"reference\" x1=\"\(f(left))\" x2=\"\(f(width - right))\" y1=\"\(f(level))\" "
            svg += "y2=\"\(f(level))\"><title>\(HTML.escape(reference.label))</title></line>\n"
            svg += "<text class=\"reference-label\" x=\"\(f(width - right - 4))\" y=\"\(f(level - 5))\" "
            svg += "text-anchor=\"end\">"
            svg += "\(HTML.escape(reference.label))</text>\n"
        }
        var legend = series.map { ($0.name, $0.color, false) }
        if let line {
            let points = (0..<count).compactMap { index -> (index: Int, x: Double, y: Double)? in
                let value = line.series.values[index]
                guard value.isFinite else { return nil }
                return (index, start + (Double(index) + 0.5) * band, y(value, line.axis))
            }
            svg += "<polyline fill=\"none\" stroke=\"\(line.series.color)\" stroke-width=\"2\" points=\""
            svg += points.map { "\(f($0.x)),\(f($0.y))" }.joined(separator: " ") + "\"/>\n"
            if count <= 80 {
                for point in points {
                    let value = line.series.values[point.index]
                    svg += "<circle cx=\"\(f(point.x))\" cy=\"\(f(point.y))\" r=\"3\" fill=\"\(line.series.color)\">"
                    svg += "<title>\(HTML.escape(categories[point.index])): \(HTML.escape(line.series.name)) "
                    svg += "\(HTML.escape(line.text(value)))</title></circle>\n"
                }
            }
            svg += rightAxis(line.axis, color: line.series.color, height: height)
            legend.append((line.series.name, line.series.color, true))
        }
        svg += xLabels(categories, start: start, band: band, height: height, title: axisTitle)
        svg += self.legend(legend)
        return svg + "</svg>\n"
    }

    /// Lines over categories, sharing one value axis; NaN values leave gaps.
    static func lines(
        categories: [String],
        axisTitle: String,
        series: [Series],
        axis: ChartAxis,
        text: (Double) -> String,
        height: Double = 260
    ) -> String {
        let count = categories.count
        let plotHeight = height - top - bottom
        let band = count == 0 ? 0 : min((width - left - right) / Double(count), 56)
        let start = left + ((width - left - right) - band * Double(count)) / 2
        var svg = open(height: height, label: series.map(\.name).joined(separator: ", "))
        svg += grid(axis, height: height)
        for part in series {
            var runs: [[String]] = [[]]
            for index in 0..<count {
                let value = part.values[index]
                guard value.isFinite else {
                    runs.append([])
                    continue
                }
                let x = start + (Double(index) + 0.5) * band
                let y = top + plotHeight * (1 - min(value, axis.top) / axis.top)
                runs[runs.count - 1].append("\(f(x)),\(f(y))")
                if count <= 80 {
                    svg += "<circle cx=\"\(f(x))\" cy=\"\(f(y))\" r=\"3\" fill=\"\(part.color)\"><title>"
                    svg += "\(HTML.escape(categories[index])): \(HTML.escape(part.name)) \(HTML.escape(text(value)))"
                    svg += "</title></circle>\n"
                }
            }
            for run in runs where run.count > 1 {
                svg += "<polyline fill=\"none\" stroke=\"\(part.color)\" stroke-width=\"2\" points=\""
                svg += run.joined(separator: " ") + "\"/>\n"
            }
        }
        svg += xLabels(categories, start: start, band: band, height: height, title: axisTitle)
        svg += legend(series.map { ($0.name, $0.color, true) })
        return svg + "</svg>\n"
    }

    /// One row per item: a light bar for the raw size with the stored size drawn over it, and a label.
    static func horizontalBars(
        rows: [(label: String, raw: Double, stored: Double, text: String)],
        rawColor: String,
        storedColor: String
    ) -> String {
        let rowHeight = 22.0
        let labelWidth = 230.0
        let textWidth = 150.0
        let height = top + rowHeight * Double(rows.count) + 30
        let axis = ChartAxis.bytes(maximum: rows.map { max($0.raw, $0.stored) }.max() ?? 0)
        let plotWidth = width - labelWidth - textWidth
        func x(_ value: Double) -> Double { labelWidth + plotWidth * min(value, axis.top) / axis.top }
        var svg = open(height: height, label: "raw and stored size per entry")
        for (tick, label) in zip(axis.ticks, axis.labels) {
            svg += "<line class=\"grid\" x1=\"\(f(x(tick)))\" x2=\"\(f(x(tick)))\" y1=\"\(f(top - 6))\" "
            svg += "y2=\"\(f(height - 24))\"/>\n"
            svg += "<text class=\"tick\" x=\"\(f(x(tick)))\" y=\"\(f(height - 8))\" text-anchor=\"middle\">"
            svg += "\(HTML.escape(label))</text>\n"
        }
        for (index, row) in rows.enumerated() {
            let y = top + Double(index) * rowHeight
            let shown = row.label.count > 34 ? "…" + row.label.suffix(33) : row.label
            svg += "<text x=\"\(f(labelWidth - 8))\" y=\"\(f(y + 14))\" text-anchor=\"end\"><title>"
            svg += "\(HTML.escape(row.label))</title>\(HTML.escape(String(shown)))</text>\n"
            svg += "<rect x=\"\(f(labelWidth))\" y=\"\(f(y + 3))\" width=\"\(f(x(row.raw) - labelWidth))\" "
            svg += "height=\"\(f(rowHeight - 6))\" fill=\"\(rawColor)\"><title>\(HTML.escape(row.label)): "
            svg += "\(HTML.escape(row.text))</title></rect>\n"
            svg += "<rect x=\"\(f(labelWidth))\" y=\"\(f(y + 3))\" width=\"\(f(x(row.stored) - labelWidth))\" "
            svg += "height=\"\(f(rowHeight - 6))\" fill=\"\(storedColor)\"><title>\(HTML.escape(row.label)): "
            svg += "\(HTML.escape(row.text))</title></rect>\n"
            svg +=
                "<text x=\"\(f(x(max(row.raw, row.stored)) + 6))\" y=\"\(f(y + 14))\">\(HTML.escape(row.text))</text>\n"
        }
        svg += legend([("raw", rawColor, false), ("stored", storedColor, false)])
        return svg + "</svg>\n"
    }

    // MARK: Parts

    private static func open(height: Double, label: String) -> String {
        "<svg class=\"chart\" viewBox=\"0 0 \(f(width)) \(f(height))\" role=\"img\" aria-label=\"\(HTML.escape(label))\">\n"
    }

    private static func grid(_ axis: ChartAxis, height: Double) -> String {
        let plotHeight = height - top - bottom
        var svg = ""
        for (tick, label) in zip(axis.ticks, axis.labels) {
            let y = top + plotHeight * (1 - tick / axis.top)
            svg += "<line class=\"grid\" x1=\"\(f(left))\" x2=\"\(f(width - right))\" y1=\"\(f(y))\" y2=\"\(f(y))\"/>\n"
            svg += "<text class=\"tick\" x=\"\(f(left - 6))\" y=\"\(f(y + 4))\" text-anchor=\"end\">"
            svg += "\(HTML.escape(label))</text>\n"
        }
        return svg
    }

    private static func rightAxis(_ axis: ChartAxis, color: String, height: Double) -> String {
        let plotHeight = height - top - bottom
        var svg = ""
        for (tick, label) in zip(axis.ticks, axis.labels) {
            let y = top + plotHeight * (1 - tick / axis.top)
            svg += "<text class=\"tick\" x=\"\(f(width - right + 6))\" y=\"\(f(y + 4))\" style=\"fill: \(color)\">"
            svg += "\(HTML.escape(label))</text>\n"
        }
        return svg
    }

    /// At most about 12 labels, evenly spaced, so that 1 or 5,000 categories both read well.
    private static func xLabels(
        _ categories: [String],
        start: Double,
        band: Double,
        height: Double,
        title: String
    ) -> String {
        let every = max(1, Int((Double(categories.count) / 12).rounded(.up)))
        var svg = "<line class=\"axis\" x1=\"\(f(left))\" x2=\"\(f(width - right))\" y1=\"\(f(height - bottom))\" "
        svg += "y2=\"\(f(height - bottom))\"/>\n"
        for (index, category) in categories.enumerated() where index % every == 0 {
            let x = start + (Double(index) + 0.5) * band
            svg += "<text class=\"tick\" x=\"\(f(x))\" y=\"\(f(height - bottom + 16))\" text-anchor=\"middle\">"
            svg += "\(HTML.escape(category))</text>\n"
        }
        svg += "<text class=\"axis-title\" x=\"\(f(left + (width - left - right) / 2))\" y=\"\(f(height - 6))\" "
        svg += "text-anchor=\"middle\">\(HTML.escape(title))</text>\n"
        return svg
    }

    private static func legend(_ items: [(name: String, color: String, isLine: Bool)]) -> String {
        var svg = ""
        var x = left
        for item in items {
            if item.isLine {
                svg += "<line x1=\"\(f(x))\" x2=\"\(f(x + 14))\" y1=\"11\" y2=\"11\" stroke=\"\(item.color)\" "
                svg += "stroke-width=\"3\"/>\n"
            } else {
                svg += "<rect x=\"\(f(x))\" y=\"5\" width=\"12\" height=\"12\" fill=\"\(item.color)\"/>\n"
            }
            svg += "<text x=\"\(f(x + 18))\" y=\"15\">\(HTML.escape(item.name))</text>\n"
            x += 30 + Double(item.name.count) * 6.5
        }
        return svg
    }

    private static func finite(_ value: Double) -> Double { value.isFinite ? value : 0 }

    /// A coordinate with at most two decimals, to keep the file small.
    private static func f(_ value: Double) -> String {
        let rounded = (value * 100).rounded() / 100
        guard rounded.isFinite else { return "0" }
        return rounded == rounded.rounded() && abs(rounded) < 1e15 ? String(Int(rounded)) : String(rounded)
    }
}
