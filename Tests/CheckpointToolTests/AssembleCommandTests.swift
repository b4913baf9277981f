import Checkpoint
import Foundation
import Testing

/// `ckpt extract --assemble`: the global array of a distributed entry, from every rank's block.
@Suite struct AssembleCommandTests {
    typealias ParsedNumpy = ExtractCommandTests.ParsedNumpy

    @Test func assemblesOneAndTwoDimensionalBlocks() throws {
        try withTemporaryDirectory { directory in
            try saveDistributed(in: directory, step: 7)
            for (entry, shape, descriptor, expected) in [
                ("temperature", [40], "<f8", littleEndianBytes(DistributedState.globalTemperature)),
                ("fields/pressure", [9, 7], "<f4", littleEndianBytes(DistributedState.globalPressure)),
            ] {
                let output = directory + "/global.npy"
                let result = try ckpt("extract", directory, "--entry", entry, "--assemble", "-o", output, "--force")
                #expect(result.status == 0, "\(result)")
                #expect(result.stdout.contains("assembled from 4 ranks"), "\(result)")
                let parsed = try ParsedNumpy(try fileBytes(output))
                #expect(parsed.dictionary.contains("'descr': '\(descriptor)'"), "\(parsed.dictionary)")
                #expect(parsed.shape == shape)
                #expect(parsed.data == expected, "\(entry)")
            }
        }
    }

    @Test func rawFormatAndJSONSummary() throws {
        try withTemporaryDirectory { directory in
            try saveDistributed(in: directory, step: 7)
            let output = directory + "/temperature.bin"
            let result = try ckpt(
                "extract",
                directory,
                "--entry",
                "temperature",
                "--assemble",
                "--format",
                "raw",
                "-o",
                output,
                "--json"
            )
            #expect(result.status == 0, "\(result)")
            #expect(try fileBytes(output) == littleEndianBytes(DistributedState.globalTemperature))
            let summary = try #require(
                try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
            )
            #expect(summary["assembledFrom"] as? Int == 4)
            #expect(summary["rank"] is NSNull)
            #expect(summary["shape"] as? [Int] == [40])
        }
    }

    @Test func entryWithoutBlockLayoutIsRefused() throws {
        try withTemporaryDirectory { directory in
            try saveDistributed(in: directory, step: 7)
            let result = try ckpt("extract", directory, "--entry", "counts", "--assemble", "-o", directory + "/c.npy")
            #expect(result.status == 2, "\(result)")
            #expect(result.stderr.contains("has no block layout"), "\(result)")
            #expect(result.stderr.contains("--rank R instead of --assemble"), "\(result)")
            #expect(!FileManager.default.fileExists(atPath: directory + "/c.npy"))

            let missing = try ckpt("extract", directory, "--entry", "nothing", "--assemble", "-o", directory + "/n.npy")
            #expect(missing.status == 2, "\(missing)")
            #expect(missing.stderr.contains("no entry 'nothing'"), "\(missing)")

            let both = try ckpt("extract", directory, "--entry", "temperature", "--assemble", "--rank", "1", "-o", "x")
            #expect(both.status == 2, "\(both)")
            #expect(both.stderr.contains("leave out --rank"), "\(both)")
        }
    }

    /// Blocks that the library would never save, written into the manifest: rank 3's block of
    /// `temperature` (rows 30..<40 of 40) edited.
    @Test(arguments: [
        (["globalShape": [44], "offset": [30], "extent": [10]], "different global shapes"),
        (["globalShape": [40], "offset": [25], "extent": [10]], "overlap"),
        (nil, "without a block layout"),
    ])
    func inconsistentRanksAreRefused(block: [String: [Int]]?, message: String) throws {
        try withTemporaryDirectory { directory in
            try saveDistributed(in: directory, step: 7)
            try editBlock(in: directory, step: 7, rank: 3, entry: "temperature", block)
            let output = directory + "/t.npy"
            let result = try ckpt("extract", directory, "--entry", "temperature", "--assemble", "-o", output)
            #expect(result.status == 3, "layoutMismatch: \(result)")
            #expect(result.stderr.contains(message), "\(result)")
            #expect(!FileManager.default.fileExists(atPath: output))
        }
    }

    @Test func missingRankIsRefused() throws {
        try withTemporaryDirectory { directory in
            try saveDistributed(in: directory, step: 7)
            let shard =
                CheckpointDirectory(path: directory).path(for: 7) + "/" + CheckpointDirectory.shardFileName(rank: 2)
            try FileManager.default.removeItem(atPath: shard)
            let output = directory + "/t.npy"
            let result = try ckpt("extract", directory, "--entry", "temperature", "--assemble", "-o", output)
            #expect(result.status != 0, "\(result)")
            #expect(result.stderr.contains(CheckpointDirectory.shardFileName(rank: 2)), "\(result)")
            #expect(!FileManager.default.fileExists(atPath: output))
        }
    }
}
