import Foundation
import Testing

@_spi(Testing) @testable import Checkpoint

/// A field of `chunks` test-sized chunks (4 KiB = 512 doubles each), and a counter.
struct ChunkedState: Checkpointable, Equatable {
    static let perChunk = 512
    var field: [Double]
    var counter: Int

    init(chunks: Int, seed: UInt64) {
        field = smoothField(chunks * Self.perChunk, seed: seed)
        counter = 0
    }

    func save(to writer: inout SnapshotWriter) throws {
        try writer.write(field, as: "field")
        try writer.write(value: counter, as: "counter")
    }

    init(from reader: SnapshotReader) throws {
        field = try reader.read([Double].self, "field")
        counter = try reader.read(Int.self, "counter")
    }

    /// Changes one value in each of `count` distinct chunks, chosen at random, and the counter.
    mutating func change(chunks count: Int, using random: inout SplitMix64) -> Set<Int> {
        let chosen = Set(Array(0..<field.count / Self.perChunk).shuffled(using: &random).prefix(count))
        for chunk in chosen {
            field[chunk * Self.perChunk + Int.random(in: 0..<Self.perChunk, using: &random)] += 1
        }
        counter += 1
        return chosen
    }

    /// Changes one value in each of the given chunks, and the counter.
    mutating func change(indices: some Sequence<Int>) {
        for chunk in indices { field[chunk * Self.perChunk] += 1 }
        counter += 1
    }
}

/// `testConfiguration()` with incremental checkpoints on.
func incrementalConfiguration(
    fullEvery: Int = 10,
    keepLast: Int = 20,
    keepEvery: Int? = nil,
    threads: Int = 2
) -> Checkpointer.Configuration {
    var configuration = testConfiguration(keepLast: keepLast, threads: threads)
    configuration.retention.keepEvery = keepEvery
    configuration.incremental = .on(fullEvery: fullEvery)
    return configuration
}

/// What one rank's shard of a checkpoint stores itself and what it uses from older checkpoints.
struct ShardUse {
    var localChunks = 0
    var localBytes = 0
    var referencedChunks = 0
    var referencedBytes = 0
    var bases: [UInt64] = []
    var referencedChunkOffsets: [Int] = []
}

func shardUse(_ directory: String, step: Step, rank: Int = 0) throws -> ShardUse {
    let reader = try CheckpointDirectory(path: directory).openSnapshot(step: step, rank: rank, threads: 1)
    var use = ShardUse(bases: reader.shard.baseSteps)
    for chunk in reader.shard.index.entries.flatMap(\.chunks) {
        if chunk.base == nil {
            use.localChunks += 1
            use.localBytes += chunk.storedSize
        } else {
            use.referencedChunks += 1
            use.referencedBytes += chunk.storedSize
            use.referencedChunkOffsets.append(chunk.offset)
        }
    }
    return use
}

@Suite("Incremental checkpoints")
struct IncrementalTests {
    @Test("An unchanged state writes no chunk bytes the second time, and restores identically")
    func unchangedState() throws {
        try withTemporaryDirectory { directory in
            let state = ChunkedState(chunks: 100, seed: 1)
            let checkpointer = try Checkpointer(directory: directory, configuration: incrementalConfiguration())
            let full = try checkpointer.save(state, step: 1)
            let second = try checkpointer.save(state, step: 2)
            let use = try shardUse(directory, step: 2)
            #expect(use.localChunks == 0)
            #expect(use.referencedChunks == 101)
            #expect(use.bases == [1])
            #expect(second.references == [1])
            #expect(second.incremental?.referencedBytes == full.shards[0].storedBytes)
            #expect(second.shards[0].referencedBytes == second.shards[0].storedBytes)
            // Only the header, the index and the footer are written.
            #expect(second.storedBytes < full.storedBytes / 10, "\(second.storedBytes) vs \(full.storedBytes)")
            let restored = try #require(try checkpointer.restoreLatest(ChunkedState.self))
            #expect(restored.step == 2)
            #expect(restored.state == state)
            try CheckpointDirectory(path: directory).verify(step: 2)
        }
    }

    @Test("Changing some chunks writes exactly those chunks", arguments: [0, 10, 50, 100])
    func changedChunksOnly(percent: Int) throws {
        try withTemporaryDirectory { directory in
            var random = SplitMix64(seed: UInt64(percent))
            var state = ChunkedState(chunks: 100, seed: 2)
            let checkpointer = try Checkpointer(directory: directory, configuration: incrementalConfiguration())
            try checkpointer.save(state, step: 1)
            let full = try shardUse(directory, step: 1)
            _ = state.change(chunks: percent, using: &random)
            let manifest = try checkpointer.save(state, step: 2)
            let use = try shardUse(directory, step: 2)
            // The counter's chunk changes every time; `percent` of the field's 100 chunks do.
            #expect(use.localChunks == percent + 1)
            #expect(use.referencedChunks == 100 - percent)
            #expect(use.localBytes + use.referencedBytes == manifest.shards[0].storedBytes)
            #expect(use.referencedBytes == manifest.shards[0].referencedBytes)
            let writtenRatio = Double(use.localBytes) / Double(full.localBytes)
            let expected = Double(percent) / 100
            #expect(abs(writtenRatio - expected) <= 0.05 + 0.2 * expected, "wrote \(writtenRatio) of a full checkpoint")
            #expect(try checkpointer.restoreLatest(ChunkedState.self)?.state == state)
        }
    }

    @Test("Several ranks: each rank references its own older shard; restore is bit-identical", arguments: [2, 3])
    func severalRanks(ranks: Int) throws {
        try withTemporaryDirectory { directory in
            let results = try LocalGroup.run(ranks: ranks, timeout: 120) { communicator in
                let rank = communicator.rank
                let checkpointer = try Checkpointer(
                    directory: directory,
                    communicator: communicator,
                    configuration: incrementalConfiguration(threads: 1)
                )
                var state = ChunkedState(chunks: 20, seed: 10 + UInt64(rank))
                try checkpointer.save(state, step: 1)
                // Only rank 1 changes its field; every rank's counter changes.
                var random = SplitMix64(seed: 99)
                if rank == 1 { _ = state.change(chunks: 5, using: &random) } else { state.counter += 1 }
                let manifest = try checkpointer.save(state, step: 2)
                let restored = try #require(try checkpointer.restoreLatest(ChunkedState.self))
                return (manifest, restored.state == state && restored.step == 2)
            }
            #expect(results.allSatisfy { $0.1 })
            let manifest = results[0].0
            #expect(manifest.references == [1])
            #expect(manifest.shards.allSatisfy { $0.references == [1] })
            for rank in 0..<ranks {
                let use = try shardUse(directory, step: 2, rank: rank)
                #expect(use.localChunks == (rank == 1 ? 6 : 1), "rank \(rank)")
            }
            try CheckpointDirectory(path: directory).verify(step: 2)
        }
    }

    @Test("Every checkpoint of a chain restores bit-identically; every fullEvery-th one is full")
    func chain() throws {
        try withTemporaryDirectory { directory in
            var random = SplitMix64(seed: 5)
            var state = ChunkedState(chunks: 40, seed: 3)
            var saved: [ChunkedState] = []
            let checkpointer = try Checkpointer(
                directory: directory,
                configuration: incrementalConfiguration(fullEvery: 4)
            )
            var sinceFull: [Int] = []
            for step in 1...9 {
                if step > 1 { _ = state.change(chunks: 4, using: &random) }
                let manifest = try checkpointer.save(state, step: Step(step))
                sinceFull.append(try #require(manifest.incremental).sinceFull)
                saved.append(state)
            }
            #expect(sinceFull == [0, 1, 2, 3, 0, 1, 2, 3, 0])
            let checkpoints = CheckpointDirectory(path: directory)
            for step in 1...9 {
                let manifest = try checkpoints.verify(step: Step(step))
                // References are resolved at write time: they point into the current chain only.
                let chainStart = (step - 1) / 4 * 4 + 1
                #expect(manifest.references.allSatisfy { $0.intValue >= chainStart && $0.intValue < step })
                #expect(manifest.references.isEmpty == (step == chainStart))
                let reader = try checkpoints.openSnapshot(step: Step(step))
                #expect(try ChunkedState(from: reader) == saved[step - 1], "step \(step)")
            }
        }
    }

    @Test("Retention keeps the checkpoints a kept one uses, and deletes them once nothing kept does")
    func retentionCountsReferences() throws {
        try withTemporaryDirectory { directory in
            var state = ChunkedState(chunks: 20, seed: 4)
            let checkpointer = try Checkpointer(
                directory: directory,
                configuration: incrementalConfiguration(fullEvery: 3, keepLast: 1)
            )
            let checkpoints = CheckpointDirectory(path: directory)
            var committed: [[Step]] = []
            for step in 1...6 {
                if step > 1 { state.change(indices: 3 * step - 3..<3 * step) }
                try checkpointer.save(state, step: Step(step))
                committed.append(try checkpoints.committedSteps())
                for kept in try checkpoints.committedSteps() { try checkpoints.verify(step: kept) }
            }
            // 1 full, 2 → 1, 3 → 1, 2; 4 full, 5 → 4, 6 → 4, 5.
            #expect(committed == [[1], [1, 2], [1, 2, 3], [4], [4, 5], [4, 5, 6]])
            #expect(try checkpointer.restoreLatest(ChunkedState.self)?.state == state)
        }
    }

    @Test("keepEvery keeps a checkpoint's references as long as it keeps the checkpoint")
    func keepEveryKeepsReferences() throws {
        try withTemporaryDirectory { directory in
            var state = ChunkedState(chunks: 10, seed: 5)
            let checkpointer = try Checkpointer(
                directory: directory,
                configuration: incrementalConfiguration(fullEvery: 4, keepLast: 1, keepEvery: 2)
            )
            for step in 1...5 {
                if step > 1 { state.change(indices: 2 * step - 2..<2 * step) }
                try checkpointer.save(state, step: Step(step))
            }
            // 2 (kept by keepEvery) uses 1; 4 (kept) uses 1, 2, 3; 5 (newest) is full. 3, kept for 4,
            // stays restorable: what it uses is kept too.
            let checkpoints = CheckpointDirectory(path: directory)
            #expect(try checkpoints.committedSteps() == [1, 2, 3, 4, 5])
            let plan = try checkpoints.prunePlan(.init(keepLast: 1, keepEvery: 2))
            #expect(plan.delete == [])
            #expect(plan.keptForReferences[1] == [2, 3, 4])
            #expect(plan.keptForReferences[3] == [4])
            let newestOnly = try checkpoints.prunePlan(.init(keepLast: 1))
            #expect(newestOnly.delete == [1, 2, 3, 4])
            #expect(newestOnly.keptForReferences.isEmpty)
            #expect(try checkpoints.prune(.init(keepLast: 1, keepEvery: 2), dryRun: true) == [])
        }
    }

    @Test("A damaged chunk that newer checkpoints reference makes them all fall back to one that does not use it")
    func damagedReferencedChunk() throws {
        try withTemporaryDirectory { directory in
            var random = SplitMix64(seed: 11)
            var state = ChunkedState(chunks: 20, seed: 6)
            var saved: [ChunkedState] = []
            do {
                let checkpointer = try Checkpointer(
                    directory: directory,
                    configuration: incrementalConfiguration(fullEvery: 2)
                )
                for step in 1...4 {
                    if step > 1 { _ = state.change(chunks: 3, using: &random) }
                    try checkpointer.save(state, step: Step(step))
                    saved.append(state)
                }
            }
            // 4 uses chunks of the full checkpoint 3; damage one of them in 3's shard.
            let use = try shardUse(directory, step: 4)
            #expect(use.bases == [3])
            let offset = try #require(use.referencedChunkOffsets.first)
            let base = shardPath(directory, step: 3)
            var bytes = try readFile(base)
            bytes[offset + 1] ^= 0x40
            try writeFile(base, bytes)

            let checkpoints = CheckpointDirectory(path: directory)
            let error = try #require(throws: CheckpointError.self) { try checkpoints.verify(step: 4) }
            #expect(error.code == .corruptData)
            #expect(error.path == base)
            let restored = try #require(try Checkpointer(directory: directory).restoreLatest(ChunkedState.self))
            #expect(restored.step == 2)
            #expect(restored.state == saved[1])
        }
    }

    @Test("A deleted base checkpoint makes verify and restore report it clearly")
    func missingBase() throws {
        try withTemporaryDirectory { directory in
            do {
                var state = ChunkedState(chunks: 10, seed: 7)
                let checkpointer = try Checkpointer(directory: directory, configuration: incrementalConfiguration())
                try checkpointer.save(state, step: 1)
                state.counter += 1
                try checkpointer.save(state, step: 2)
            }
            try FileManager.default.removeItem(atPath: CheckpointDirectory(path: directory).path(for: 1))
            let error = try #require(throws: CheckpointError.self) {
                try CheckpointDirectory(path: directory).verify(step: 2)
            }
            #expect(error.code == .incompleteCheckpoint)
            #expect(error.isCorruption)
            #expect(error.message.contains("checkpoint 1"), "\(error)")
            #expect(error.message.contains("missing"), "\(error)")
            let restore = try #require(throws: CheckpointError.self) {
                try Checkpointer(directory: directory).restoreLatest(ChunkedState.self)
            }
            #expect(restore.code == .noCheckpoint)
            #expect(restore.message.contains("checkpoint 1"), "\(restore)")
        }
    }

    @Test("A base replaced by a save of the same step is told apart from the one referenced")
    func replacedBase() throws {
        try withTemporaryDirectory { directory in
            var state = ChunkedState(chunks: 10, seed: 8)
            do {
                let checkpointer = try Checkpointer(directory: directory, configuration: incrementalConfiguration())
                try checkpointer.save(state, step: 1)
                state.counter += 1
                try checkpointer.save(state, step: 2)
            }
            let other = ChunkedState(chunks: 10, seed: 9)
            try Checkpointer(directory: directory, configuration: testConfiguration()).save(other, step: 1)
            let error = try #require(throws: CheckpointError.self) {
                try CheckpointDirectory(path: directory).verify(step: 2)
            }
            #expect(error.code == .incompleteCheckpoint)
            #expect(error.message.contains("replaced"), "\(error)")
            let restored = try #require(try Checkpointer(directory: directory).restoreLatest(ChunkedState.self))
            #expect(restored.step == 1)
            #expect(restored.state == other)
        }
    }

    @Test("Saving a step again never references the checkpoint it replaces")
    func sameStepReplacement() throws {
        try withTemporaryDirectory { directory in
            var state = ChunkedState(chunks: 10, seed: 10)
            let checkpointer = try Checkpointer(directory: directory, configuration: incrementalConfiguration())
            try checkpointer.save(state, step: 5)
            let again = try checkpointer.save(state, step: 5)
            #expect(again.references == [])
            try CheckpointDirectory(path: directory).verify(step: 5)
            state.counter += 1
            let next = try checkpointer.save(state, step: 6)
            #expect(next.references == [5])
            try CheckpointDirectory(path: directory).verify(step: 6)
            #expect(try checkpointer.restoreLatest(ChunkedState.self)?.state == state)
        }
    }

    @Test("A restarted run continues the chain from the newest committed checkpoint")
    func restartContinues() throws {
        try withTemporaryDirectory { directory in
            var random = SplitMix64(seed: 12)
            var state = ChunkedState(chunks: 30, seed: 11)
            do {
                let checkpointer = try Checkpointer(directory: directory, configuration: incrementalConfiguration())
                try checkpointer.save(state, step: 1)
                _ = state.change(chunks: 3, using: &random)
                try checkpointer.save(state, step: 2)
            }
            let restarted = try Checkpointer(directory: directory, configuration: incrementalConfiguration())
            var restored = try #require(try restarted.restoreLatest(ChunkedState.self)).state
            #expect(restored == state)
            _ = restored.change(chunks: 3, using: &random)
            let manifest = try restarted.save(restored, step: 3)
            #expect(manifest.incremental?.sinceFull == 2)
            #expect(manifest.references == [1, 2] || manifest.references == [1])
            #expect(try shardUse(directory, step: 3).localChunks == 4)
            #expect(try restarted.restoreLatest(ChunkedState.self)?.state == restored)
        }
    }

    @Test("A crash at any commit point keeps the newest committed checkpoint usable; the chain goes on")
    func crashDuringIncrementalCommit() throws {
        for point in CrashPoint.commitPointsOfTheSharedStore {
            try withTemporaryDirectory { directory in
                var random = SplitMix64(seed: 13)
                var state = ChunkedState(chunks: 10, seed: 12)
                do {
                    let checkpointer = try Checkpointer(directory: directory, configuration: incrementalConfiguration())
                    try checkpointer.save(state, step: 1)
                    _ = state.change(chunks: 2, using: &random)
                    try checkpointer.save(state, step: 2)
                    _ = state.change(chunks: 2, using: &random)
                    checkpointer.injectCrash(at: point)
                    #expect(throws: CheckpointError.self) { try checkpointer.save(state, step: 3) }
                }
                let restarted = try Checkpointer(directory: directory, configuration: incrementalConfiguration())
                var restored = try #require(try restarted.restoreLatest(ChunkedState.self))
                #expect(restored.step == (point.leavesCheckpointCommitted ? 3 : 2), "\(point)")
                #expect(restored.step != 3 || restored.state == state)
                _ = restored.state.change(chunks: 2, using: &random)
                try restarted.save(restored.state, step: 4)
                let checkpoints = CheckpointDirectory(path: directory)
                for step in try checkpoints.committedSteps() { try checkpoints.verify(step: step) }
                #expect(try restarted.restoreLatest(ChunkedState.self)?.state == restored.state)
            }
        }
    }

    @Test("Asynchronous checkpoints of a registered buffer build on the previous one in the background")
    func asynchronous() throws {
        try withTemporaryDirectory { directory in
            var configuration = incrementalConfiguration(fullEvery: 5)
            configuration.mode = .asynchronous()
            let count = 20 * ChunkedState.perChunk
            let buffer = UnsafeMutableBufferPointer<Double>.allocate(capacity: count)
            defer { buffer.deallocate() }
            _ = buffer.initialize(from: smoothField(count, seed: 14))
            var saved: [[Double]] = []
            do {
                let checkpointer = try Checkpointer(directory: directory, configuration: configuration)
                try checkpointer.registry.register("field", buffer: buffer)
                for step in 1...6 {
                    buffer[(step % 20) * ChunkedState.perChunk] += 1
                    try checkpointer.checkpoint(step: Step(step))
                    saved.append(Array(buffer))
                }
                try checkpointer.finish()
            }
            let checkpoints = CheckpointDirectory(path: directory)
            #expect(try checkpoints.committedSteps() == [1, 2, 3, 4, 5, 6])
            let chains = try (1...6).map { try checkpoints.loadManifest(step: Step($0)).incremental?.sinceFull }
            #expect(chains == [0, 1, 2, 3, 4, 0])
            for step in 1...6 {
                #expect(try shardUse(directory, step: Step(step)).localChunks == (step % 5 == 1 ? 20 : 1))
                let values = try checkpoints.openSnapshot(step: Step(step)).read([Double].self, "field")
                #expect(values == saved[step - 1], "step \(step)")
            }
        }
    }

    @Test(
        "Shard format: 3.0 (1.0 with SHA-256 checksums) with incremental checkpoints off, 2.0 with them on; either starts a full chain",
        arguments: [(Checkpointer.Configuration.ChunkChecksum.automatic, "3.0"), (.sha256, "1.0")]
    )
    func formatVersions(checksum: Checkpointer.Configuration.ChunkChecksum, format: String) throws {
        try withTemporaryDirectory { directory in
            var state = ChunkedState(chunks: 10, seed: 13)
            var configuration = testConfiguration()
            configuration.chunkChecksum = checksum
            let plain = try Checkpointer(directory: directory, configuration: configuration).save(state, step: 1)
            #expect(plain.shardFormat == format)
            #expect(plain.incremental == nil)
            #expect(try readFile(shardPath(directory, step: 1))[8] == UInt8(format.prefix(1))!)
            state.counter += 1
            let checkpointer = try Checkpointer(directory: directory, configuration: incrementalConfiguration())
            let first = try checkpointer.save(state, step: 2)
            #expect(first.shardFormat == "2.0")
            #expect(first.references == [])
            #expect(first.incremental?.sinceFull == 0)
            #expect(try readFile(shardPath(directory, step: 2))[8] == 2)
            let checkpoints = CheckpointDirectory(path: directory)
            #expect(try ChunkedState(from: checkpoints.openSnapshot(step: 1)).counter == 0)
            #expect(try ChunkedState(from: checkpoints.openSnapshot(step: 2)) == state)
        }
    }

    @Test("Ranks must agree on the incremental setting")
    func ranksDisagree() throws {
        try withTemporaryDirectory { directory in
            let codes = try LocalGroup.run(ranks: 3, timeout: 60) { communicator in
                var configuration = incrementalConfiguration(threads: 1)
                if communicator.rank == 2 { configuration.incremental = .off }
                do {
                    _ = try Checkpointer(directory: directory, communicator: communicator, configuration: configuration)
                    return "created"
                } catch let error as CheckpointError {
                    return error.code.description
                }
            }
            #expect(codes == Array(repeating: "invalidConfiguration", count: 3))
        }
    }

    @Test("Incremental.md: the configuration sample, and the plan prune shows")
    func documentationSample() throws {
        try withTemporaryDirectory { directory in
            var configuration = Checkpointer.Configuration()
            configuration.incremental = .on(fullEvery: 10)  // default: .off
            configuration.retention = .init(keepLast: 1)
            let checkpointer = try Checkpointer(directory: directory + "/run/checkpoints", configuration: configuration)
            var state = ChunkedState(chunks: 4, seed: 15)
            try checkpointer.save(state, step: 1200)
            state.counter += 1
            let manifest = try checkpointer.save(state, step: 1300)
            #expect(manifest.references == [1200])
            let plan = try checkpointer.directory.prunePlan(.init(keepLast: 1))
            #expect(plan.delete == [])
            #expect(plan.keep == [1200, 1300])
            #expect(plan.keptForReferences == [1200: [1300]])
        }
    }

    @Test("fullEvery out of range is rejected", arguments: [0, -1, 1001])
    func invalidFullEvery(fullEvery: Int) throws {
        var configuration = testConfiguration()
        configuration.incremental = .on(fullEvery: fullEvery)
        let error = try #require(throws: CheckpointError.self) { try configuration.validate() }
        #expect(error.code == .invalidConfiguration)
    }

    @Test("Hostile 2.0 index values are rejected")
    func hostileIncrementalIndex() throws {
        let digest = [UInt8](repeating: 7, count: 32)
        func index(bases: [ShardBase], base: Int?, offset: Int = 16) -> [UInt8] {
            ShardIndex(
                entries: [
                    EntryRecord(
                        name: "x",
                        encoding: .raw,
                        elementType: .of(UInt8.self),
                        filter: .none,
                        filterWidth: 1,
                        shape: [10],
                        rawSize: 10,
                        chunks: [
                            ChunkRecord(
                                offset: offset,
                                storedSize: 10,
                                rawSize: 10,
                                codec: .raw,
                                digest: digest,
                                rawDigest: digest,
                                base: base
                            )
                        ]
                    )
                ],
                bases: bases,
                version: ShardFormat.incrementalVersion
            ).encoded()
        }
        func decode(_ bytes: [UInt8]) throws -> ShardIndex {
            try ShardIndex(decoding: bytes, dataRange: 16..<26, path: "test", version: ShardFormat.incrementalVersion)
        }
        let one = [ShardBase(step: 3, indexDigest: digest)]
        let good = try decode(index(bases: one, base: 0, offset: 1 << 40))
        #expect(good.entries[0].chunks[0].base == 0)
        #expect(good.bases == one)
        // A location past the base table.
        var beyond = index(bases: one, base: 0)
        beyond[beyond.count - 4] = 2
        #expect(throws: CheckpointError.self) { try decode(beyond) }
        // Bases out of order.
        let twice = [ShardBase(step: 3, indexDigest: digest), ShardBase(step: 3, indexDigest: digest)]
        #expect(throws: CheckpointError.self) { try decode(index(bases: twice, base: 1)) }
        // A local chunk outside the data region; a referenced one overflowing.
        #expect(throws: CheckpointError.self) { try decode(index(bases: one, base: nil, offset: 20)) }
        #expect(throws: CheckpointError.self) { try decode(index(bases: one, base: 0, offset: Int.max - 4)) }
        // A base count larger than the index could hold.
        var huge = index(bases: one, base: 0)
        huge.replaceSubrange(0..<4, with: [0xFF, 0xFF, 0xFF, 0x7F])
        #expect(throws: CheckpointError.self) { try decode(huge) }
        // A 2.0 index read as 1.0 (and the reverse) does not parse.
        #expect(throws: CheckpointError.self) {
            try ShardIndex(decoding: index(bases: [], base: nil), dataRange: 16..<26, path: "test")
        }
    }
}
