import Foundation
import Testing

@_spi(Testing) @testable import Checkpoint

@Suite("Node-local checkpoints, partner copies and flushes")
struct RedundancyTests {
    /// Four ranks on two simulated nodes: ranks 0 and 1 on "a", 2 and 3 on "b".
    static let nodes = ["a", "a", "b", "b"]

    @Test("Partners are chosen on another node")
    func partnerMap() {
        let map = PartnerMap(nodes: Self.nodes)
        #expect(map.partner == [2, 3, 0, 1])
        for rank in 0..<4 {
            #expect(Self.nodes[map.partner[rank]] != Self.nodes[rank])
            #expect(map.partner[map.held[rank]] == rank)
        }
        #expect(!map.partnersShareNode)
        let interleaved = PartnerMap(nodes: ["x", "y", "x", "y", "x", "y"])
        for rank in 0..<6 { #expect(interleaved.partner[rank] % 2 != rank % 2) }
        let single = PartnerMap(nodes: ["n", "n", "n"])
        #expect(single.partner == [1, 2, 0])
        #expect(single.partnersShareNode)
        #expect(PartnerMap(nodes: ["n"]).partner == [0])
    }

    @Test("Each rank keeps its shard and its partner's node-locally; every K-th checkpoint is flushed")
    func layout() throws {
        try withLevels { shared, local in
            try run(steps: 1...4, shared: shared, local: local)
            #expect(try CheckpointDirectory(path: shared).committedSteps() == [3])
            for rank in 0..<4 {
                let store = CheckpointDirectory(path: local + "/rank-0000\(rank)")
                #expect(try store.committedSteps() == [2, 3, 4])  // keepLast 3
                let files = try FileManager.default.contentsOfDirectory(atPath: store.path(for: 4)).sorted()
                let held = PartnerMap(nodes: Self.nodes).held[rank]
                #expect(
                    files
                        == [
                            Manifest.fileName, Manifest.checksumFileName, "rank-0000\(rank).snap",
                            "rank-0000\(held).snap",
                        ]
                        .sorted()
                )
            }
            #expect(try restore(shared: shared, local: local) == 4)
        }
    }

    @Test("A lost node's shards come back from the partners' copies")
    func lostNode() throws {
        try withLevels { shared, local in
            try run(steps: 1...4, shared: shared, local: local)
            try FileManager.default.removeItem(atPath: local + "/rank-00002")
            try FileManager.default.removeItem(atPath: local + "/rank-00003")
            #expect(try restore(shared: shared, local: local) == 4)
            for rank in [2, 3] {
                let store = CheckpointDirectory(path: local + "/rank-0000\(rank)")
                #expect(try store.committedSteps() == [4], "the recovered shard is node-local again")
            }
            // The next checkpoint restores full redundancy: losing the other node is survivable.
            try run(steps: 5...5, shared: shared, local: local)
            try FileManager.default.removeItem(atPath: local + "/rank-00000")
            try FileManager.default.removeItem(atPath: local + "/rank-00001")
            #expect(try restore(shared: shared, local: local) == 5)
        }
    }

    @Test("A shard lost with its partner copy falls back to the newest flushed checkpoint")
    func lostShardAndCopy() throws {
        try withLevels { shared, local in
            try run(steps: 1...4, shared: shared, local: local)
            // Rank 2's copy lives with rank 0.
            try FileManager.default.removeItem(atPath: local + "/rank-00002")
            try FileManager.default.removeItem(atPath: local + "/rank-00000")
            #expect(try restore(shared: shared, local: local) == 3)
        }
    }

    @Test("Without partner copies a lost node falls back to the shared directory")
    func withoutPartners() throws {
        try withLevels { shared, local in
            try run(steps: 1...4, shared: shared, local: local, partnerCopy: false)
            let files = try FileManager.default.contentsOfDirectory(atPath: local + "/rank-00001/ckpt-000000000004")
            #expect(files.filter { $0.hasSuffix(".snap") } == ["rank-00001.snap"])
            try FileManager.default.removeItem(atPath: local + "/rank-00001")
            #expect(try restore(shared: shared, local: local, partnerCopy: false) == 3)
        }
    }

    @Test("All node-local storage lost: the newest flushed checkpoint; nothing at all: a fresh start")
    func everythingLocalLost() throws {
        try withLevels { shared, local in
            try run(steps: 1...2, shared: shared, local: local)
            try FileManager.default.removeItem(atPath: local)
            #expect(try restore(shared: shared, local: local) == nil)
            // A new run counts its checkpoints afresh: the 3rd (step 5) is flushed.
            try run(steps: 3...7, shared: shared, local: local)
            try FileManager.default.removeItem(atPath: local)
            #expect(try restore(shared: shared, local: local) == 5)
        }
    }

    @Test("A damaged node-local shard falls back to an older checkpoint")
    func damagedLocalShard() throws {
        try withLevels { shared, local in
            try run(steps: 1...4, shared: shared, local: local)
            let path = local + "/rank-00001/ckpt-000000000004/rank-00001.snap"
            var bytes = try readFile(path)
            bytes[bytes.count / 2] ^= 0xFF
            try writeFile(path, bytes)
            #expect(try restore(shared: shared, local: local) == 3)
        }
    }

    @Test("Asynchronous checkpoints with redundancy")
    func asynchronous() throws {
        try withLevels { shared, local in
            try run(steps: 1...5, shared: shared, local: local, asynchronous: true)
            try FileManager.default.removeItem(atPath: local + "/rank-00003")
            #expect(try restore(shared: shared, local: local) == 5)
        }
    }

    @Test("A rank that cannot write node-locally fails the checkpoint on every rank; nothing half-committed")
    func localFailure() throws {
        try withStorageFaults {
            try withLevels { shared, local in
                try run(steps: 1...1, shared: shared, local: local)
                StorageFaults.install([StorageFault(.write, pathContains: local, "rank-00002.snap")])
                defer { StorageFaults.removeAll() }
                let errors = try LocalGroup.run(ranks: 4, timeout: 60, nodes: Self.nodes) { communicator -> String? in
                    let checkpointer = try Checkpointer(
                        directory: shared,
                        communicator: communicator,
                        configuration: Self.configuration(local: local)
                    )
                    do {
                        try checkpointer.save(Self.state(rank: communicator.rank, step: 2), step: 2)
                        return nil
                    } catch let error as CheckpointError {
                        return error.message
                    }
                }
                StorageFaults.removeAll()
                #expect(errors.allSatisfy { $0 != nil && $0 == errors[0] }, "\(errors)")
                for rank in 0..<4 {
                    #expect(try CheckpointDirectory(path: local + "/rank-0000\(rank)").committedSteps() == [1])
                }
                #expect(try restore(shared: shared, local: local) == 1)
            }
        }
    }

    @Test("The checkpoint taken because the job must stop is flushed to the shared directory")
    func stopIsFlushed() throws {
        try withLevels { shared, local in
            _ = try LocalGroup.run(ranks: 4, timeout: 60, nodes: Self.nodes) { communicator in
                var configuration = Self.configuration(local: local)
                configuration.policy = .never
                configuration.deadline = .after(seconds: 0)
                let checkpointer = try Checkpointer(
                    directory: shared,
                    communicator: communicator,
                    configuration: configuration
                )
                #expect(try checkpointer.checkpoint(Self.state(rank: communicator.rank, step: 1), step: 1) != nil)
                #expect(checkpointer.shouldStop)
            }
            #expect(try CheckpointDirectory(path: shared).committedSteps() == [1])
            try FileManager.default.removeItem(atPath: local)
            #expect(try restore(shared: shared, local: local) == 1)
        }
    }

    /// A distributed array for the migration test: rank `part` of `parts` holds its rows of 12×5.
    private struct Rows: Checkpointable, Equatable {
        static let shape = [12, 5]
        var layout: BlockLayout
        var values: [Double]

        init(part: Int, of parts: Int, step: Int) throws {
            layout = try BlockLayout.partition(Self.shape, part: part, of: parts)
            let first = layout.offset[0] * Self.shape[1]
            values = (first..<first + layout.elementCount).map { Double($0 * 10 + step) }
        }

        init(from reader: SnapshotReader) throws {
            layout = try BlockLayout.partition(Self.shape, part: reader.rank, of: reader.rankCount)
            values = try reader.read([Double].self, "rows", block: layout)
        }

        func save(to writer: inout SnapshotWriter) throws { try writer.write(values, as: "rows", block: layout) }
    }

    @Test("A restart on another number of ranks reads node-local copies where they are, else the flushed checkpoint")
    func migrationReadsTheSharedCopy() throws {
        try withLevels { shared, local in
            _ = try LocalGroup.run(ranks: 4, timeout: 60, nodes: Self.nodes) { communicator in
                let checkpointer = try Checkpointer(
                    directory: shared,
                    communicator: communicator,
                    configuration: Self.configuration(local: local)
                )
                for step in 1...4 {
                    try checkpointer.save(try Rows(part: communicator.rank, of: 4, step: step), step: Step(step))
                }
            }
            func restartOnThreeRanks() throws -> [(state: Rows, step: Step)] {
                try LocalGroup.run(ranks: 3, timeout: 60) { communicator in
                    let checkpointer = try Checkpointer(
                        directory: shared,
                        communicator: communicator,
                        configuration: Self.configuration(local: local)
                    )
                    return try #require(try checkpointer.restoreLatest(Rows.self))
                }
            }
            // Every old rank's node-local folder is on this machine: the newest step is readable.
            for (rank, result) in try restartOnThreeRanks().enumerated() {
                #expect(result.step == 4, "the node-local step 4, read on another number of ranks")
                #expect(result.state == (try Rows(part: rank, of: 3, step: 4)))
            }
            // Without the node-local folders, the newest flushed checkpoint.
            try FileManager.default.removeItem(atPath: local)
            for (rank, result) in try restartOnThreeRanks().enumerated() {
                #expect(result.step == 3, "the flushed checkpoint, not the lost node-local step 4")
                #expect(result.state == (try Rows(part: rank, of: 3, step: 3)))
            }
        }
    }

    @Test("An incremental checkpoint restores on another number of ranks")
    func incrementalMigration() throws {
        try withTemporaryDirectory { directory in
            _ = try LocalGroup.run(ranks: 4, timeout: 60) { communicator in
                var configuration = testConfiguration()
                configuration.incremental = .on(fullEvery: 10)
                let checkpointer = try Checkpointer(
                    directory: directory,
                    communicator: communicator,
                    configuration: configuration
                )
                // Only rank 0's rows change after step 1: the others' chunks are references.
                for step in 1...3 {
                    let rows = try Rows(part: communicator.rank, of: 4, step: communicator.rank == 0 ? step : 1)
                    try checkpointer.save(rows, step: Step(step))
                }
            }
            let manifest = try CheckpointDirectory(path: directory).loadManifest(step: 3)
            #expect(manifest.shards[1].references == [1], "rank 1's unchanged rows are referenced")
            let restored = try LocalGroup.run(ranks: 3, timeout: 60) { communicator in
                try #require(
                    try Checkpointer(directory: directory, communicator: communicator).restoreLatest(Rows.self)
                )
            }
            // Global element i holds i * 10 + step, where rank 0's old rows (0..<3) were saved at step 3.
            let values: [Double] = restored.flatMap(\.state.values)
            let expected: [Double] = (0..<60).map { (index: Int) -> Double in
                let step = index < 15 ? 3 : 1
                return Double(index * 10 + step)
            }
            #expect(values == expected)
        }
    }

    @Test("Invalid redundancy settings are rejected")
    func invalid() {
        var configuration = Checkpointer.Configuration()
        configuration.redundancy = .init(localDirectory: "/tmp/x", flushEvery: 0)
        #expect(throws: CheckpointError.self) { try configuration.validate() }
        configuration.redundancy = .init(localDirectory: "")
        #expect(throws: CheckpointError.self) { try configuration.validate() }
        // Redundancy combines with incremental checkpoints and process dumps.
        configuration.redundancy = .init(localDirectory: "/tmp/x")
        configuration.incremental = .on(fullEvery: 5)
        configuration.processDumps = ProcessDumps(dumper: CommandDumper(commandLine: "true"))
        #expect(throws: Never.self) { try configuration.validate() }
    }

    // MARK: Helpers

    static func configuration(
        local: String,
        partnerCopy: Bool = true,
        asynchronous: Bool = false
    )
        -> Checkpointer.Configuration
    {
        var configuration = testConfiguration()
        configuration.redundancy = .init(localDirectory: local, partnerCopy: partnerCopy, flushEvery: 3)
        if asynchronous { configuration.mode = .asynchronous() }
        return configuration
    }

    static func state(rank: Int, step: Int) -> RankState { RankState(rank: rank, seed: UInt64(step) * 31) }

    private func withLevels(_ body: (String, String) throws -> Void) throws {
        try withTemporaryDirectory { root in try body(root + "/shared", root + "/local") }
    }

    private func run(
        steps: ClosedRange<Int>,
        shared: String,
        local: String,
        partnerCopy: Bool = true,
        asynchronous: Bool = false
    ) throws {
        _ = try LocalGroup.run(ranks: 4, timeout: 60, nodes: Self.nodes) { communicator in
            let checkpointer = try Checkpointer(
                directory: shared,
                communicator: communicator,
                configuration: Self.configuration(local: local, partnerCopy: partnerCopy, asynchronous: asynchronous)
            )
            for step in steps {
                _ = try checkpointer.checkpoint(Self.state(rank: communicator.rank, step: step), step: Step(step))
            }
            try checkpointer.finish()
        }
    }

    /// Restores on four ranks; checks every rank got exactly its state of the step restored.
    private func restore(shared: String, local: String, partnerCopy: Bool = true) throws -> Int? {
        let results = try LocalGroup.run(ranks: 4, timeout: 60, nodes: Self.nodes) { communicator in
            let checkpointer = try Checkpointer(
                directory: shared,
                communicator: communicator,
                configuration: Self.configuration(local: local, partnerCopy: partnerCopy)
            )
            return try checkpointer.restoreLatest(RankState.self).map { ($0.state, Int($0.step.rawValue)) }
        }
        let steps = Set(results.map { $0?.1 })
        #expect(steps.count == 1, "ranks restored different steps: \(steps)")
        for (rank, result) in results.enumerated() {
            if let (state, step) = result { #expect(state == Self.state(rank: rank, step: step)) }
        }
        return results[0]?.1
    }
}
