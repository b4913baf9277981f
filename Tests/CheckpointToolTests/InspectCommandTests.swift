import Checkpoint
import Foundation
import Testing

/// `ckpt inspect`.
@Suite struct InspectCommandTests {
    /// The parts of `ckpt inspect --json` the tests look at.
    struct Report: Decodable {
        struct Entry: Decodable {
            var name: String
            var type: String
            var scalar: String
            var shape: [Int]
            var rawBytes: Int
            var storedBytes: Int
            var filter: String
            var chunks: Int
        }

        struct Settings: Decodable {
            var chunkSize: Int
        }

        var step: UInt64
        var rankCount: Int
        var library: String
        var metadata: [String: String]
        var settings: Settings
        var rank: Int
        var entries: [Entry]
    }

    @Test func jsonShowsEntriesAndShapes() throws {
        try withTemporaryDirectory { directory in
            let manifests = try makeCheckpoints(in: directory, steps: [5, 6])
            let result = try ckpt("inspect", directory, "--json")
            #expect(result.status == 0, "\(result)")
            let report = try decodeJSON(Report.self, result)
            #expect(report.step == 6, "the newest by default")
            #expect(report.rankCount == 1)
            #expect(report.rank == 0)
            #expect(report.library == manifests[1].library)
            #expect(report.metadata["run"] == "tool-test")
            #expect(report.settings.chunkSize == 4096)
            let entries = Dictionary(uniqueKeysWithValues: report.entries.map { ($0.name, $0) })
            #expect(Set(entries.keys) == ["temperature", "time", "parameters"])
            let temperature = try #require(entries["temperature"])
            #expect(temperature.shape == [Simulation.rows, Simulation.columns])
            #expect(temperature.scalar == "float64")
            #expect(temperature.rawBytes == Simulation.rows * Simulation.columns * 8)
            #expect(temperature.chunks == 4, "16 KiB in 4 KiB chunks")
            #expect(entries["time"]?.shape == [])
            #expect(entries["parameters"]?.scalar == "json")
            #expect(entries["parameters"]?.type.hasSuffix("Parameters") == true)
            let recorded = manifests[1].shards[0].entries.map(\.name)
            #expect(report.entries.map(\.name) == recorded)
        }
    }

    @Test func stepSelectsTheCheckpoint() throws {
        try withTemporaryDirectory { directory in
            try makeCheckpoints(in: directory, steps: [5, 6])
            let report = try decodeJSON(Report.self, try ckpt("inspect", directory, "--step", "5", "--json"))
            #expect(report.step == 5)
        }
    }

    @Test func humanReportShowsManifestAndEntries() throws {
        try withTemporaryDirectory { directory in
            try makeCheckpoints(in: directory, steps: [5])
            let result = try ckpt("inspect", directory)
            #expect(result.status == 0, "\(result)")
            for text in [
                "checkpoint 5", "created", "settings", "timings", "run = tool-test", "NAME", "temperature", "64x32",
                "float64", "scalar", "json", "parameters",
            ] {
                #expect(result.stdout.contains(text), "missing '\(text)' in \(result)")
            }
        }
    }

    @Test func unknownRankExitsTwo() throws {
        try withTemporaryDirectory { directory in
            try makeCheckpoints(in: directory, steps: [5])
            let result = try ckpt("inspect", directory, "--rank", "3")
            #expect(result.status == 2, "\(result)")
            #expect(result.errorLines.count == 1)
            #expect(result.stderr.contains("no rank 3"))
        }
    }
}
