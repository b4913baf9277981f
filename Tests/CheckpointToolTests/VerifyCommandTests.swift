import Checkpoint
import Foundation
import Testing

/// `ckpt verify`.
@Suite struct VerifyCommandTests {
    /// One object of `ckpt verify --json`.
    struct Outcome: Decodable {
        var step: UInt64
        var status: String
        var code: String?
        var message: String?
        var path: String?
    }

    @Test func goodCheckpointExitsZero() throws {
        try withTemporaryDirectory { directory in
            try makeCheckpoints(in: directory, steps: [1, 2])
            let result = try ckpt("verify", directory)
            #expect(result.status == 0, "\(result)")
            #expect(result.stdout.hasPrefix("step 2: ok"), "the newest is verified by default: \(result)")
            let outcomes = try decodeJSON([Outcome].self, try ckpt("verify", directory, "--step", "1", "--json"))
            #expect(outcomes.map(\.step) == [1])
            #expect(outcomes.map(\.status) == ["ok"])
            #expect(outcomes[0].code == nil)
        }
    }

    @Test func flippedByteExitsOneNamingFileAndEntry() throws {
        try withTemporaryDirectory { directory in
            try makeCheckpoints(in: directory, steps: [1])
            try flipMiddleByte(of: shardPath(directory, step: 1))
            let result = try ckpt("verify", directory)
            #expect(result.status == 1, "\(result)")
            #expect(result.stdout.contains("corrupt"))
            #expect(result.stdout.contains(CheckpointDirectory.shardFileName(rank: 0)), "names the file: \(result)")
            #expect(result.stdout.contains("temperature"), "names the entry: \(result)")
            #expect(result.errorLines.count == 1)
            #expect(result.errorLines.first?.hasPrefix("error: ") == true)
        }
    }

    @Test func flippedByteInJSON() throws {
        try withTemporaryDirectory { directory in
            try makeCheckpoints(in: directory, steps: [1])
            try flipMiddleByte(of: shardPath(directory, step: 1))
            let result = try ckpt("verify", directory, "--json")
            #expect(result.status == 1, "\(result)")
            let outcome = try #require(try decodeJSON([Outcome].self, result).first)
            #expect(outcome.status == "corrupt")
            #expect(outcome.code == "corruptData")
            #expect(outcome.path == shardPath(directory, step: 1))
            #expect(outcome.message?.contains("temperature") == true)
        }
    }

    @Test func allReportsEveryCheckpoint() throws {
        try withTemporaryDirectory { directory in
            try makeCheckpoints(in: directory, steps: [1, 2, 3])
            try flipMiddleByte(of: shardPath(directory, step: 2))
            let result = try ckpt("verify", directory, "--all", "--json")
            #expect(result.status == 1, "\(result)")
            let outcomes = try decodeJSON([Outcome].self, result)
            #expect(outcomes.map(\.step) == [1, 2, 3])
            #expect(outcomes.map(\.status) == ["ok", "corrupt", "ok"])
        }
    }

    @Test func missingShardIsCorruption() throws {
        try withTemporaryDirectory { directory in
            try makeCheckpoints(in: directory, steps: [1])
            try FileManager.default.removeItem(atPath: shardPath(directory, step: 1))
            let result = try ckpt("verify", directory)
            #expect(result.status == 1, "\(result)")
            #expect(result.stdout.contains("incompleteCheckpoint"))
        }
    }
}
