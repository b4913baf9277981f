import Foundation

/// A one-line progress bar on standard error, drawn only when standard error is a terminal.
///
/// ```
/// verifying step 1200  [##########··········]  52%  1.21 GiB / 2.33 GiB
/// ```
///
/// When standard error is a file or a pipe (scripts, CI, tests) nothing is written at all, so
/// the tool's output stays clean. Redraws are limited to about ten a second; ``finish()`` erases
/// the line so that results printed afterwards start on a clean line.
final class ProgressBar {
    /// What the counts are: bytes are shown as sizes, items as plain numbers.
    enum Unit {
        case bytes
        case items
    }

    private let unit: Unit
    private let enabled: Bool
    private var label: String
    private var total: Int
    private var completed = 0
    private var lastDraw: UInt64 = 0
    private var drawnWidth = 0

    /// Whether progress is shown: standard error is a terminal.
    static var isShown: Bool { isatty(2) != 0 }

    /// Starts a bar (drawing it at once when shown).
    /// - Parameters:
    ///   - label: What is happening, e.g. `verifying step 12`.
    ///   - total: The amount of work; 0 when unknown (the bar then shows only the count).
    ///   - unit: How to show the counts.
    init(_ label: String, total: Int, unit: Unit = .bytes) {
        self.label = label
        self.total = max(0, total)
        self.unit = unit
        enabled = Self.isShown
        draw(force: true)
    }

    /// Changes what the bar says is happening.
    func relabel(_ label: String) {
        self.label = label
        draw(force: true)
    }

    /// Adds `amount` to the work done.
    func advance(by amount: Int = 1) {
        completed += max(0, amount)
        draw(force: false)
    }

    /// Adds to the expected total (work discovered on the way).
    func expand(by amount: Int) {
        total += max(0, amount)
        draw(force: false)
    }

    /// Erases the bar.
    func finish() {
        guard enabled, drawnWidth > 0 else { return }
        write("\r" + String(repeating: " ", count: drawnWidth) + "\r")
        drawnWidth = 0
    }

    /// The bar's text for the current state, without carriage returns.
    var text: String {
        let width = 20
        let count = unit == .bytes ? Formatting.bytes(completed) : String(completed)
        guard total > 0 else { return "\(label)  \(count)" }
        let fraction = min(1, Double(completed) / Double(total))
        let filled = Int((fraction * Double(width)).rounded(.down))
        let bar = String(repeating: "#", count: filled) + String(repeating: "·", count: width - filled)
        let percent = String(format: "%3d%%", Int((fraction * 100).rounded(.down)))
        let of = unit == .bytes ? Formatting.bytes(total) : String(total)
        return "\(Self.shortened(label, to: 36))  [\(bar)] \(percent)  \(count) / \(of)"
    }

    private func draw(force: Bool) {
        guard enabled else { return }
        let now = DispatchTime.now().uptimeNanoseconds
        guard force || completed >= total || now - lastDraw >= 100_000_000 else { return }
        lastDraw = now
        let line = text
        let padding = String(repeating: " ", count: max(0, drawnWidth - line.count))
        write("\r" + line + padding)
        drawnWidth = line.count
    }

    private func write(_ text: String) {
        FileHandle.standardError.write(Data(text.utf8))
    }

    private static func shortened(_ text: String, to length: Int) -> String {
        text.count <= length ? text : String(text.prefix(length - 1)) + "…"
    }
}
