import Foundation
import Testing

@testable import Checkpoint

/// Damage the newest checkpoint in every way and check that restore notices and falls back.
@Suite("Corruption and fallback")
struct CorruptionTests {
    /// Two committed checkpoints: step 1 (older, good) and step 2 (to be damaged).
    static func makeTwoCheckpoints(_ directory: String) throws -> (older: ArrayState<Double>, newer: ArrayState<Double>)
    {
        let older = ArrayState(smoothField(3000, seed: 1))
        let newer = ArrayState(smoothField(3000, seed: 2))
        let checkpointer = try Checkpointer(directory: directory, configuration: testConfiguration())
        try checkpointer.save(older, step: 1)
        try checkpointer.save(newer, step: 2)
        return (older, newer)
    }

    /// Restores and expects exactly the older state: never the damaged one, never an error.
    static func expectFallback(_ directory: String, older: ArrayState<Double>, _ comment: Comment) throws {
        let restored = try Checkpointer(directory: directory, configuration: testConfiguration()).restoreLatest(
            ArrayState<Double>.self
        )
        #expect(restored?.step == 1, comment)
        #expect(restored?.state == older, comment)
    }

    @Test("A flipped byte anywhere in a shard is detected")
    func bitFlipsEverywhere() throws {
        try withTemporaryDirectory { directory in
            let (older, _) = try Self.makeTwoCheckpoints(directory)
            let path = shardPath(directory, step: 2)
            let original = try readFile(path)
            // Every byte of the header, footer and index, and a stride through the chunks.
            let reader = try ShardReader(path: path)
            let indexStart = reader.index.entries.flatMap(\.chunks).map { $0.offset + $0.storedSize }.max()!
            var offsets = Array(0..<ShardFormat.headerSize) + Array(indexStart..<original.count)
            offsets += Array(stride(from: ShardFormat.headerSize, to: indexStart, by: 97))
            for chunk in reader.index.entries.flatMap(\.chunks) {
                offsets += [chunk.offset, chunk.offset + chunk.storedSize / 2, chunk.offset + chunk.storedSize - 1]
            }
            for offset in Set(offsets).sorted() {
                var damaged = original
                damaged[offset] ^= 0x5A
                try writeFile(path, damaged)
                #expect(throws: CheckpointError.self, "flip at \(offset)") {
                    try CheckpointDirectory(path: directory).verify(step: 2)
                }
                try Self.expectFallback(directory, older: older, "flip at \(offset) of \(original.count)")
            }
            try writeFile(path, original)
            try CheckpointDirectory(path: directory).verify(step: 2)
        }
    }

    @Test("A shard cut short at any length is detected")
    func truncation() throws {
        try withTemporaryDirectory { directory in
            let (older, _) = try Self.makeTwoCheckpoints(directory)
            let path = shardPath(directory, step: 2)
            let original = try readFile(path)
            for length in Set([
                0, 1, 8, 15, 16, 17, 100, original.count / 2, original.count - 57, original.count - 56,
                original.count - 1,
            ]) {
                try writeFile(path, Array(original.prefix(length)))
                do {
                    try CheckpointDirectory(path: directory).verify(step: 2)
                    Issue.record("truncation to \(length) bytes was not detected")
                } catch let error as CheckpointError {
                    #expect(error.isCorruption, "\(error)")
                }
                try Self.expectFallback(directory, older: older, "truncated to \(length)")
            }
        }
    }

    @Test("Missing shard, missing or edited manifest, swapped shards")
    func structuralDamage() throws {
        try withTemporaryDirectory { directory in
            let (older, _) = try Self.makeTwoCheckpoints(directory)
            let newest = CheckpointDirectory(path: directory).path(for: 2)
            let shard = shardPath(directory, step: 2)
            let manifest = newest + "/" + Manifest.fileName
            let checksum = newest + "/" + Manifest.checksumFileName
            let saved = (shard: try readFile(shard), manifest: try readFile(manifest), checksum: try readFile(checksum))
            func restoreOriginals() throws {
                try writeFile(shard, saved.shard)
                try writeFile(manifest, saved.manifest)
                try writeFile(checksum, saved.checksum)
            }

            try FileManager.default.removeItem(atPath: shard)
            try Self.expectFallback(directory, older: older, "shard deleted")
            try restoreOriginals()

            try FileManager.default.removeItem(atPath: manifest)
            try Self.expectFallback(directory, older: older, "manifest deleted")
            try restoreOriginals()

            try FileManager.default.removeItem(atPath: checksum)
            try Self.expectFallback(directory, older: older, "checksum deleted")
            try restoreOriginals()

            var edited = saved.manifest
            edited[edited.count / 2] ^= 1
            try writeFile(manifest, edited)
            try Self.expectFallback(directory, older: older, "manifest edited")
            try restoreOriginals()

            try writeFile(manifest, Array("{}".utf8))
            try writeFile(checksum, Array((hexString(sha256(Array("{}".utf8))) + "  manifest.json\n").utf8))
            try Self.expectFallback(directory, older: older, "manifest replaced by valid-checksum garbage")
            try restoreOriginals()

            // The older checkpoint's shard in the newer one's place: same format, wrong data.
            try writeFile(shard, try readFile(shardPath(directory, step: 1)))
            try Self.expectFallback(directory, older: older, "shard swapped")
            try restoreOriginals()

            let restored = try Checkpointer(directory: directory, configuration: testConfiguration()).restoreLatest(
                ArrayState<Double>.self
            )
            #expect(restored?.step == 2)
        }
    }

    @Test("When every checkpoint is damaged, restore fails clearly instead of starting fresh")
    func allDamaged() throws {
        try withTemporaryDirectory { directory in
            _ = try Self.makeTwoCheckpoints(directory)
            for step: Step in [1, 2] { try FileManager.default.removeItem(atPath: shardPath(directory, step: step)) }
            let error = try #require(throws: CheckpointError.self) {
                try Checkpointer(directory: directory).restoreLatest(ArrayState<Double>.self)
            }
            #expect(error.code == .noCheckpoint)
            #expect(error.message.contains("ckpt verify"))
        }
    }

    @Test("Foreign files: wrong magic")
    func wrongMagic() throws {
        try withTemporaryDirectory { directory in
            let path = directory + "/foreign.snap"
            try writeFile(path, Array(repeating: 0x41, count: 4096))
            let error = try #require(throws: CheckpointError.self) { try ShardReader(path: path) }
            #expect(error.code == .badMagic)
            try writeFile(path, Array("hello".utf8))
            #expect(throws: CheckpointError.self) { try ShardReader(path: path) }
        }
    }

    @Test("A shard and manifest from a newer format version give a clear upgrade error")
    func newerVersion() throws {
        try withTemporaryDirectory { directory in
            _ = try Self.makeTwoCheckpoints(directory)
            let shard = shardPath(directory, step: 2)
            var bytes = try readFile(shard)
            bytes[8] = 4  // major version, little-endian u16 at offset 8 (this build reads 1, 2 and 3)
            try writeFile(shard, bytes)
            let direct = try #require(throws: CheckpointError.self) { try ShardReader(path: shard) }
            #expect(direct.code == .unsupportedFormatVersion)
            #expect(direct.message.contains("upgrade"))

            // With a manifest that agrees, restore stops with the upgrade error instead of falling back.
            let newest = CheckpointDirectory(path: directory).path(for: 2)
            let manifestPath = newest + "/" + Manifest.fileName
            var manifest = try JSONDecoder().decode(Manifest.self, from: Data(try readFile(manifestPath)))
            manifest.shardFormat = "4.0"
            let encoded = try manifest.encoded()
            try writeFile(manifestPath, encoded)
            try writeFile(
                newest + "/" + Manifest.checksumFileName,
                Array((hexString(sha256(encoded)) + "  manifest.json\n").utf8)
            )
            let error = try #require(throws: CheckpointError.self) {
                try Checkpointer(directory: directory).restoreLatest(ArrayState<Double>.self)
            }
            #expect(error.code == .unsupportedFormatVersion)
        }
    }

    @Test("Hostile index values are rejected before any allocation")
    func hostileIndex() throws {
        let good = ShardIndex(entries: [
            EntryRecord(
                name: "x",
                encoding: .raw,
                elementType: .of(Double.self),
                filter: .none,
                filterWidth: 1,
                shape: [Int(1) << 40],
                rawSize: 8 << 40,
                chunks: [
                    ChunkRecord(
                        offset: 16,
                        storedSize: 10,
                        rawSize: 8 << 40,
                        codec: .zstd,
                        digest: Array(repeating: 0, count: 32)
                    )
                ]
            )
        ])
        let error = try #require(throws: CheckpointError.self) {
            try ShardIndex(decoding: good.encoded(), dataRange: 16..<26, path: "test")
        }
        #expect(error.code == .corruptData)
        var lying = ByteBuilder()
        lying.append(UInt32.max)
        #expect(throws: CheckpointError.self) {
            try ShardIndex(decoding: lying.bytes, dataRange: 16..<26, path: "test")
        }
    }

    @Test("Chunks pointing at the same stored bytes are rejected (a small file cannot claim a large allocation)")
    func overlappingChunks() throws {
        func index(secondOffset: Int) -> ShardIndex {
            let chunk = { (offset: Int) in
                ChunkRecord(
                    offset: offset,
                    storedSize: 1000,
                    rawSize: 1000,
                    codec: .raw,
                    digest: Array(repeating: 0, count: 32)
                )
            }
            return ShardIndex(entries: [
                EntryRecord(
                    name: "x",
                    encoding: .raw,
                    elementType: .of(UInt8.self),
                    filter: .none,
                    filterWidth: 1,
                    shape: [2000],
                    rawSize: 2000,
                    chunks: [chunk(16), chunk(secondOffset)]
                )
            ])
        }
        // Found by the fuzzing campaign's review of the index rules: 1000 records pointing at
        // one 1000-byte region would have made verify allocate a megabyte per record.
        _ = try ShardIndex(decoding: index(secondOffset: 1016).encoded(), dataRange: 16..<2016, path: "test")
        for offset in [16, 500, 1015] {
            let error = try #require(throws: CheckpointError.self) {
                try ShardIndex(decoding: index(secondOffset: offset).encoded(), dataRange: 16..<2016, path: "test")
            }
            #expect(error.code == .corruptData)
            #expect(error.message.contains("overlap"))
        }
    }
}
