import Foundation
import Testing

/// `heat --aggregate` writes one file per node per checkpoint; `ckpt` reads, checks, compares and
/// exports such checkpoints as it does a file per rank, and a restart on other ranks continues exactly.
@Suite("ckpt and heat with aggregated files")
struct AggregatedToolTests {
    static let arguments = ["--grid", "48", "--checkpoint-every", "5"]

    @Test("4 ranks on 2 nodes: 2 files per checkpoint; ckpt list, inspect, verify, diff, export, report read them")
    func toolReadsAggregatedCheckpoints() throws {
        try withTemporaryDirectory { directory in
            let expected = try #require(try heat(["--ranks", "4", "--steps", "60", "--no-checkpoints"]).last)
            let first = try heat(["--ranks", "4", "--nodes", "2", "--aggregate", "--steps", "25", "--dir", directory])
            #expect(first.first == "fresh-start")
            let names = try FileManager.default.contentsOfDirectory(atPath: directory + "/ckpt-000000000025").sorted()
            #expect(names == ["manifest.json", "manifest.json.sha256", "node-00000.agg", "node-00001.agg"])

            let list = try ckpt("list", directory)
            #expect(list.status == 0 && list.stdout.contains("25"), "\(list)")
            let inspect = try ckpt("inspect", directory, "--rank", "3")
            #expect(inspect.status == 0 && inspect.stdout.contains("rank 3: node-00001.agg at byte "), "\(inspect)")
            let verify = try ckpt("verify", directory)
            #expect(verify.status == 0, "\(verify)")
            let diff = try ckpt("diff", directory, "--step", "20", "--step", "25")
            #expect(diff.status == 0 && diff.stdout.contains("changed"), "\(diff)")
            let export = try ckpt("export", directory, "-o", directory + "/out.zarr")
            #expect(export.status == 0, "\(export)")
            let report = try ckpt("report", directory, "-o", directory + "/report.html")
            #expect(report.status == 0, "\(report)")

            // 4 ranks on 2 nodes → 3 ranks on 3 nodes, still aggregated: the uninterrupted checksum.
            let second = try heat(["--ranks", "3", "--nodes", "3", "--aggregate", "--steps", "60", "--dir", directory])
            #expect(second.first == "resumed-from: 25")
            #expect(second.last == expected)
            let last = try FileManager.default.contentsOfDirectory(atPath: directory + "/ckpt-000000000060")
            #expect(last.filter { $0.hasSuffix(".agg") }.count == 3)
        }
    }

    @Test("A flipped byte in a node's file fails ckpt verify and names the file; a restart falls back")
    func damageIsDetected() throws {
        try withTemporaryDirectory { directory in
            _ = try heat(["--ranks", "4", "--nodes", "2", "--aggregate", "--steps", "25", "--dir", directory])
            try flipMiddleByte(of: directory + "/ckpt-000000000025/node-00001.agg")
            let verify = try ckpt("verify", directory)
            #expect(verify.status != 0, "\(verify)")
            #expect(verify.stdout.contains("node-00001.agg") || verify.stderr.contains("node-00001.agg"), "\(verify)")
            let resumed = try heat(["--ranks", "4", "--nodes", "2", "--aggregate", "--steps", "30", "--dir", directory])
            #expect(resumed.first == "resumed-from: 20")
        }
    }

    private func heat(_ arguments: [String]) throws -> [String] {
        try runExample(try HeatTests.heat(), arguments + Self.arguments)
    }
}
