import Foundation
import Testing

@testable import Checkpoint

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

    /// An incremental (2.0) checkpoint whose chunk was changed and whose stored-chunk digest, index
    /// digest and manifest were re-sealed: only the digest of the chunk's raw bytes tells. The
    /// library's verification reports it, and `ckpt verify` reports it the same way.
    @Test func rawDigestMismatchIsReportedAsTheLibraryReportsIt() throws {
        try withTemporaryDirectory { directory in
            do {
                var configuration = Checkpointer.Configuration(
                    compression: .none,
                    threads: 2,
                    chunkSize: 4096,
                    filter: .none
                )
                configuration.incremental = .on(fullEvery: 3)
                let checkpointer = try Checkpointer(directory: directory, configuration: configuration)
                try checkpointer.save(Simulation(seed: 1), step: 1)
            }
            try changeChunkResealing(directory: directory, step: 1, entry: "temperature")
            let library = try #require(throws: CheckpointError.self) {
                try CheckpointDirectory(path: directory).verify(step: 1)
            }
            #expect(library.code == .corruptData)
            #expect(library.message.contains("decodes to bytes whose SHA-256 differs"), "\(library)")

            let result = try ckpt("verify", directory, "--json")
            #expect(result.status == 1, "\(result)")
            let outcome = try #require(try decodeJSON([Outcome].self, result).first)
            #expect(outcome.status == "corrupt")
            #expect(outcome.code == library.code.description)
            #expect(outcome.message == library.message)
            #expect(outcome.path == library.path)
            let human = try ckpt("verify", directory)
            #expect(human.status == 1, "\(human)")
            #expect(human.stdout.hasPrefix("step 1: corrupt: corruptData: entry 'temperature'"), "\(human)")
        }
    }

    /// Inverts the first byte of `entry`'s first chunk in rank 0's (2.x, unfiltered, uncompressed)
    /// shard, then recomputes that chunk's stored digest, the index digest in the footer, and the
    /// manifest's record of it and checksum, so that every check but the chunk's raw digest passes.
    func changeChunkResealing(directory: String, step: Step, entry name: String) throws {
        let path = shardPath(directory, step: step)
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let footerStart = bytes.count - ShardFormat.footerSize
        var footer = ByteCursor(Array(bytes[footerStart...]), path: path)
        let indexStart = Int(try footer.u64())
        var index = try ShardIndex(
            decoding: Array(bytes[indexStart..<footerStart]),
            dataRange: ShardFormat.headerSize..<indexStart,
            path: path,
            version: ShardFormat.incrementalVersion
        )
        let entry = try #require(index.entries.firstIndex { $0.name == name })
        let chunk = try #require(index.entries[entry].chunks.first)
        try #require(chunk.codec == .raw && chunk.base == nil && chunk.rawDigest != nil)
        bytes[chunk.offset] ^= 0xFF
        index.entries[entry].chunks[0].digest = sha256(Array(bytes[chunk.offset..<chunk.offset + chunk.storedSize]))
        let indexBytes = index.encoded()
        try #require(indexBytes.count == footerStart - indexStart)
        let digest = sha256(indexBytes)
        bytes.replaceSubrange(indexStart..<footerStart, with: indexBytes)
        bytes.replaceSubrange(footerStart + 16..<footerStart + 48, with: digest)
        try Data(bytes).write(to: URL(fileURLWithPath: path))

        let checkpoint = CheckpointDirectory(path: directory).path(for: step)
        let manifestURL = URL(fileURLWithPath: checkpoint + "/" + Manifest.fileName)
        var manifest = try JSONDecoder().decode(Manifest.self, from: Data(contentsOf: manifestURL))
        manifest.shards[0].indexSHA256 = hexString(digest)
        let encoded = try manifest.encoded()
        try Data(encoded).write(to: manifestURL)
        try Data((hexString(sha256(encoded)) + "  " + Manifest.fileName + "\n").utf8)
            .write(to: URL(fileURLWithPath: checkpoint + "/" + Manifest.checksumFileName))
    }
}
