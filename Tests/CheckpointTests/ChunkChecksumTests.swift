import Foundation
import Testing

@_spi(Tools) @testable import Checkpoint

/// `Configuration.chunkChecksum`: XXH3-128 (format 3.0) by default, SHA-256 (format 1.0, and 2.0
/// for incremental shards) where a cryptographic digest is needed; either way every chunk is
/// verified and damage makes the checkpoint unrestorable.
@Suite("Chunk checksums")
struct ChunkChecksumTests {
    static let key = try! Authentication.Key(secret: Array(repeating: 0x3C, count: 32))

    @Test("XXH3-128 is stored canonical (big-endian) and padded with 16 zero bytes, as the Python reader computes it")
    func canonicalForm() {
        let field = Array("abc".utf8).withUnsafeBytes { ChecksumAlgorithm.xxh3.field(of: $0) }
        #expect(hexString(field) == "06b05ab6733a618578af5f94892f3950" + String(repeating: "0", count: 32))
        let empty = [UInt8]().withUnsafeBytes { ChecksumAlgorithm.xxh3.field(of: $0) }
        #expect(hexString(Array(empty.prefix(16))) == "99aa06d3014798d86001c324468d497f")
        let sha = Array("abc".utf8).withUnsafeBytes { ChecksumAlgorithm.sha256.field(of: $0) }
        #expect(hexString(sha) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

    @Test("Which checksum and format each configuration writes", arguments: 0..<5)
    func resolution(case index: Int) throws {
        var configuration = testConfiguration()
        let expected: String
        switch index {
        case 0: expected = "3.0"
        case 1:
            configuration.chunkChecksum = .sha256
            expected = "1.0"
        case 2:
            configuration.chunkChecksum = .xxh3
            expected = "3.0"
        case 3:
            configuration.authentication = Authentication(signingKey: Self.key)
            expected = "1.0"
        default:
            configuration.incremental = .on(fullEvery: 3)
            expected = "2.0"
        }
        try withTemporaryDirectory { directory in
            let state = ArrayState((0..<3_000).map { Double($0).squareRoot() })
            let checkpointer = try Checkpointer(directory: directory, configuration: configuration)
            let manifest = try checkpointer.save(state, step: 1)
            #expect(manifest.shardFormat == expected)
            #expect(try readFile(shardPath(directory, step: 1))[8] == UInt8(expected.prefix(1))!)
            #expect(try checkpointer.restoreLatest(ArrayState<Double>.self)?.state == state)
            try configuration.checkpointDirectory(directory).verify(step: 1)
        }
    }

    @Test(
        "Format 3.0 frames carry no zstd content checksum (their XXH3-128 covers them); 1.0 and 2.0 frames keep it",
        arguments: [
            (Checkpointer.Configuration.ChunkChecksum.automatic, false),
            (.sha256, true),
        ]
    )
    func frameContentChecksum(checksum: Checkpointer.Configuration.ChunkChecksum, present: Bool) throws {
        var configuration = testConfiguration()
        configuration.chunkChecksum = checksum
        try withTemporaryDirectory { directory in
            let state = ArrayState((0..<30_000).map { Double($0).squareRoot() })
            let checkpointer = try Checkpointer(directory: directory, configuration: configuration)
            _ = try checkpointer.save(state, step: 1)
            let path = shardPath(directory, step: 1)
            let chunks = try ShardReader(path: path).record("values").chunks
            let file = try readFile(path)
            #expect(!chunks.isEmpty && chunks.allSatisfy { $0.codec == .zstd })
            for chunk in chunks {
                #expect(Array(file[chunk.offset..<chunk.offset + 4]) == [0x28, 0xB5, 0x2F, 0xFD])
                // Frame header descriptor, bit 2: Content_Checksum_flag.
                #expect((file[chunk.offset + 4] & 0x04 != 0) == present)
            }
            #expect(try checkpointer.restoreLatest(ArrayState<Double>.self)?.state == state)
        }
    }

    @Test("The decoder leaves a frame's content checksum to the chunk's own checksum, checked before it")
    func decoderSkipsContentChecksum() throws {
        let raw = (0..<50_000).map { UInt8(truncatingIfNeeded: $0 &* 7 >> 3) }
        var frame = try raw.withUnsafeBytes { try ZstdFrame.compress($0, level: 1) }
        #expect(frame[4] & 0x04 != 0, "ZstdFrame writes the content checksum")
        frame[frame.count - 1] ^= 0xFF
        var decoded = [UInt8](repeating: 0, count: raw.count)
        let decompressor = try ZstdDecompressor()
        try frame.withUnsafeBytes { source in
            try decoded.withUnsafeMutableBytes { try decompressor.decompress(source, into: $0) }
        }
        #expect(decoded == raw)
    }

    @Test("xxh3 is refused with incremental checkpoints and with authentication, saying what to use")
    func refusedCombinations() throws {
        var incremental = testConfiguration()
        incremental.chunkChecksum = .xxh3
        incremental.incremental = .on()
        let first = try #require(throws: CheckpointError.self) { try incremental.validate() }
        #expect(first.code == .invalidConfiguration)
        #expect(first.message.contains("incremental") && first.message.contains(".sha256"))
        var sealed = testConfiguration()
        sealed.chunkChecksum = .xxh3
        sealed.authentication = Authentication(signingKey: Self.key)
        let second = try #require(throws: CheckpointError.self) { try sealed.validate() }
        #expect(second.code == .invalidConfiguration)
        #expect(second.message.contains("forge"))
        #expect(Checkpointer.Configuration.ChunkChecksum("xxh3") == .xxh3)
        #expect(Checkpointer.Configuration.ChunkChecksum("md5") == nil)
    }

    @Test(
        "A flipped byte in any chunk of a 3.0 or 1.0 shard fails its checksum; restore falls back to the older checkpoint",
        arguments: [Checkpointer.Configuration.ChunkChecksum.xxh3, .sha256]
    )
    func damageDetected(checksum: Checkpointer.Configuration.ChunkChecksum) throws {
        try withTemporaryDirectory { directory in
            var configuration = testConfiguration()
            configuration.chunkChecksum = checksum
            let older = ArrayState((0..<20_000).map { sin(Double($0) * 0.01) })
            do {
                let checkpointer = try Checkpointer(directory: directory, configuration: configuration)
                try checkpointer.save(older, step: 1)
                try checkpointer.save(ArrayState(older.values.map { $0 + 1 }), step: 2)
            }
            let reader = try ShardReader(path: shardPath(directory, step: 2))
            let chunks = try reader.record("values").chunks
            #expect(chunks.count > 2)
            for chunk in [chunks.first!, chunks[chunks.count / 2], chunks.last!] {
                let path = shardPath(directory, step: 2)
                let original = try readFile(path)
                var damaged = original
                damaged[chunk.offset + chunk.storedSize / 2] ^= 0x10
                try writeFile(path, damaged)
                let error = try #require(throws: CheckpointError.self) {
                    try CheckpointDirectory(path: directory).verify(step: 2)
                }
                #expect(error.code == .corruptData)
                #expect(error.message.contains(checksum == .sha256 ? "SHA-256" : "XXH3-128"), "\(error)")
                let restored = try Checkpointer(directory: directory, configuration: configuration)
                    .restoreLatest(ArrayState<Double>.self)
                #expect(restored?.step == 1)
                #expect(restored?.state == older)
                try writeFile(path, original)
            }
        }
    }

    @Test("A sealed checkpoint whose chunks carry XXH3 checksums is refused: the seal would not cover its data")
    func sealedFastChecksumsRefused() throws {
        try withTemporaryDirectory { directory in
            let state = ArrayState((0..<5_000).map { Double($0) })
            try Checkpointer(directory: directory, configuration: testConfiguration()).save(state, step: 1)
            // Seal the 3.0 checkpoint's manifest with the key, as a writer that ignored the rule would.
            let authentication = Authentication(signingKey: Self.key)
            let folder = CheckpointDirectory(path: directory).path(for: 1)
            var manifest = try CheckpointDirectory(path: directory).loadManifest(step: 1)
            #expect(manifest.shardFormat == "3.0")
            manifest.authentication = authentication.record
            let encoded = try manifest.encoded()
            try writeFile(folder + "/" + Manifest.fileName, encoded)
            try writeFile(
                folder + "/" + Manifest.checksumFileName,
                Array((hexString(sha256(encoded)) + "  manifest.json\n").utf8)
            )
            try writeFile(folder + "/" + Authentication.fileName, authentication.seal(encoded))
            let keyed = CheckpointDirectory(path: directory, authentication: authentication)
            let error = try #require(throws: CheckpointError.self) { try keyed.loadManifest(step: 1) }
            #expect(error.code == .authenticationFailed)
            #expect(error.message.contains("SHA-256 chunk checksums"), "\(error)")
            // Without a key it is an ordinary, unsealed-as-far-as-we-care checkpoint.
            #expect(try ArrayState<Double>(from: CheckpointDirectory(path: directory).openSnapshot(step: 1)) == state)

            // The Python reader refuses it too, with the key.
            let keyFile = directory + "/../" + UUID().uuidString + ".key"
            FileManager.default.createFile(
                atPath: keyFile,
                contents: Data((String(repeating: "3c", count: 32) + "\n").utf8),
                attributes: [.posixPermissions: 0o600]
            )
            defer { try? FileManager.default.removeItem(atPath: keyFile) }
            let (status, _, message) = try PythonReaderTests.run(
                ["python3", PythonReaderTests.script.path, directory, "--key-file", keyFile]
            )
            #expect(status != 0)
            #expect(message.contains("not cryptographic"), "\(message)")
        }
    }

    @Test("Checkpoints of every format stay readable whatever the configuration now says")
    func mixedFormats() throws {
        try withTemporaryDirectory { directory in
            let states = (1...3).map { step in ArrayState((0..<5_000).map { Double($0 * step) }) }
            for (step, checksum) in zip(1..., [Checkpointer.Configuration.ChunkChecksum.sha256, .xxh3, .automatic]) {
                var configuration = testConfiguration(keepLast: 5)
                configuration.chunkChecksum = checksum
                try Checkpointer(directory: directory, configuration: configuration).save(
                    states[step - 1],
                    step: Step(step)
                )
            }
            var sha = testConfiguration()
            sha.chunkChecksum = .sha256
            let checkpoints = CheckpointDirectory(path: directory)
            #expect(
                try (1...3).map { try checkpoints.loadManifest(step: Step($0)).shardFormat } == ["1.0", "3.0", "3.0"]
            )
            for step in 1...3 {
                try checkpoints.verify(step: Step(step))
                #expect(try ArrayState<Double>(from: checkpoints.openSnapshot(step: Step(step))) == states[step - 1])
            }
            #expect(
                try Checkpointer(directory: directory, configuration: sha).restoreLatest(ArrayState<Double>.self)?.state
                    == states[2]
            )
        }
    }
}
