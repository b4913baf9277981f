import Foundation
import Testing

/// The heat example with XOR sets (`--xor-set`): a lost node's node-local files are rebuilt from
/// its set, and the run finishes with the uninterrupted checksum.
@Suite("Heat example with XOR redundancy sets")
struct HeatXORTests {
    static let arguments = ["--grid", "48", "--checkpoint-every", "5", "--flush-every", "3", "--nodes", "3"]

    @Test("Losing one node's node-local files: rebuilt from the XOR set, resumed from the newest checkpoint")
    func lostNode() throws {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("heat-xor-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        let shared = scratch.path + "/shared"
        let local = scratch.path + "/local"
        let options = ["--dir", shared, "--local-dir", local, "--xor-set", "3"]
        let expected = try #require(try heat(["--ranks", "6", "--steps", "40", "--no-checkpoints"]).last)
        let first = try heat(["--ranks", "6", "--steps", "20"] + options)
        #expect(first.first == "fresh-start")
        let parity = local + "/rank-00001/ckpt-000000000020/xor-00001.parity"
        #expect(FileManager.default.fileExists(atPath: parity))
        // Node 1 of 3 holds ranks 2 and 3 (rank r on node r * 3 / 6); the sets are {0, 2, 4} and {1, 3, 5}.
        for rank in ["rank-00002", "rank-00003"] { try FileManager.default.removeItem(atPath: local + "/" + rank) }
        let second = try heat(["--ranks", "6", "--steps", "40"] + options)
        #expect(second.first == "resumed-from: 20", "rebuilt from the XOR sets, not the flush at 15")
        #expect(second.last == expected)
    }

    @Test(
        "--xor-set is validated",
        arguments: [
            (["--xor-set", "3"], "--xor-set needs --local-dir"),
            (["--local-dir", "/tmp/x", "--xor-set", "2"], "--xor-set must be at least 3"),
            (["--local-dir", "/tmp/x", "--xor-set", "7"], "at most the number of ranks"),
            (["--local-dir", "/tmp/x", "--xor-set", "4", "--nodes", "3"], "pass --nodes 4 or more"),
        ]
    )
    func validation(options: [String], message: String) throws {
        let result = try runProgram(try HeatTests.heat(), ["--ranks", "6", "--steps", "1"] + options)
        #expect(result.status != 0)
        #expect(result.stderr.contains(message), "\(result.stderr)")
    }

    private func heat(_ arguments: [String]) throws -> [String] {
        try runExample(try HeatTests.heat(), arguments + Self.arguments)
    }
}
