import Foundation
import Testing

@_spi(Testing) @testable import Checkpoint

/// The simulated node of each of `ranks` ranks spread over `nodes` nodes (uneven when they do not divide).
func simulatedNodes(ranks: Int, nodes: Int) -> [String] { (0..<ranks).map { "node-\($0 * nodes / ranks)" } }

/// The test configuration with one aggregated file per node.
func aggregatedConfiguration(keepLast: Int = 3) -> Checkpointer.Configuration {
    var configuration = testConfiguration(keepLast: keepLast)
    configuration.aggregation = .perNode
    return configuration
}

/// Saves `DistributedState` of `shape` at each of `steps` on `ranks` ranks spread over `nodes` nodes.
func saveAggregated(
    _ shape: [Int],
    ranks: Int,
    nodes: Int,
    steps: [Step],
    configuration: Checkpointer.Configuration = aggregatedConfiguration(),
    in directory: String
) throws {
    _ = try LocalGroup.run(ranks: ranks, timeout: 60, nodes: simulatedNodes(ranks: ranks, nodes: nodes)) {
        communicator in
        let checkpointer = try Checkpointer(
            directory: directory,
            communicator: communicator,
            configuration: configuration
        )
        for step in steps {
            var state = try DistributedState(shape: shape, rank: communicator.rank, of: ranks)
            state.values = state.values.map { $0 + Double(step.rawValue) }
            try checkpointer.save(state, step: step)
        }
        try checkpointer.finish()
    }
}

/// Restores `DistributedState` on `ranks` ranks (any node layout: restore needs none).
func restoreAggregated(ranks: Int, in directory: String) throws -> [(state: DistributedState, step: Step)] {
    try LocalGroup.run(ranks: ranks, timeout: 60) { communicator in
        let checkpointer = try Checkpointer(
            directory: directory,
            communicator: communicator,
            configuration: aggregatedConfiguration()
        )
        return try #require(try checkpointer.restoreLatest(DistributedState.self))
    }
}

@Suite("Aggregated files: one file per node per checkpoint", .serialized)
struct AggregationTests {
    static let shape = [97, 61]

    @Test(
        "Files per checkpoint equal the node count; restore is bit-identical",
        arguments: [(8, 2), (8, 3), (5, 5), (3, 1)]
    )
    func filesPerNode(ranks: Int, nodes: Int) throws {
        try withTemporaryDirectory { directory in
            try saveAggregated(Self.shape, ranks: ranks, nodes: nodes, steps: [1, 2], in: directory)
            let folder = directory + "/" + CheckpointLayout.committedName(2)
            let names = try FileManager.default.contentsOfDirectory(atPath: folder).sorted()
            let expected =
                (0..<nodes).map { AggregateFile.fileName(node: $0) } + [
                    Manifest.fileName, Manifest.checksumFileName,
                ]
            #expect(names == expected.sorted())
            let manifest = try CheckpointDirectory(path: directory).verify(step: 2)
            #expect(manifest.manifestVersion == 2)
            // Each node's file holds exactly its ranks' regions, in rank order, as its table says.
            let placement = simulatedNodes(ranks: ranks, nodes: nodes)
            for node in 0..<nodes {
                let file = try OpenFile.openForReading(folder + "/" + AggregateFile.fileName(node: node))
                let regions = try AggregateFile.readTable(file)
                // The fuzz target's aggregated-file mode reads a real file completely.
                let whole = try readFile(folder + "/" + AggregateFile.fileName(node: node))
                #expect(FuzzInput(mode: .aggregatedFile, body: whole).run() == nil)
                #expect(regions.map(\.rank) == placement.indices.filter { placement[$0] == "node-\(node)" })
                for region in regions {
                    #expect(manifest.shards[region.rank].offset == region.offset)
                    #expect(manifest.shards[region.rank].fileBytes == region.length)
                }
            }
            for (rank, restored) in try restoreAggregated(ranks: ranks, in: directory).enumerated() {
                let expected = try DistributedState(shape: Self.shape, rank: rank, of: ranks)
                #expect(restored.step == 2)
                #expect(restored.state.values == expected.values.map { $0 + 2 })
            }
        }
    }

    @Test("N → M restarts from aggregated files are bit-identical", arguments: [(8, 3, 3), (4, 6, 2), (6, 1, 4)])
    func repartition(saving: Int, restoring: Int, nodes: Int) throws {
        try withTemporaryDirectory { directory in
            try saveAggregated(Self.shape, ranks: saving, nodes: nodes, steps: [5], in: directory)
            let restored = try restoreAggregated(ranks: restoring, in: directory)
            for (rank, result) in restored.enumerated() {
                let block = try testBlock(Self.shape, rank: rank, of: restoring)
                #expect(result.state.block == block)
                #expect(result.state.values == blockValues(block).map { $0 + 5 })
            }
        }
    }

    @Test("A new rank reads only the regions that overlap its block")
    func readsOnlyItsRegions() throws {
        try withTemporaryDirectory { directory in
            try saveAggregated([40_000], ranks: 4, nodes: 2, steps: [1], in: directory)
            let checkpoints = CheckpointDirectory(path: directory)
            let reader = try checkpoints.openSnapshot(step: 1, rank: 0, rankCount: 8, threads: 2)
            let block = try testBlock([40_000], rank: 0, of: 8)
            #expect(try reader.read([Double].self, "values", block: block) == blockValues(block).map { $0 + 1 })
            #expect(reader.checkpoint.readSoFar.shardsOpened == [0])
        }
    }

    @Test("Asynchronous and incremental checkpoints aggregate; chunks are found in older aggregated files")
    func asynchronousIncremental() throws {
        try withTemporaryDirectory { directory in
            let configuration = {
                var configuration = aggregatedConfiguration(keepLast: 10)
                configuration.mode = .asynchronous()
                configuration.incremental = .on(fullEvery: 4)
                return configuration
            }()
            // Steps 1…3: only step's changes; most chunks are shared with older checkpoints.
            _ = try LocalGroup.run(ranks: 6, timeout: 60, nodes: simulatedNodes(ranks: 6, nodes: 2)) { communicator in
                let checkpointer = try Checkpointer(
                    directory: directory,
                    communicator: communicator,
                    configuration: configuration
                )
                var state = try DistributedState(shape: [50_000], rank: communicator.rank, of: 6)
                for step in 1...3 {
                    state.values[0] = Double(step)
                    try checkpointer.save(state, step: Step(rawValue: UInt64(step)))
                }
                try checkpointer.finish()
            }
            let manifest = try CheckpointDirectory(path: directory).verify(step: 3)
            #expect(manifest.incremental?.references.isEmpty == false, "step 3 uses chunks of older checkpoints")
            #expect(manifest.shards.allSatisfy { $0.offset != nil })
            let restored = try restoreAggregated(ranks: 6, in: directory)
            for (rank, result) in restored.enumerated() {
                var expected = blockValues(try testBlock([50_000], rank: rank, of: 6))
                expected[0] = 3
                #expect(result.step == 3)
                #expect(result.state.values == expected)
            }
        }
    }

    @Test("A damaged region or table is detected; restore falls back to the older checkpoint", arguments: [0, 1, 2])
    func corruptionFallsBack(damage: Int) throws {
        try withTemporaryDirectory { directory in
            try saveAggregated(Self.shape, ranks: 4, nodes: 2, steps: [1, 2], in: directory)
            let path = directory + "/" + CheckpointLayout.committedName(2) + "/" + AggregateFile.fileName(node: 1)
            var bytes = try readFile(path)
            let manifest = try CheckpointDirectory(path: directory).loadManifest(step: 2)
            switch damage {
            case 0:  // a byte in the middle of rank 3's region
                let shard = manifest.shards[3]
                bytes[try #require(shard.offset) + shard.fileBytes / 2] ^= 0x5A
            case 1:  // a byte of the table
                bytes[bytes.count - AggregateFile.footerSize - 10] ^= 0x01
            default:  // cut short
                bytes.removeLast(bytes.count / 3)
            }
            try writeFile(path, bytes)
            #expect(throws: CheckpointError.self) { try CheckpointDirectory(path: directory).verify(step: 2) }
            if damage == 1 {
                let file = try OpenFile.openForReading(path)
                let error = #expect(throws: CheckpointError.self) { try AggregateFile.readTable(file) }
                #expect(error?.code == .corruptData)
            }
            for result in try restoreAggregated(ranks: 4, in: directory) { #expect(result.step == 1) }
        }
    }

    @Test("A storage fault on one node's file fails every rank the same way; nothing is committed")
    func faultLeavesNothingCommitted() throws {
        try withStorageFaults {
            for operation in [StorageFault.Operation.open, .write, .sync] {
                try withTemporaryDirectory { directory in
                    try saveAggregated(Self.shape, ranks: 4, nodes: 2, steps: [1], in: directory)
                    StorageFaults.install([StorageFault(operation, pathContains: AggregateFile.fileName(node: 1))])
                    let errors = try LocalGroup.run(ranks: 4, timeout: 60, nodes: simulatedNodes(ranks: 4, nodes: 2)) {
                        communicator in
                        let checkpointer = try Checkpointer(
                            directory: directory,
                            communicator: communicator,
                            configuration: aggregatedConfiguration()
                        )
                        do {
                            try checkpointer.save(
                                try DistributedState(shape: Self.shape, rank: communicator.rank, of: 4),
                                step: 2
                            )
                            return nil as String?
                        } catch { return "\(error)" }
                    }
                    StorageFaults.removeAll()
                    #expect(errors.allSatisfy { $0 != nil && $0 == errors[0] }, "\(operation): \(errors)")
                    #expect(errors[0]?.contains("rank 2") == true, "names the aggregating rank: \(errors)")
                    #expect(try CheckpointDirectory(path: directory).committedSteps() == [1])
                    let names = try FileManager.default.contentsOfDirectory(atPath: directory)
                    #expect(!names.contains { $0.hasSuffix(".tmp") }, "\(operation): \(names)")
                }
            }
        }
    }

    @Test("Aggregation with redundancy is refused at configuration time")
    func refusedWithRedundancy() throws {
        var configuration = aggregatedConfiguration()
        configuration.redundancy = Checkpointer.Configuration.Redundancy(localDirectory: "/tmp/local")
        let error = #expect(throws: CheckpointError.self) { try configuration.validate() }
        #expect(error?.code == .invalidConfiguration)
        #expect(error?.message.contains("aggregation") == true)
    }

    @Test("A hostile table is refused before anything is allocated for it")
    func hostileTable() throws {
        let regions = [AggregateFile.Region(rank: 0, offset: 16, length: 4, sha256: sha256([1, 2, 3, 4]))]
        let good = AggregateFile.header() + [1, 2, 3, 4] + AggregateFile.trailer(regions, tableOffset: 20)
        #expect(try AggregateFile.readTable(MemoryByteSource(good)) == regions)
        var huge = good
        // A region count of 2^32 - 1: refused by the footer's consistency check, not allocated.
        let count = huge.count - AggregateFile.footerSize + 8
        for index in count..<count + 4 { huge[index] = 0xFF }
        #expect(throws: CheckpointError.self) { try AggregateFile.readTable(MemoryByteSource(huge)) }
        #expect(throws: CheckpointError.self) { try AggregateFile.readTable(MemoryByteSource(Array(good.dropLast(1)))) }
    }
}
