import Checkpoint
import Foundation
import Testing

/// `ckpt report`.
@Suite struct ReportCommandTests {
    /// `ckpt report --json`.
    struct Summary: Decodable {
        var path: String
        var bytes: Int
        var checkpoints: Int
        var unreadable: [UInt64]
        var firstStep: UInt64
        var lastStep: UInt64
        var charts: [String]
    }

    static let hostileMetadata = ["note": "<script>alert(1)</script>", "owner": "a&b \"quoted\" 'single'"]

    /// Checks what every report must be: self-contained, escaped, with well-formed SVG.
    static func checkPage(_ page: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        #expect(page.hasPrefix("<!DOCTYPE html>"), sourceLocation: sourceLocation)
        #expect(page.contains("<svg"), sourceLocation: sourceLocation)
        #expect(!page.contains("http://"), "no references to the network", sourceLocation: sourceLocation)
        #expect(!page.contains("https://"), "no references to the network", sourceLocation: sourceLocation)
        #expect(!page.lowercased().contains("<script"), "no scripts", sourceLocation: sourceLocation)
        #expect(!page.contains(" src="), "no external resources", sourceLocation: sourceLocation)
        #expect(!page.contains("<link"), "no external style sheets", sourceLocation: sourceLocation)
        #expect(!page.contains("url("), "no external fonts or images", sourceLocation: sourceLocation)
        #expect(page.hasSuffix("</html>\n"), sourceLocation: sourceLocation)
        let script = """
            import re, sys, xml.etree.ElementTree as tree
            page = open(sys.argv[1], encoding="utf-8").read()
            charts = re.findall(r"<svg.*?</svg>", page, re.S)
            for chart in charts: tree.fromstring(chart)
            print(len(charts))
            """
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("report-\(UUID().uuidString).html")
        try Data(page.utf8).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        switch try runPython(script, [file.path]) {
        case .unavailable(let reason):
            try toolUnavailable(
                "the well-formedness check of the SVG charts: \(reason)",
                sourceLocation: sourceLocation
            )
        case .output(let count):
            #expect((Int(count) ?? 0) >= 3, "every chart parses as XML: \(count)", sourceLocation: sourceLocation)
        }
    }

    @Test func oneCheckpointEscapesManifestText() throws {
        try withTemporaryDirectory { directory in
            try saveCheckpoints(in: directory, steps: [7], metadata: Self.hostileMetadata) { _ in MixedState() }
            let output = directory + "/report.html"
            let result = try ckpt("report", directory, "-o", output)
            #expect(result.status == 0, "\(result)")
            #expect(result.stdout.hasPrefix("wrote \(output)"), "\(result)")
            #expect(result.stdout.contains("1 checkpoint, step 7"), "\(result)")
            #expect(result.stderr.isEmpty, "\(result)")
            let page = String(decoding: try fileBytes(output), as: UTF8.self)
            try Self.checkPage(page)
            #expect(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"))
            #expect(page.contains("a&amp;b &quot;quoted&quot; &#39;single&#39;"))
            #expect(!page.contains("<script>"))
            for text in [
                "Time per checkpoint", "Size and compression per checkpoint", "Entries of the newest checkpoint",
                "Balance across ranks", "Commit time is not shown", "nested/bytes", "velocities",
            ] {
                #expect(page.contains(text), "missing '\(text)'")
            }
        }
    }

    @Test func fiftyCheckpoints() throws {
        try withTemporaryDirectory { directory in
            let steps = (1...50).map { Step($0 * 10) }
            try saveCheckpoints(in: directory, steps: steps) { step in
                var state = Simulation(seed: step.rawValue)
                state.temperature = Array(state.temperature.prefix(64 * (Int(step.rawValue) / 10)))
                return SizedSimulation(state: state)
            }
            let output = directory + "/report.html"
            let result = try ckpt("report", directory, "-o", output, "--json")
            #expect(result.status == 0, "\(result)")
            let summary = try decodeJSON(Summary.self, result)
            #expect(summary.path == output)
            #expect(summary.checkpoints == 50)
            #expect(summary.firstStep == 10)
            #expect(summary.lastStep == 500)
            #expect(summary.unreadable.isEmpty)
            #expect(summary.charts.count == 4)
            let file = try fileBytes(output)
            #expect(summary.bytes == file.count)
            let page = String(decoding: file, as: UTF8.self)
            try Self.checkPage(page)
            #expect(
                page.components(separatedBy: "<tr><td class=\"n\">").count - 1 == 50,
                "one table row per checkpoint"
            )
            #expect(page.contains("steps 10 to 500"))
        }
    }

    @Test func ranksAreCompared() throws {
        try withTemporaryDirectory { directory in
            for step: Step in [1, 2] {
                try saveRanks(in: directory, step: step, ranks: 3) { rank in
                    var state = NamedArrays()
                    state.doubles["field"] = Array(repeating: 1.5, count: 100 * (rank + 1))
                    return state
                }
            }
            let output = directory + "/report.html"
            let result = try ckpt("report", directory, "-o", output)
            #expect(result.status == 0, "\(result)")
            let page = String(decoding: try fileBytes(output), as: UTF8.self)
            try Self.checkPage(page)
            #expect(page.contains("Raw bytes per rank, step 2: max/mean 1.50x"), "ranks hold 100, 200 and 300 values")
            #expect(page.contains("rank 2"))
            #expect(page.contains("Imbalance per checkpoint"))
            let manifest = try CheckpointDirectory(path: directory).loadManifest(step: 2)
            if manifest.shards.allSatisfy({ $0.timings != nil }) {
                #expect(page.contains("Encode + write + sync time per rank"))
            }
        }
    }

    @Test func unreadableManifestIsListedNotFatal() throws {
        try withTemporaryDirectory { directory in
            try makeCheckpoints(in: directory, steps: [1, 2])
            let manifest = CheckpointDirectory(path: directory).path(for: 1) + "/" + Manifest.fileName
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: manifest))
            try handle.seekToEnd()
            try handle.write(contentsOf: Data(" ".utf8))
            try handle.close()
            let output = directory + "/report.html"
            let result = try ckpt("report", directory, "-o", output, "--json")
            #expect(result.status == 0, "\(result)")
            let summary = try decodeJSON(Summary.self, result)
            #expect(summary.unreadable == [1])
            #expect(summary.checkpoints == 2)
            let page = String(decoding: try fileBytes(output), as: UTF8.self)
            try Self.checkPage(page)
            #expect(page.contains("manifestInvalid"))
        }
    }

    @Test func existingOutputIsKeptUnlessForced() throws {
        try withTemporaryDirectory { directory in
            try makeCheckpoints(in: directory, steps: [1])
            let output = directory + "/report.html"
            try Data("old".utf8).write(to: URL(fileURLWithPath: output))
            let refused = try ckpt("report", directory, "-o", output)
            #expect(refused.status == 2, "\(refused)")
            #expect(refused.errorLines.count == 1, "one line: \(refused)")
            #expect(refused.stderr.contains("--force"))
            #expect(try fileBytes(output) == Array("old".utf8))
            let forced = try ckpt("report", directory, "-o", output, "--force")
            #expect(forced.status == 0, "\(forced)")
            try Self.checkPage(String(decoding: try fileBytes(output), as: UTF8.self))
        }
    }

    @Test func noCheckpointsExitsTwo() throws {
        try withTemporaryDirectory { directory in
            let output = directory + "/report.html"
            let result = try ckpt("report", directory, "-o", output)
            #expect(result.status == 2, "\(result)")
            #expect(result.errorLines.count == 1, "one line: \(result)")
            #expect(result.stderr.contains("no checkpoints"))
            #expect(!FileManager.default.fileExists(atPath: output))
        }
    }
}

/// ``Simulation`` with a field of any length, so that checkpoints differ in size.
struct SizedSimulation: Checkpointable {
    var state: Simulation

    func save(to writer: inout SnapshotWriter) throws {
        try writer.write(state.temperature, as: "temperature")
        try writer.write(value: state.time, as: "time")
        try writer.encode(state.parameters, as: "parameters")
    }

    init(state: Simulation) { self.state = state }

    init(from reader: SnapshotReader) throws { state = try Simulation(from: reader) }
}
