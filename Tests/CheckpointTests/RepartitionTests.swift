import Foundation
import Testing

@testable import Checkpoint

/// The value of element `index` of the global test array: every element differs, so a misplaced
/// byte run shows.
func globalValue(_ index: Int) -> Double { Double(index) * 0.5 + sin(Double(index)) }

/// A process grid for `ranks` over `dimensions` dimensions (factors spread over the dimensions), so
/// that different rank counts give genuinely different decompositions, not just other row splits.
func processGrid(_ ranks: Int, dimensions: Int) -> [Int] {
    var grid = [Int](repeating: 1, count: dimensions)
    var rest = ranks
    var dimension = dimensions - 1
    var factor = 2
    while rest > 1 {
        while rest % factor != 0 { factor += 1 }
        grid[dimension] *= factor
        rest /= factor
        dimension = dimension == 0 ? dimensions - 1 : dimension - 1
    }
    return grid
}

/// The block of `rank` among `ranks` in the test decomposition of `shape`.
func testBlock(_ shape: [Int], rank: Int, of ranks: Int) throws -> BlockLayout {
    let grid = processGrid(ranks, dimensions: shape.count)
    var coordinates = [Int](repeating: 0, count: shape.count)
    var rest = rank
    for dimension in stride(from: shape.count - 1, through: 0, by: -1) {
        coordinates[dimension] = rest % grid[dimension]
        rest /= grid[dimension]
    }
    return try BlockLayout.partition(shape, grid: grid, coordinates: coordinates)
}

/// The elements of `block` of the global test array, row-major.
func blockValues(_ block: BlockLayout) -> [Double] {
    var values: [Double] = []
    values.reserveCapacity(block.elementCount)
    let dimensions = block.globalShape.count
    var index = [Int](repeating: 0, count: dimensions)
    guard !block.isEmpty else { return [] }
    repeat {
        var flat = 0
        for dimension in 0..<dimensions {
            flat = flat * block.globalShape[dimension] + block.offset[dimension] + index[dimension]
        }
        values.append(globalValue(flat))
        var dimension = dimensions - 1
        while dimension >= 0 {
            index[dimension] += 1
            if index[dimension] < block.extent[dimension] { break }
            index[dimension] = 0
            dimension -= 1
        }
        if dimension < 0 { break }
    } while true
    return values
}

/// One rank's share of a distributed array plus replicated state that differs per saving rank, so
/// the test sees whose copy each new rank got.
struct DistributedState: Checkpointable, Equatable {
    struct Note: Codable, Equatable { var label: String }

    var block: BlockLayout
    var values: [Double]
    var savedBy: Int
    var note: Note
    /// Read from old rank 2's copy (when the checkpoint has one), whatever rank restores.
    var owned: Int?

    init(shape: [Int], rank: Int, of ranks: Int) throws {
        block = try testBlock(shape, rank: rank, of: ranks)
        values = blockValues(block)
        savedBy = rank
        note = Note(label: "saved by rank \(rank)")
        owned = rank
    }

    func save(to writer: inout SnapshotWriter) throws {
        try writer.write(values, as: "values", block: block)
        try writer.write(value: savedBy, as: "saved-by")
        try writer.encode(note, as: "note")
    }

    init(from reader: SnapshotReader) throws {
        let shape = try reader.globalShape(of: "values")
        block = try testBlock(shape, rank: reader.rank, of: reader.rankCount)
        values = try reader.read([Double].self, "values", block: block)
        savedBy = try reader.read(Int.self, "saved-by")
        note = try reader.decode(Note.self, "note")
        owned = reader.savedRankCount > 2 ? try reader.savedBy(rank: 2).read(Int.self, "saved-by") : nil
    }
}

/// Saves `DistributedState` of `shape` on `saving` ranks at step 1, then restores on `restoring` ranks.
func saveAndRestore(
    _ shape: [Int],
    saving: Int,
    restoring: Int,
    in directory: String
) throws -> [DistributedState] {
    _ = try LocalGroup.run(ranks: saving, timeout: 60) { communicator in
        let checkpointer = try Checkpointer(
            directory: directory,
            communicator: communicator,
            configuration: testConfiguration(threads: 2)
        )
        try checkpointer.save(try DistributedState(shape: shape, rank: communicator.rank, of: saving), step: 1)
    }
    return try LocalGroup.run(ranks: restoring, timeout: 60) { communicator in
        let checkpointer = try Checkpointer(
            directory: directory,
            communicator: communicator,
            configuration: testConfiguration(threads: 2)
        )
        let restored = try #require(try checkpointer.restoreLatest(DistributedState.self))
        #expect(restored.step == 1)
        return restored.state
    }
}

@Suite("Restart on another number of ranks")
struct RepartitionTests {
    @Test(
        "N → M ranks: every new rank gets exactly its new block, 1-D, 2-D and 3-D, blocks across chunk boundaries",
        arguments: [
            ([10_007], 4, 1), ([10_007], 4, 3), ([10_007], 3, 8), ([10_007], 1, 5), ([10_007], 4, 4),
            ([101, 203], 4, 3), ([101, 203], 6, 4), ([101, 203], 2, 8), ([101, 203], 4, 1),
            ([23, 29, 31], 8, 3), ([23, 29, 31], 4, 6), ([23, 29, 31], 3, 1), ([23, 29, 31], 1, 12),
        ] as [([Int], Int, Int)]
    )
    func repartition(shape: [Int], saving: Int, restoring: Int) throws {
        try withTemporaryDirectory { directory in
            let restored = try saveAndRestore(shape, saving: saving, restoring: restoring, in: directory)
            #expect(restored.count == restoring)
            for (rank, state) in restored.enumerated() {
                let expected = try testBlock(shape, rank: rank, of: restoring)
                #expect(state.block == expected)
                #expect(state.values == blockValues(expected), "rank \(rank) of \(restoring), block \(expected)")
                // Replicated state comes from one copy, identical everywhere: rank 0's when the
                // count changed, each rank's own when it did not.
                let source = saving == restoring ? rank : 0
                #expect(state.savedBy == source)
                #expect(state.note == DistributedState.Note(label: "saved by rank \(source)"))
                #expect(state.owned == (saving > 2 ? 2 : nil))
            }
            // The new blocks really are another decomposition than the saved one.
            if saving != restoring {
                #expect(try testBlock(shape, rank: 0, of: saving) != testBlock(shape, rank: 0, of: restoring))
            }
        }
    }

    @Test("The manifest records each rank's block; the saved blocks tile the global shape")
    func manifestRecordsBlocks() throws {
        try withTemporaryDirectory { directory in
            _ = try saveAndRestore([101, 203], saving: 6, restoring: 6, in: directory)
            let manifest = try CheckpointDirectory(path: directory).loadManifest(step: 1)
            let blocks = manifest.shards.map { shard in shard.entries.first { $0.name == "values" }?.block }
            #expect(blocks == (0..<6).map { try? testBlock([101, 203], rank: $0, of: 6) })
            #expect(manifest.shards.allSatisfy { shard in shard.entries.filter { $0.block != nil }.count == 1 })
            #expect(BlockLayout.tilingProblem(blocks.enumerated().map { ($0.offset, $0.element!) }) == nil)
        }
    }

    @Test("A new rank decodes only the chunks that hold its block, and opens only the shards that overlap it")
    func readsOnlyNeededChunks() throws {
        try withTemporaryDirectory { directory in
            let count = 100_000
            _ = try LocalGroup.run(ranks: 4, timeout: 60) { communicator in
                let block = try BlockLayout.partition([count], part: communicator.rank, of: 4)
                try Checkpointer(directory: directory, communicator: communicator, configuration: testConfiguration())
                    .save(BlockState(block: block, values: blockValues(block)), step: 3)
            }
            let checkpoints = CheckpointDirectory(path: directory)
            let manifest = try checkpoints.loadManifest(step: 3)
            let totalChunks = manifest.shards.reduce(0) { $0 + ($1.entries.first { $0.name == "values" }?.chunks ?? 0) }
            var decoded = 0
            for rank in 0..<8 {
                let reader = try checkpoints.openSnapshot(step: 3, rank: rank, rankCount: 8, threads: 2)
                let block = try BlockLayout.partition([count], part: rank, of: 8)
                #expect(try reader.read([Double].self, "values", block: block) == blockValues(block))
                let old = rank / 2  // 8 new blocks of 12 500 halve the 4 old ones of 25 000
                let statistics = reader.checkpoint.readSoFar
                #expect(statistics.shardsOpened == [0, old])
                // The chunks of the old shard whose bytes overlap the new block, from its index.
                let record = try reader.checkpoint.shard(old).record("values")
                let wanted =
                    (block.offset[0] - old * 25_000) * 8..<(block.offset[0] + block.extent[0] - old * 25_000) * 8
                var start = 0
                var overlapping = 0
                for chunk in record.chunks {
                    if start < wanted.upperBound && start + chunk.rawSize > wanted.lowerBound { overlapping += 1 }
                    start += chunk.rawSize
                }
                #expect(statistics.chunksDecoded == overlapping)
                #expect(overlapping < record.chunks.count)
                decoded += statistics.chunksDecoded
            }
            // Only the chunks that straddle a new block boundary are decoded twice.
            #expect(decoded <= totalChunks + 4)
            #expect(decoded >= totalChunks)
        }
    }

    @Test("A same-count restore reads each rank's own shard, every chunk once")
    func sameCountReadsOwnShard() throws {
        try withTemporaryDirectory { directory in
            _ = try saveAndRestore([10_007], saving: 3, restoring: 3, in: directory)
            let checkpoints = CheckpointDirectory(path: directory)
            for rank in 0..<3 {
                let reader = try checkpoints.openSnapshot(step: 1, rank: rank, rankCount: 3)
                let block = try testBlock([10_007], rank: rank, of: 3)
                #expect(try reader.read([Double].self, "values", block: block) == blockValues(block))
                #expect(reader.checkpoint.readSoFar.shardsOpened == [rank])
                #expect(reader.checkpoint.readSoFar.chunksDecoded == (try reader.info("values")).chunkCount)
            }
        }
    }

    @Test("A whole distributed array can be read as one block, for post-processing")
    func wholeArray() throws {
        try withTemporaryDirectory { directory in
            _ = try saveAndRestore([23, 29, 31], saving: 4, restoring: 4, in: directory)
            let reader = try CheckpointDirectory(path: directory).openSnapshot(step: 1, rank: 0, rankCount: 1)
            let shape = try reader.globalShape(of: "values")
            #expect(shape == [23, 29, 31])
            let values = try reader.read([Double].self, "values", block: .whole(shape))
            #expect(values == (0..<(23 * 29 * 31)).map(globalValue))
            // Into memory the caller owns, too.
            let buffer = UnsafeMutableBufferPointer<Double>.allocate(capacity: 23 * 29 * 31)
            defer { buffer.deallocate() }
            try reader.read(into: buffer, "values", block: .whole(shape))
            #expect(Array(buffer) == values)
        }
    }

    @Test("The independent Python reader assembles the same global array from the blocks (FileFormat.md, R1-R5)")
    func pythonReaderAssembles() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/python3") else {
            Issue.record("python3 is required for this test")
            return
        }
        try withTemporaryDirectory { directory in
            _ = try saveAndRestore([23, 29, 31], saving: 6, restoring: 6, in: directory)
            let reader = try CheckpointDirectory(path: directory).openSnapshot(step: 1, rank: 0, rankCount: 1)
            let values = try reader.read([Double].self, "values", block: .whole([23, 29, 31]))
            let digest = values.withUnsafeBytes { hexString(sha256($0)) }
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["python3", PythonReaderTests.script.path, directory, "--assemble", "values"]
            let output = Pipe()
            process.standardOutput = output
            try process.run()
            let data = output.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            try #require(process.terminationStatus == 0, "\(String(decoding: data, as: UTF8.self))")
            struct Summary: Decodable {
                struct Entry: Decodable {
                    var shape: [Int]
                    var sha256: String
                }
                var entries: [Entry]
                var blocks: [BlockLayout]
            }
            let summary = try JSONDecoder().decode(Summary.self, from: data)
            #expect(summary.entries.first?.shape == [23, 29, 31])
            #expect(summary.entries.first?.sha256 == digest)
            #expect(summary.blocks == (0..<6).map { try? testBlock([23, 29, 31], rank: $0, of: 6) })
        }
    }

    @Test("A manifest whose block reaches outside its global shape is damaged, for both readers (M14)")
    func invalidBlockInManifest() throws {
        try withTemporaryDirectory { directory in
            _ = try saveAndRestore([100], saving: 2, restoring: 2, in: directory)
            let folder = CheckpointDirectory(path: directory).path(for: 1)
            // Rank 1's block of 50 elements moved to offset 60 of 100.
            var manifest = try #require(
                try JSONSerialization.jsonObject(with: Data(readFile(folder + "/manifest.json"))) as? [String: Any]
            )
            var shards = try #require(manifest["shards"] as? [[String: Any]])
            var entries = try #require(shards[1]["entries"] as? [[String: Any]])
            let position = try #require(entries.firstIndex { $0["name"] as? String == "values" })
            var block = try #require(entries[position]["block"] as? [String: Any])
            block["offset"] = [60]
            entries[position]["block"] = block
            shards[1]["entries"] = entries
            manifest["shards"] = shards
            let damaged = Array(try JSONSerialization.data(withJSONObject: manifest, options: [.sortedKeys]))
            try writeFile(folder + "/manifest.json", damaged)
            try writeFile(
                folder + "/manifest.json.sha256",
                Array((hexString(sha256(damaged)) + "  manifest.json\n").utf8)
            )
            let error = try #require(throws: CheckpointError.self) {
                try CheckpointDirectory(path: directory).loadManifest(step: 1)
            }
            #expect(error.code == .manifestInvalid && error.isCorruption)
            guard FileManager.default.isExecutableFile(atPath: "/usr/bin/python3") else {
                try toolUnavailable("python3 is not installed: the Python reader's check of the same manifest")
            }
            do {
                let process = Process()
                process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
                process.arguments = ["python3", PythonReaderTests.script.path, directory, "--step", "1"]
                let errors = Pipe()
                process.standardError = errors
                process.standardOutput = FileHandle.nullDevice
                try process.run()
                let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
                process.waitUntilExit()
                #expect(process.terminationStatus == 1)
                #expect(message.contains("reaches outside its global shape"), "\(message)")
            }
        }
    }

    @Test("Registered arrays and buffers with a block layout restore on another rank count, in place")
    func registry() throws {
        try withTemporaryDirectory { directory in
            let shape = [40, 30]
            _ = try LocalGroup.run(ranks: 4, timeout: 60) { communicator in
                let checkpointer = try Checkpointer(
                    directory: directory,
                    communicator: communicator,
                    configuration: testConfiguration(threads: 1)
                )
                let block = try testBlock(shape, rank: communicator.rank, of: 4)
                let sim = BlockOwner(values: blockValues(block))
                let buffer = UnsafeMutableBufferPointer<Double>.allocate(capacity: block.elementCount)
                defer { buffer.deallocate() }
                _ = buffer.initialize(from: blockValues(block).map { -$0 })
                try checkpointer.registry.register("array", sim, \.values, block: block)
                try checkpointer.registry.register("buffer", buffer: buffer, block: block)
                try checkpointer.registry.register("time", sim, \.time)
                sim.time = 2.5 + Double(communicator.rank)
                try checkpointer.save(step: 4)
            }
            let results = try LocalGroup.run(ranks: 3, timeout: 60) { communicator in
                let checkpointer = try Checkpointer(
                    directory: directory,
                    communicator: communicator,
                    configuration: testConfiguration(threads: 1)
                )
                let block = try testBlock(shape, rank: communicator.rank, of: 3)
                let sim = BlockOwner(values: [])
                let buffer = UnsafeMutableBufferPointer<Double>.allocate(capacity: block.elementCount)
                defer { buffer.deallocate() }
                buffer.initialize(repeating: 0)
                try checkpointer.registry.register("array", sim, \.values, block: block)
                try checkpointer.registry.register("buffer", buffer: buffer, block: block)
                try checkpointer.registry.register("time", sim, \.time)
                let step = try checkpointer.restoreLatest()
                return (
                    step, sim.values == blockValues(block), Array(buffer) == blockValues(block).map { -$0 }, sim.time
                )
            }
            for (step, array, buffer, time) in results {
                #expect(step == 4)
                #expect(array)
                #expect(buffer)
                #expect(time == 2.5)
            }
        }
    }

    @Test("A checkpoint saved without layouts from an older build restores by blocks on the same rank count")
    func legacyCheckpointSameCount() throws {
        try withTemporaryDirectory { directory in
            _ = try LocalGroup.run(ranks: 2, timeout: 60) { communicator in
                let block = try BlockLayout.partition([999], part: communicator.rank, of: 2)
                try Checkpointer(directory: directory, communicator: communicator, configuration: testConfiguration())
                    .save(ArrayState(blockValues(block)), step: 1)
            }
            let checkpoints = CheckpointDirectory(path: directory)
            for rank in 0..<2 {
                let block = try BlockLayout.partition([999], part: rank, of: 2)
                let reader = try checkpoints.openSnapshot(step: 1, rank: rank, rankCount: 2)
                #expect(try reader.read([Double].self, "values", block: block) == blockValues(block))
                let error = try #require(throws: CheckpointError.self) {
                    try reader.read([Double].self, "values", block: .whole([999]))
                }
                #expect(error.code == .layoutMissing)
            }
        }
    }
}

/// A class that owns its block, for registry tests.
final class BlockOwner: @unchecked Sendable {
    var values: [Double]
    var time = 0.0
    init(values: [Double]) { self.values = values }
}

/// One distributed array and nothing else.
struct BlockState: Checkpointable {
    var block: BlockLayout
    var values: [Double]

    init(block: BlockLayout, values: [Double]) {
        self.block = block
        self.values = values
    }

    func save(to writer: inout SnapshotWriter) throws { try writer.write(values, as: "values", block: block) }

    init(from reader: SnapshotReader) throws {
        block = try BlockLayout.partition(reader.globalShape(of: "values"), part: reader.rank, of: reader.rankCount)
        values = try reader.read([Double].self, "values", block: block)
    }
}

/// Saves on `ranks` ranks, each rank's state written by `save`; returns each rank's error code (nil: committed).
func saveOnRanks(
    _ directory: String,
    ranks: Int,
    step: Step = 1,
    _ save: @escaping @Sendable (Int, inout SnapshotWriter) throws -> Void
) throws -> [CheckpointError.Code?] {
    try LocalGroup.run(ranks: ranks, timeout: 60) { communicator in
        let checkpointer = try Checkpointer(
            directory: directory,
            communicator: communicator,
            configuration: testConfiguration(threads: 1)
        )
        do {
            try checkpointer.save(ClosureState { try save(communicator.rank, &$0) }, step: step)
            return nil
        } catch let error as CheckpointError {
            return error.code
        }
    }
}

/// Restores on `ranks` ranks with `build`; returns each rank's outcome: the restored step or the error.
func restoreOnRanks(
    _ directory: String,
    ranks: Int,
    _ build: @escaping @Sendable (SnapshotReader) throws -> Void
) throws -> [Result<Step, CheckpointError>] {
    try LocalGroup.run(ranks: ranks, timeout: 60) { communicator in
        let checkpointer = try Checkpointer(
            directory: directory,
            communicator: communicator,
            configuration: testConfiguration(threads: 1)
        )
        do {
            guard let (_, step) = try checkpointer.restoreNewest(build) else {
                return .failure(CheckpointError(.noCheckpoint, "empty"))
            }
            return .success(step)
        } catch let error as CheckpointError {
            return .failure(error)
        }
    }
}

/// State saved by a closure (restores are driven by `restoreNewest` directly).
struct ClosureState: Checkpointable {
    var body: (inout SnapshotWriter) throws -> Void
    init(_ body: @escaping (inout SnapshotWriter) throws -> Void) { self.body = body }
    func save(to writer: inout SnapshotWriter) throws { try body(&writer) }
    init(from reader: SnapshotReader) throws { body = { _ in } }
}

extension Result where Failure == CheckpointError {
    var code: CheckpointError.Code? { if case .failure(let error) = self { error.code } else { nil } }
    var message: String { if case .failure(let error) = self { error.message } else { "" } }
}

@Suite("Re-partitioning errors")
struct RepartitionErrorTests {
    @Test("Invalid layouts are refused up front")
    func invalidLayouts() throws {
        let invalid: [([Int], [Int], [Int])] = [
            ([], [], []),
            ([2, 2, 2, 2], [0, 0, 0, 0], [2, 2, 2, 2]),
            ([10, 10], [0], [10]),
            ([10], [-1], [5]),
            ([10], [0], [-1]),
            ([-10], [0], [0]),
            ([10], [6], [5]),
            ([10, 10], [0, 9], [10, 2]),
            ([Int.max, 4], [0, 0], [1, 1]),
        ]
        for (shape, offset, extent) in invalid {
            let error = try #require(throws: CheckpointError.self) {
                try BlockLayout(globalShape: shape, offset: offset, extent: extent)
            }
            #expect(error.code == .invalidLayout, "\(shape) \(offset) \(extent)")
        }
        #expect(throws: CheckpointError.self) { try BlockLayout.partition([10], part: 4, of: 4) }
        #expect(throws: CheckpointError.self) { try BlockLayout.partition([10], part: 0, of: 0) }
        #expect(throws: CheckpointError.self) { try BlockLayout.partition([10, 10], grid: [2], coordinates: [0]) }
        // Empty blocks are fine: more ranks than rows.
        let empty = try BlockLayout.partition([3], part: 4, of: 5)
        #expect(empty.isEmpty && empty.offset == [3])
        var writer = SnapshotWriter()
        let error = try #require(throws: CheckpointError.self) {
            try writer.write([1.0, 2.0], as: "values", block: try .whole([3]))
        }
        #expect(error.code == .shapeMismatch)
        // A layout decoded from a manifest is checked like one built in code.
        let json = Data(#"{"globalShape":[10],"offset":[8],"extent":[5]}"#.utf8)
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(BlockLayout.self, from: json) }
    }

    @Test("Balanced partitions tile the global shape", arguments: [1, 2, 3, 5, 7, 8, 12, 40])
    func partitionsTile(ranks: Int) throws {
        for shape in [[1], [7], [37, 53], [11, 13, 17], [2, 3, 1]] {
            let blocks = try (0..<ranks).map { ($0, try testBlock(shape, rank: $0, of: ranks)) }
            #expect(BlockLayout.tilingProblem(blocks) == nil, "\(shape) on \(ranks)")
            let rows = try (0..<ranks).map { ($0, try BlockLayout.partition(shape, part: $0, of: ranks)) }
            #expect(BlockLayout.tilingProblem(rows) == nil, "\(shape) by rows on \(ranks)")
        }
    }

    @Test("Saved blocks that disagree fail the checkpoint on every rank, and nothing is committed")
    func savedBlocksDisagree() throws {
        let cases: [(String, @Sendable (Int, inout SnapshotWriter) throws -> Void)] = [
            (
                "global shapes differ",
                { rank, writer in
                    let shape = rank == 1 ? [101] : [100]
                    let block = try BlockLayout.partition(shape, part: rank, of: 3)
                    try writer.write(blockValues(block), as: "values", block: block)
                }
            ),
            (
                "blocks overlap",
                { rank, writer in try writer.write(blockValues(try .whole([100])), as: "values", block: .whole([100])) }
            ),
            (
                "a rank's block is missing",
                { rank, writer in
                    let block = try BlockLayout.partition([100], part: rank, of: 4)
                    if rank != 2 { try writer.write(blockValues(block), as: "values", block: block) }
                }
            ),
            (
                "one rank saves it without a layout",
                { rank, writer in
                    let block = try BlockLayout.partition([100], part: rank, of: 3)
                    if rank == 1 {
                        try writer.write(blockValues(block), as: "values")
                    } else {
                        try writer.write(blockValues(block), as: "values", block: block)
                    }
                }
            ),
            (
                "element types differ",
                { rank, writer in
                    let block = try BlockLayout.partition([100], part: rank, of: 3)
                    if rank == 1 {
                        try writer.write(blockValues(block).map { Float($0) }, as: "values", block: block)
                    } else {
                        try writer.write(blockValues(block), as: "values", block: block)
                    }
                }
            ),
        ]
        for (label, save) in cases {
            try withTemporaryDirectory { directory in
                let codes = try saveOnRanks(directory, ranks: 3, save)
                #expect(codes == [.layoutMismatch, .layoutMismatch, .layoutMismatch], "\(label)")
                #expect(try CheckpointDirectory(path: directory).committedSteps().isEmpty, "\(label)")
            }
        }
    }

    @Test("Re-partitioning an entry saved without a layout is a clear error on every rank")
    func layoutMissing() throws {
        try withTemporaryDirectory { directory in
            _ = try saveOnRanks(directory, ranks: 4) { rank, writer in
                let block = try BlockLayout.partition([100], part: rank, of: 4)
                try writer.write(blockValues(block), as: "values", block: block)
                try writer.write(blockValues(block), as: "per-rank")
            }
            let outcomes = try restoreOnRanks(directory, ranks: 2) { reader in
                let block = try BlockLayout.partition([100], part: reader.rank, of: 2)
                _ = try reader.read([Double].self, "values", block: block)
                _ = try reader.read([Double].self, "per-rank", block: block)
            }
            #expect(outcomes.map(\.code) == [.layoutMissing, .layoutMissing])
            #expect(outcomes[1].message.contains("'per-rank' was saved without a block layout"))
            #expect(outcomes[1].message.contains("restart with 4 ranks"))
            // Read plainly, it is replicated state: rank 0's copy on every rank.
            let first = blockValues(try .partition([100], part: 0, of: 4))
            let plain = try restoreOnRanks(directory, ranks: 2) { reader in
                let values = try reader.read([Double].self, "per-rank")
                #expect(values == first)
            }
            #expect(plain.map(\.code) == [nil, nil])
        }
    }

    @Test("A checkpoint with no layout at all keeps rankCountMismatch, pointing to block layouts")
    func noLayoutsAtAll() throws {
        try withTemporaryDirectory { directory in
            _ = try saveOnRanks(directory, ranks: 4) { rank, writer in try writer.write([Double(rank)], as: "values") }
            let outcomes = try restoreOnRanks(directory, ranks: 3) { reader in
                _ = try reader.read([Double].self, "values")
            }
            #expect(outcomes.map(\.code) == [.rankCountMismatch, .rankCountMismatch, .rankCountMismatch])
            #expect(outcomes[0].message.contains("write(_:as:block:)"))
            #expect(outcomes[0].message.contains("Migration.md"))
        }
    }

    @Test("New blocks that overlap, leave gaps, or describe another global shape fail every rank's restore")
    func newBlocksDisagree() throws {
        try withTemporaryDirectory { directory in
            _ = try saveOnRanks(directory, ranks: 4) { rank, writer in
                let block = try BlockLayout.partition([10, 20], part: rank, of: 4)
                try writer.write(blockValues(block), as: "values", block: block)
            }
            let overlap = try restoreOnRanks(directory, ranks: 2) { reader in
                _ = try reader.read([Double].self, "values", block: .whole([10, 20]))
            }
            #expect(overlap.map(\.code) == [.layoutMismatch, .layoutMismatch])
            #expect(overlap[0].message.contains("overlap"))
            let gap = try restoreOnRanks(directory, ranks: 3) { reader in
                guard reader.rank != 1 else { return }
                _ = try reader.read([Double].self, "values", block: .partition([10, 20], part: reader.rank, of: 3))
            }
            #expect(gap.map(\.code) == [.layoutMismatch, .layoutMismatch, .layoutMismatch])
            #expect(gap[2].message.contains("of the 200 elements"))
            let shape = try restoreOnRanks(directory, ranks: 2) { reader in
                _ = try reader.read([Double].self, "values", block: .partition([10, 21], part: reader.rank, of: 2))
            }
            #expect(shape.map(\.code) == [.layoutMismatch, .layoutMismatch])
            #expect(shape[0].message.contains("global shape [10, 20]"))
            let type = try restoreOnRanks(directory, ranks: 2) { reader in
                _ = try reader.read([Float].self, "values", block: .partition([10, 20], part: reader.rank, of: 2))
            }
            #expect(type.map(\.code) == [.typeMismatch, .typeMismatch])
            let plain = try restoreOnRanks(directory, ranks: 2) { reader in
                _ = try reader.read([Double].self, "values")
            }
            #expect(plain.map(\.code) == [.layoutMismatch, .layoutMismatch])
            #expect(plain[0].message.contains("read(_:_:block:)"))
            // The same blocks, tiling, restore fine.
            let good = try restoreOnRanks(directory, ranks: 2) { reader in
                let block = try BlockLayout.partition([10, 20], part: reader.rank, of: 2)
                #expect(try reader.read([Double].self, "values", block: block) == blockValues(block))
            }
            #expect(good.map(\.code) == [nil, nil])
        }
    }

    @Test("A failed re-partitioning restore leaves registered state untouched")
    func failedRestoreTouchesNothing() throws {
        try withTemporaryDirectory { directory in
            _ = try saveOnRanks(directory, ranks: 3) { rank, writer in
                let block = try BlockLayout.partition([60], part: rank, of: 3)
                try writer.write(blockValues(block), as: "values", block: block)
                try writer.write(value: 7.5, as: "time")
            }
            let untouched = try LocalGroup.run(ranks: 2, timeout: 60) { communicator in
                let checkpointer = try Checkpointer(
                    directory: directory,
                    communicator: communicator,
                    configuration: testConfiguration(threads: 1)
                )
                // Both ranks claim the first half: the blocks overlap and leave a gap.
                let block = try BlockLayout.partition([60], part: 0, of: 2)
                let sim = BlockOwner(values: [Double](repeating: -1, count: block.elementCount))
                try checkpointer.registry.register("values", sim, \.values, block: block)
                try checkpointer.registry.register("time", sim, \.time)
                let error = try #require(throws: CheckpointError.self) { try checkpointer.restoreLatest() }
                return error.code == .layoutMismatch && sim.values.allSatisfy { $0 == -1 } && sim.time == 0
            }
            #expect(untouched == [true, true])
        }
    }

    @Test("A damaged chunk in an old shard that a new rank needs makes every rank fall back to an older checkpoint")
    func damagedOldShard() throws {
        try withTemporaryDirectory { directory in
            for step in [1, 2] as [Step] {
                _ = try saveOnRanks(directory, ranks: 4, step: step) { rank, writer in
                    let block = try BlockLayout.partition([4000], part: rank, of: 4)
                    try writer.write(blockValues(block), as: "values", block: block)
                }
            }
            // Damage the last chunk of rank 3's block in checkpoint 2 (only new rank 1 of 2 reads it).
            let path =
                CheckpointDirectory(path: directory).path(for: 2) + "/" + CheckpointDirectory.shardFileName(rank: 3)
            let record = try ShardReader(path: path).record("values")
            var bytes = try readFile(path)
            bytes[record.chunks.last!.offset + 1] ^= 0xFF
            try writeFile(path, bytes)
            let outcomes = try restoreOnRanks(directory, ranks: 2) { reader in
                let block = try BlockLayout.partition([4000], part: reader.rank, of: 2)
                #expect(try reader.read([Double].self, "values", block: block) == blockValues(block))
            }
            #expect(outcomes.map { try? $0.get() } == [1, 1])
        }
    }
}
