import Foundation
import Testing

@testable import Checkpoint

/// Rewrites a committed checkpoint as someone who can write its directory would: the shard's index
/// edited, its footer and the manifest (sizes, index digest, checksum) recomputed to match, so only
/// the reader's own rules stand between the forgery and the reader.
enum Forgery {
    static func shardPath(_ directory: String, step: Step, rank: Int = 0) -> String {
        directory + "/" + CheckpointLayout.committedName(step) + "/" + CheckpointLayout.shardFileName(rank: rank)
    }

    /// Replaces the index of `step`'s shard of `rank` with `edit`'s result.
    /// - Parameter updatesRawBytes: Whether the manifest's `rawBytes` follows the new index (a
    ///   careful forger), or keeps what the writer recorded.
    static func rewriteIndex(
        _ directory: String,
        step: Step,
        rank: Int = 0,
        updatesRawBytes: Bool = true,
        _ edit: (inout ShardIndex) throws -> Void
    ) throws {
        let path = shardPath(directory, step: step, rank: rank)
        let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
        var index = try ShardReader(path: path).index
        try edit(&index)
        let footerStart = bytes.count - ShardFormat.footerSize
        var cursor = ByteCursor(Array(bytes[footerStart..<footerStart + 8]), path: path)
        let indexStart = Int(try cursor.u64())
        let indexBytes = index.encoded()
        var footer = ByteBuilder()
        footer.append(UInt64(indexStart))
        footer.append(UInt64(indexBytes.count))
        footer.append(contentsOf: sha256(indexBytes))
        footer.append(contentsOf: ShardFormat.footerMagic)
        let shard = Array(bytes[..<indexStart]) + indexBytes + footer.bytes
        try Data(shard).write(to: URL(fileURLWithPath: path))
        try rewriteManifest(directory, step: step) { manifest in
            manifest.shards[rank].fileBytes = shard.count
            manifest.shards[rank].indexSHA256 = hexString(sha256(indexBytes))
            if updatesRawBytes {
                manifest.shards[rank].rawBytes = index.entries.reduce(0) { $0 + $1.rawSize }
            }
        }
    }

    /// Edits `step`'s manifest and writes it back with a matching checksum file.
    static func rewriteManifest(_ directory: String, step: Step, _ edit: (inout Manifest) throws -> Void) throws {
        let folder = directory + "/" + CheckpointLayout.committedName(step) + "/"
        var manifest = try JSONDecoder().decode(
            Manifest.self,
            from: Data(contentsOf: URL(fileURLWithPath: folder + Manifest.fileName))
        )
        try edit(&manifest)
        try writeManifest(manifest.encoded(), to: folder)
    }

    /// Writes manifest bytes and their checksum line into a checkpoint folder.
    static func writeManifest(_ bytes: [UInt8], to folder: String) throws {
        try Data(bytes).write(to: URL(fileURLWithPath: folder + Manifest.fileName))
        try Data((hexString(sha256(bytes)) + "  " + Manifest.fileName + "\n").utf8)
            .write(to: URL(fileURLWithPath: folder + Manifest.checksumFileName))
    }
}

/// Issue 12, items 3 and 4 and the memory bound: a reader allocates no more than the state the
/// manifest declares and the destination accepts, and refuses larger claims with an error.
@Suite("Bounded reading of hostile checkpoints")
struct BoundedReadingTests {
    /// Bytes that zstd shrinks only a little (7 random bits each): one zstd chunk of `count` bytes
    /// stores nearly `count` bytes.
    static func sevenBitNoise(_ count: Int, seed: UInt64 = 12) -> [UInt8] {
        var random = SplitMix64(seed: seed)
        return (0..<count).map { _ in UInt8(truncatingIfNeeded: random.next() & 0x7F) }
    }

    /// An incremental checkpoint at step 2 whose `values` chunks all live in step 1's shard.
    static func makeIncremental(_ directory: String, values: [UInt8], chunkSize: Int = 4096) throws {
        var configuration = testConfiguration(keepLast: 5, threads: 1)
        configuration.chunkSize = chunkSize
        configuration.incremental = .on(fullEvery: 10)
        let checkpointer = try Checkpointer(directory: directory, configuration: configuration)
        try checkpointer.save(ArrayState(values), step: 1)
        try checkpointer.save(ArrayState(values), step: 2)
    }

    @Test("several chunks stored once in a base shard still read (the writer reuses a stored chunk)")
    func identicalBaseReferencesRead() throws {
        try withTemporaryDirectory { directory in
            let values = [UInt8](repeating: 9, count: 40_000)
            try Self.makeIncremental(directory, values: values)
            let index = try ShardReader(path: Forgery.shardPath(directory, step: 2)).index
            let references = index.entries[0].chunks.filter { $0.base != nil }
            #expect(references.count > 2)
            #expect(Set(references.map(\.offset)).count < references.count, "chunks of equal content share one")
            try CheckpointDirectory(path: directory).verify(step: 2)
            let reader = try CheckpointDirectory(path: directory).openSnapshot(step: 2, rank: 0)
            #expect(try reader.read([UInt8].self, "values") == values)
        }
    }

    @Test("chunks in a base shard that overlap without being the same chunk are refused when the shard opens")
    func overlappingBaseChunks() throws {
        try withTemporaryDirectory { directory in
            try Self.makeIncremental(directory, values: Self.sevenBitNoise(40_000))
            try Forgery.rewriteIndex(directory, step: 2) { index in
                let chunks = index.entries[0].chunks
                #expect(chunks.allSatisfy { $0.base != nil })
                index.entries[0].chunks[1].offset = chunks[0].offset + 1
            }
            #expect {
                _ = try ShardReader(path: Forgery.shardPath(directory, step: 2))
            } throws: { error in
                let error = try #require(error as? CheckpointError)
                return error.code == .corruptData && error.message.contains("overlap")
            }
        }
    }

    /// The attack of the issue: a ~98 KB shard whose 1024 chunk records all point at one 57 KB zstd
    /// chunk of an older shard, each claiming 1 GiB: an entry of 1 TiB.
    static func forgeTebibyte(_ directory: String, updatesRawBytes: Bool = true) throws {
        try makeIncremental(directory, values: sevenBitNoise(65_536), chunkSize: 65_536)
        try Forgery.rewriteIndex(directory, step: 2, updatesRawBytes: updatesRawBytes) { index in
            let stored = try #require(index.entries[0].chunks.first)
            try #require(stored.codec == .zstd && stored.base != nil)
            try #require(stored.storedSize >= (1 << 30) / ShardFormat.maximumCompressionRatio)
            var claim = stored
            claim.rawSize = 1 << 30
            index.entries[0].chunks = Array(repeating: claim, count: 1024)
            index.entries[0].shape = [1 << 40]
            index.entries[0].rawSize = 1 << 40
        }
    }

    @Test("an incremental shard claiming 1 TiB is refused before allocating, on read and on verify")
    func tebibyteClaim() throws {
        try withTemporaryDirectory { directory in
            try Self.forgeTebibyte(directory)
            let checkpoints = CheckpointDirectory(path: directory)
            let reader = try checkpoints.openSnapshot(step: 2, rank: 0)
            #expect(throws: CheckpointError.self) { _ = try reader.read([UInt8].self, "values") }
            do {
                _ = try reader.read([UInt8].self, "values")
            } catch let error as CheckpointError {
                #expect(error.code == .insufficientMemory, "\(error)")
            }
            do {
                _ = try reader.readBytes("values")
            } catch let error as CheckpointError {
                #expect(error.code == .insufficientMemory, "\(error)")
            }
            // Verification streams one chunk at a time, and the first chunk's frame declares 64 KiB,
            // not the 1 GiB claimed: refused before a buffer of that size exists.
            do {
                try checkpoints.verify(step: 2)
                Issue.record("a forged checkpoint verified")
            } catch let error as CheckpointError {
                #expect(error.code == .corruptData)
                #expect(error.message.contains("frame declares 65536"), "\(error)")
            }
        }
    }

    @Test("a shard whose entries claim more than the manifest records is inconsistent")
    func indexClaimsMoreThanManifest() throws {
        try withTemporaryDirectory { directory in
            try Self.forgeTebibyte(directory, updatesRawBytes: false)
            #expect {
                _ = try CheckpointDirectory(path: directory).openSnapshot(step: 2, rank: 0)
            } throws: { error in
                (error as? CheckpointError)?.code == .corruptData
                    && (error as? CheckpointError)?.message.contains("manifest recorded 65536") == true
            }
        }
    }

    @Test("reading one value checks the element count before decoding anything")
    func singleValueCheckedFirst() throws {
        try withTemporaryDirectory { directory in
            let checkpointer = try Checkpointer(directory: directory, configuration: testConfiguration())
            try checkpointer.save(ArrayState([Int64](repeating: 3, count: 100_000)), step: 1)
            // Damage the data: a reader that decoded the array first would report the checksum.
            let path = Forgery.shardPath(directory, step: 1)
            var bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
            bytes[ShardFormat.headerSize + 1] ^= 0xFF
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            let reader = try CheckpointDirectory(path: directory).openSnapshot(step: 1, rank: 0)
            #expect {
                _ = try reader.read(Int64.self, "values")
            } throws: { error in
                (error as? CheckpointError)?.code == .shapeMismatch
            }
        }
    }

    @Test("a block read is checked against the saved layout before its destination is allocated")
    func blockCheckedBeforeAllocating() throws {
        try withTemporaryDirectory { directory in
            let checkpointer = try Checkpointer(directory: directory, configuration: testConfiguration())
            try checkpointer.save(BoundedBlockState(rows: 8, columns: 8), step: 1)
            let reader = try CheckpointDirectory(path: directory).openSnapshot(step: 1, rank: 0)
            // 2^31 x 2^31 doubles (32 EiB): allocating first would abort the process.
            let huge = try BlockLayout(globalShape: [1 << 31, 1 << 31], offset: [0, 0], extent: [1 << 31, 1 << 31])
            #expect {
                _ = try reader.read([Double].self, "field", block: huge)
            } throws: { error in
                (error as? CheckpointError)?.code == .layoutMismatch
            }
        }
    }

    @Test("the Python reader refuses the same forgeries")
    func pythonReader() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/python3") else {
            Issue.record("python3 is required for this test (Scripts/bootstrap installs it)")
            return
        }
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Scripts/ckpt_read.py").path
        func read(_ directory: String) throws -> (Int32, String) {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["python3", script, directory, "--step", "2", "--verify"]
            let pipe = Pipe()
            process.standardOutput = pipe
            process.standardError = pipe
            try process.run()
            let data = pipe.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            return (process.terminationStatus, String(decoding: data, as: UTF8.self))
        }
        try withTemporaryDirectory { directory in
            try Self.makeIncremental(directory, values: Self.sevenBitNoise(40_000))
            try Forgery.rewriteIndex(directory, step: 2) { index in
                index.entries[0].chunks[1].offset = index.entries[0].chunks[0].offset + 1
            }
            let (status, output) = try read(directory)
            #expect(status == 1 && output.contains("overlap"), "\(output)")
        }
        try withTemporaryDirectory { directory in
            try Self.forgeTebibyte(directory, updatesRawBytes: false)
            let (status, output) = try read(directory)
            #expect(status == 1 && output.contains("manifest recorded 65536"), "\(output)")
        }
        try withTemporaryDirectory { directory in
            try Self.makeIncremental(directory, values: Self.sevenBitNoise(4000))
            try Forgery.rewriteManifest(directory, step: 2) { $0.shards[0].storedBytes = -7 }
            let (status, output) = try read(directory)
            #expect(status == 1 && output.contains("negative or overflowing stored size"), "\(output)")
        }
    }

    @Test("a claim larger than the machine's memory is an error, not an abort")
    func allocationCheck() throws {
        #expect(throws: Never.self) { try ShardReader.checkAllocation(1 << 20, of: "a test", path: "p") }
        #expect {
            try ShardReader.checkAllocation(Int.max, of: "a test", path: "p")
        } throws: { error in
            (error as? CheckpointError)?.code == .insufficientMemory
        }
    }
}

/// One rank's rows of a distributed 2-D array, saved with its block layout.
struct BoundedBlockState: Checkpointable {
    var rows: Int
    var columns: Int

    init(rows: Int, columns: Int) {
        self.rows = rows
        self.columns = columns
    }

    init(from reader: SnapshotReader) throws {
        let shape = try reader.globalShape(of: "field")
        rows = shape[0]
        columns = shape[1]
    }

    func save(to writer: inout SnapshotWriter) throws {
        let layout = try BlockLayout(globalShape: [rows, columns], offset: [0, 0], extent: [rows, columns])
        try writer.write([Double](repeating: 1, count: rows * columns), as: "field", block: layout)
    }
}
