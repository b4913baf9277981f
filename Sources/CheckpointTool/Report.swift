import ArgumentParser
import Checkpoint
import Foundation

/// `ckpt report DIR -o report.html`: one self-contained HTML page of charts over the checkpoint history.
struct Report: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Write an HTML page with charts over a directory's checkpoint history.",
        discussion: """
            Reads every manifest (not the shard data) and writes one self-contained HTML file, with inline CSS \
            and SVG and nothing loaded from elsewhere: time per checkpoint by phase, stored size and compression \
            ratio per checkpoint, size and ratio per entry of the newest checkpoint, the balance across ranks, \
            and a table of all checkpoints. Checkpoints whose manifest does not load are listed in the page and \
            left out of the charts. An existing FILE is only replaced with --force.
            """
    )

    @Argument(help: "The checkpoint directory (the one holding ckpt-<step> folders).")
    var directory: String

    @OptionGroup var file: OutputFileOptions

    @OptionGroup var output: OutputOptions

    func run() throws {
        try file.checkWritable()
        let checkpoints = CheckpointDirectory(path: directory)
        let steps = try checkpoints.selectSteps(requested: nil, all: true)
        let progress = ProgressBar("reading manifests", total: steps.count, unit: .items)
        defer { progress.finish() }
        var manifests: [Manifest] = []
        var failures: [HTMLReport.Failure] = []
        for step in steps {
            do {
                manifests.append(try checkpoints.loadManifest(step: step))
            } catch {
                failures.append(.init(step: step, error: error))
            }
            progress.advance()
        }
        progress.relabel("writing \(file.path)")
        let report = HTMLReport(
            directory: directory,
            manifests: manifests,
            failures: failures,
            generatedAt: ISO8601DateFormatter().string(from: Date())
        )
        let page = Array(report.render().utf8)
        try OutputFile.write([page], to: file.path, force: file.force)
        progress.finish()

        let summary = ReportSummary(
            path: file.path,
            bytes: page.count,
            checkpoints: steps.count,
            unreadable: failures.map(\.step.rawValue),
            firstStep: steps[0].rawValue,
            lastStep: steps[steps.count - 1].rawValue,
            charts: HTMLReport.chartTitles
        )
        if output.json {
            try Console.json(summary)
        } else {
            Console.line(summary.line)
        }
    }
}

/// What `ckpt report` wrote.
struct ReportSummary: Encodable {
    var path: String
    /// The page's size.
    var bytes: Int
    /// Checkpoints in the directory (readable or not).
    var checkpoints: Int
    /// Steps whose manifest did not load (listed in the page, left out of the charts).
    var unreadable: [UInt64]
    var firstStep: UInt64
    var lastStep: UInt64
    /// The chart sections, in page order.
    var charts: [String]

    /// `wrote report.html (48.2 KiB): 50 checkpoints, steps 1 to 50`.
    var line: String {
        let range = firstStep == lastStep ? "step \(firstStep)" : "steps \(firstStep) to \(lastStep)"
        var text =
            "wrote \(path) (\(Formatting.bytes(bytes))): \(checkpoints) checkpoint\(checkpoints == 1 ? "" : "s"), "
            + range
        if !unreadable.isEmpty { text += "; \(unreadable.count) could not be read (listed in the page)" }
        return text
    }
}
