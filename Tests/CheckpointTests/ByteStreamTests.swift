import Foundation
import Testing

@testable import Checkpoint

/// The shard format reads from byte sources and writes into byte sinks: memory works as files do.
@Suite("Shards through byte sources and sinks")
struct ByteStreamTests {
    /// Bytes appended in memory; records whether they were synced.
    final class MemoryByteSink: ByteSink {
        let path = "memory sink"
        private let state = Locked((bytes: [UInt8](), synced: false, closed: false))

        var bytes: [UInt8] { state.withLock { $0.bytes } }
        var synced: Bool { state.withLock { $0.synced } }

        func writeAll(_ bytes: UnsafeRawBufferPointer) {
            state.withLock {
                $0.bytes.append(contentsOf: bytes)
                $0.synced = false
            }
        }

        func sync() { state.withLock { $0.synced = true } }

        func close() { state.withLock { $0.closed = true } }
    }

    static func options(incremental: Bool = false) -> EncodingOptions {
        EncodingOptions(
            compressionLevel: 1,
            threads: 2,
            chunkSize: 4096,
            filter: .automatic,
            permissions: 0o600,
            incremental: incremental
        )
    }

    @Test("A shard written into memory is the file's bytes, and reads back from memory")
    func writeIntoMemoryAndReadBack() throws {
        let field = smoothField(5000)
        let counts = (0..<3000).map { UInt32($0 * 7) }
        var writer = SnapshotWriter()
        try writer.write(field, as: "field")
        try writer.write(counts, as: "counts")
        let sink = MemoryByteSink()
        let summary = try ShardWriter.write(writer.entries, to: sink, options: Self.options())
        #expect(sink.synced)
        #expect(summary.fileSize == sink.bytes.count)
        try withTemporaryDirectory { directory in
            let path = directory + "/rank-00000.snap"
            let fromFile = try ShardWriter.write(writer.entries, to: path, options: Self.options())
            #expect(try readFile(path) == sink.bytes)
            #expect(fromFile.indexDigest == summary.indexDigest)
        }

        let reader = try ShardReader(source: MemoryByteSource(sink.bytes, name: "shard"), baseSource: nil)
        #expect(reader.path == "shard")
        #expect(reader.fileSize == sink.bytes.count)
        #expect(reader.indexDigest == summary.indexDigest)
        try reader.verifyAll(threads: 2)
        var decoded = [Double](repeating: 0, count: field.count)
        try decoded.withUnsafeMutableBytes { bytes in
            try reader.decode(try reader.record("field"), into: bytes, threads: 2)
        }
        #expect(decoded == field)
    }

    @Test("An incremental shard reads its base from a second memory source; a missing one is reported as for files")
    func incrementalPairFromMemory() throws {
        try withTemporaryDirectory { directory in
            var configuration = testConfiguration()
            configuration.incremental = .on(fullEvery: 5)
            var state = ChunkedState(chunks: 8, seed: 3)
            do {
                let checkpointer = try Checkpointer(directory: directory, configuration: configuration)
                try checkpointer.save(state, step: 1)
                state.counter += 1
                state.field[0] += 1
                try checkpointer.save(state, step: 2)
            }
            let base = MemoryByteSource(try readFile(shardPath(directory, step: 1)), name: "base")
            let shard = try readFile(shardPath(directory, step: 2))
            let reader = try ShardReader(source: MemoryByteSource(shard, name: "shard")) { step in
                #expect(step == 1)
                return base
            }
            #expect(reader.baseSteps == [1])
            try reader.verifyAll(threads: 2)
            var field = [Double](repeating: 0, count: state.field.count)
            try field.withUnsafeMutableBytes { bytes in
                try reader.decode(try reader.record("field"), into: bytes, threads: 2)
            }
            #expect(field == state.field)

            // A base that cannot be found: the same error as when its file is missing.
            let missing = try #require(throws: CheckpointError.self) {
                try ShardReader(source: MemoryByteSource(shard, name: "shard")) { (_) throws(CheckpointError) in
                    throw CheckpointError(.notFound, "no such shard", path: "elsewhere")
                }
            }
            #expect(missing.code == .incompleteCheckpoint)
            #expect(missing.path == "elsewhere")
            try FileManager.default.removeItem(atPath: CheckpointDirectory(path: directory).path(for: 1))
            let fromFiles = try #require(throws: CheckpointError.self) {
                try ShardReader(path: shardPath(directory, step: 2))
            }
            #expect(fromFiles.code == .incompleteCheckpoint)
            #expect(fromFiles.message == missing.message)
            #expect(fromFiles.path == shardPath(directory, step: 1))

            let none = try #require(throws: CheckpointError.self) {
                try ShardReader(source: MemoryByteSource(shard, name: "shard"), baseSource: nil)
            }
            #expect(none.code == .incompleteCheckpoint)
        }
    }

    @Test("Verification reports every rank's shard, and progress adds up to the bytes checked")
    func verificationPerRank() throws {
        try withTemporaryDirectory { directory in
            _ = try LocalGroup.run(ranks: 2, timeout: 60) { communicator in
                let checkpointer = try Checkpointer(
                    directory: directory,
                    communicator: communicator,
                    configuration: testConfiguration()
                )
                try checkpointer.save(ArrayState(smoothField(4000, seed: UInt64(communicator.rank))), step: 1)
            }
            let checkpoints = CheckpointDirectory(path: directory)
            var progress = 0
            let intact = checkpoints.verification(of: 1, threads: 2) { progress += $0 }
            let manifest = try #require(intact.manifest)
            #expect(intact.isIntact)
            #expect(intact.shards.map(\.rank) == [0, 1])
            #expect(intact.shards.allSatisfy { $0.problem == nil })
            #expect(intact.checkedBytes == manifest.storedBytes)
            #expect(progress == manifest.storedBytes)

            let second = checkpoints.path(for: 1) + "/" + CheckpointDirectory.shardFileName(rank: 1)
            var bytes = try readFile(second)
            bytes[bytes.count / 2] ^= 0xFF
            try writeFile(second, bytes)
            let damaged = checkpoints.verification(of: 1, threads: 2)
            #expect(!damaged.isIntact)
            #expect(damaged.shards[0].problem == nil)
            #expect(damaged.shards[0].checkedBytes == manifest.shards[0].fileBytes)
            #expect(damaged.shards[1].path == second)
            let problem = try #require(damaged.shards[1].problem)
            #expect(problem.code == .corruptData)
            #expect(damaged.problem?.message == problem.message)
            let thrown = try #require(throws: CheckpointError.self) { try checkpoints.verify(step: 1) }
            #expect(thrown.message == problem.message)
            #expect(thrown.path == second)

            try FileManager.default.removeItem(atPath: checkpoints.path(for: 1) + "/" + Manifest.fileName)
            let unreadable = checkpoints.verification(of: 1)
            #expect(unreadable.manifest == nil)
            #expect(unreadable.shards.isEmpty)
            #expect(unreadable.problem?.code == .manifestInvalid)
        }
    }
}
