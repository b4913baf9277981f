import Foundation
import Testing

@testable import Checkpoint

/// One rank's state: a field that depends on the rank, so swapped shards would show.
struct RankState: Checkpointable, Equatable {
    var field: [Double]
    var rank: Int

    init(rank: Int, seed: UInt64) {
        self.rank = rank
        field = smoothField(1500 + rank * 7, seed: seed &+ UInt64(rank))
    }

    func save(to writer: inout SnapshotWriter) throws {
        try writer.write(field, as: "field")
        try writer.write(value: rank, as: "rank")
    }

    init(from reader: SnapshotReader) throws {
        field = try reader.read([Double].self, "field")
        rank = try reader.read(Int.self, "rank")
    }
}

struct SaveFailure: Error {}

/// Fails on one chosen rank while saving.
struct FailingState: Checkpointable {
    var inner: RankState
    var failOn: Int

    func save(to writer: inout SnapshotWriter) throws {
        if inner.rank == failOn { throw SaveFailure() }
        try inner.save(to: &writer)
    }

    init(from reader: SnapshotReader) throws { fatalError("not used") }
    init(inner: RankState, failOn: Int) {
        self.inner = inner
        self.failOn = failOn
    }
}

@Suite("Coordinated checkpoints across ranks")
struct CoordinatedCheckpointTests {
    @Test("Commit and restart agreement", arguments: [1, 2, 3, 4, 8])
    func commitAndRestore(ranks: Int) throws {
        try withTemporaryDirectory { directory in
            let restored = try LocalGroup.run(ranks: ranks, timeout: 60) { communicator in
                let checkpointer = try Checkpointer(
                    directory: directory,
                    communicator: communicator,
                    configuration: testConfiguration(threads: 1)
                )
                try checkpointer.save(RankState(rank: communicator.rank, seed: 1), step: 1)
                let manifest = try checkpointer.save(RankState(rank: communicator.rank, seed: 2), step: 2)
                #expect(manifest.rankCount == ranks)
                #expect(manifest.shards.map(\.rank) == Array(0..<ranks))
                return try #require(try checkpointer.restoreLatest(RankState.self))
            }
            for (rank, result) in restored.enumerated() {
                #expect(result.step == 2)
                #expect(result.state == RankState(rank: rank, seed: 2))
            }
            try CheckpointDirectory(path: directory).verify(step: 2)
            #expect(try CheckpointDirectory(path: directory).committedSteps() == [1, 2])
        }
    }

    @Test("A rank that throws while saving aborts the checkpoint on every rank; nothing is committed")
    func rankThrowsDuringSave() throws {
        try withTemporaryDirectory { directory in
            let errors = Survivors()
            _ = try LocalGroup.run(ranks: 4, timeout: 60) { communicator in
                let rank = communicator.rank
                let checkpointer = try Checkpointer(
                    directory: directory,
                    communicator: communicator,
                    configuration: testConfiguration(threads: 1)
                )
                try checkpointer.save(RankState(rank: rank, seed: 1), step: 1)
                do {
                    try checkpointer.save(FailingState(inner: RankState(rank: rank, seed: 2), failOn: 2), step: 2)
                    Issue.record("rank \(rank): the save should have failed")
                } catch is SaveFailure {
                    #expect(rank == 2, "only the failing rank sees its own error")
                } catch let error as CheckpointError {
                    #expect(error.message.contains("rank 2"))
                    errors.record(error.code)
                }
                // The group keeps working, and the previous checkpoint is still the newest.
                let restored = try #require(try checkpointer.restoreLatest(RankState.self))
                #expect(restored.step == 1)
                #expect(restored.state == RankState(rank: rank, seed: 1))
            }
            #expect(errors.codes.count == 3)
            #expect(Set(errors.codes) == [.peerFailed])
            let names = try FileManager.default.contentsOfDirectory(atPath: directory)
            #expect(names.sorted() == [".lock", "ckpt-000000000001"])
        }
    }

    @Test("A corrupt shard of one rank makes every rank fall back together")
    func oneRankCorrupt() throws {
        try withTemporaryDirectory { directory in
            _ = try LocalGroup.run(ranks: 4, timeout: 60) { communicator in
                let checkpointer = try Checkpointer(
                    directory: directory,
                    communicator: communicator,
                    configuration: testConfiguration(threads: 1)
                )
                try checkpointer.save(RankState(rank: communicator.rank, seed: 1), step: 1)
                try checkpointer.save(RankState(rank: communicator.rank, seed: 2), step: 2)
            }
            let shard =
                CheckpointDirectory(path: directory).path(for: 2) + "/" + CheckpointDirectory.shardFileName(rank: 3)
            var bytes = try readFile(shard)
            bytes[100] ^= 0xFF
            try writeFile(shard, bytes)
            let restored = try LocalGroup.run(ranks: 4, timeout: 60) { communicator in
                let checkpointer = try Checkpointer(
                    directory: directory,
                    communicator: communicator,
                    configuration: testConfiguration(threads: 1)
                )
                return try #require(try checkpointer.restoreLatest(RankState.self))
            }
            for (rank, result) in restored.enumerated() {
                #expect(result.step == 1)
                #expect(result.state == RankState(rank: rank, seed: 1))
            }
        }
    }

    @Test("Restarting on another rank count is a clear error on every rank")
    func rankCountMismatch() throws {
        try withTemporaryDirectory { directory in
            _ = try LocalGroup.run(ranks: 4, timeout: 60) { communicator in
                try Checkpointer(
                    directory: directory,
                    communicator: communicator,
                    configuration: testConfiguration(threads: 1)
                )
                .save(RankState(rank: communicator.rank, seed: 1), step: 1)
            }
            let codes = Survivors()
            #expect(throws: CheckpointError.self) {
                try LocalGroup.run(ranks: 2, timeout: 60) { communicator in
                    let checkpointer = try Checkpointer(
                        directory: directory,
                        communicator: communicator,
                        configuration: testConfiguration(threads: 1)
                    )
                    do { _ = try checkpointer.restoreLatest(RankState.self) } catch let error as CheckpointError {
                        codes.record(error.code)
                        #expect(error.message.contains("4 ranks"))
                        throw error
                    }
                }
            }
            #expect(codes.codes == [.rankCountMismatch, .rankCountMismatch])
        }
    }

    @Test("Safe points follow rank 0's decision, so a time-based policy cannot split the ranks")
    func collectiveDecision() throws {
        try withTemporaryDirectory { directory in
            let taken = try LocalGroup.run(ranks: 3, timeout: 60) { communicator in
                var configuration = testConfiguration(threads: 1)
                configuration.policy = .every(seconds: 0)
                configuration.retention.keepLast = 100
                let checkpointer = try Checkpointer(
                    directory: directory,
                    communicator: communicator,
                    configuration: configuration
                )
                var steps: [Step] = []
                for step in 1...5
                where try checkpointer.checkpoint(RankState(rank: communicator.rank, seed: 1), step: Step(step)) != nil
                {
                    steps.append(Step(step))
                }
                return steps
            }
            #expect(taken.allSatisfy { $0 == taken[0] })
            #expect(taken[0] == [1, 2, 3, 4, 5])
        }
    }

    @Test("Paced decisions: ranks at different speeds with a time-based policy agree on every checkpoint")
    func pacedDecisions() throws {
        try withTemporaryDirectory { directory in
            let taken = try LocalGroup.run(ranks: 3, timeout: 60) { communicator in
                var configuration = testConfiguration(threads: 1)
                configuration.policy = .every(seconds: 0.05)
                configuration.retention.keepLast = 1_000
                let checkpointer = try Checkpointer(
                    directory: directory,
                    communicator: communicator,
                    configuration: configuration
                )
                var steps: [Step] = []
                for step in 1...150 {
                    if communicator.rank == 1 { usleep(1_000) }  // one slow rank
                    let state = RankState(rank: communicator.rank, seed: UInt64(step))
                    if try checkpointer.checkpoint(state, step: Step(step)) != nil { steps.append(Step(step)) }
                }
                return steps
            }
            #expect(taken.allSatisfy { $0 == taken[0] })
            // Rank 1 sleeps at least 150 ms in all and every decision waits for it, so some decision
            // comes after the policy's 50 ms. How many do depends on the machine's speed and load,
            // so the count is not checked (whether a 50 ms policy fires is the policy's own test,
            // on a context whose times are given).
            #expect(!taken[0].isEmpty)
            #expect(try CheckpointDirectory(path: directory).committedSteps() == taken[0])
        }
    }

    @Test("The registry restores on every rank")
    func registryAcrossRanks() throws {
        try withTemporaryDirectory { directory in
            let values = try LocalGroup.run(ranks: 3, timeout: 60) { communicator in
                let sim = LegacySimulation()
                sim.time = Double(communicator.rank) + 0.5
                do {
                    let checkpointer = try Checkpointer(
                        directory: directory,
                        communicator: communicator,
                        configuration: testConfiguration(threads: 1)
                    )
                    try checkpointer.registry.register("time", sim, \.time)
                    try checkpointer.save(step: 4)
                }
                sim.time = -1
                let checkpointer = try Checkpointer(
                    directory: directory,
                    communicator: communicator,
                    configuration: testConfiguration(threads: 1)
                )
                try checkpointer.registry.register("time", sim, \.time)
                #expect(try checkpointer.restoreLatest() == 4)
                return sim.time
            }
            #expect(values == [0.5, 1.5, 2.5])
        }
    }
}
