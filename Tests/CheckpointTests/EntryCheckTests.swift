import Foundation
import Testing

@testable import Checkpoint

/// State whose `save(to:)` writes one name twice while `broken` is set.
private final class Twice: Checkpointable, @unchecked Sendable {
    var broken: Bool
    init(broken: Bool) { self.broken = broken }
    func save(to writer: inout SnapshotWriter) throws {
        try writer.write([1.0], as: "x")
        try writer.write([2.0], as: broken ? "x" : "y")
    }
    init(from reader: SnapshotReader) throws { broken = false }
}

@Suite("Entry checks")
struct EntryCheckTests {
    @Test("The registry's duplicate message names unregister")
    func duplicateRegistration() throws {
        let registry = StateRegistry()
        let sim = LegacySimulation()
        try registry.register("a/b", sim, \.time)
        let same = try #require(throws: CheckpointError.self) { try registry.register("a/b", sim, \.step) }
        #expect(same.code == .duplicateName)
        #expect(same.message.contains("registry.unregister(\"a/b\")"), "\(same.message)")
        let overlap = try #require(throws: CheckpointError.self) { try registry.register("a", sim, \.step) }
        #expect(overlap.message.contains("overlaps 'a/b'") && overlap.message.contains("unregister(\"a/b\")"))
    }

    @Test(
        "A duplicate entry name surfaces at the first safe point, long before a checkpoint is due",
        arguments: [1, 3]
    )
    func firstSafePoint(ranks: Int) throws {
        try withTemporaryDirectory { directory in
            var configuration = Checkpointer.Configuration()
            configuration.policy = .everySteps(1_000)
            let codes = try LocalGroup.run(ranks: ranks, timeout: 60) { [configuration] communicator in
                let checkpointer = try Checkpointer(
                    directory: directory,
                    communicator: communicator,
                    configuration: configuration
                )
                let state = Twice(broken: communicator.rank == ranks - 1)
                let error = try #require(throws: CheckpointError.self) {
                    try checkpointer.checkpoint(state, step: 1)
                }
                #expect(try checkpointer.checkpoints().isEmpty)
                // Checked once: later safe points cost nothing until a checkpoint is due.
                #expect(try checkpointer.checkpoint(state, step: 2) == nil)
                return error.code
            }
            #expect(codes.allSatisfy { $0 == .duplicateName }, "\(codes)")
        }
    }

    @Test(
        "The first safe point reports entry mistakes only: the application's own save failure waits for a due checkpoint"
    )
    func firstSafePointIgnoresOtherFailures() throws {
        try withTemporaryDirectory { directory in
            var configuration = Checkpointer.Configuration()
            configuration.policy = .everySteps(2)
            let checkpointer = try Checkpointer(directory: directory, configuration: configuration)
            let failing = FailingState(inner: RankState(rank: 0, seed: 1), failOn: 0)
            #expect(try checkpointer.checkpoint(failing, step: 1) == nil)
            #expect(throws: SaveFailure.self) { try checkpointer.checkpoint(failing, step: 2) }
        }
    }

    @Test("Asynchronously, a duplicate entry name throws at its own safe point on every rank, not one checkpoint late")
    func asynchronousStaging() throws {
        try withTemporaryDirectory { directory in
            var configuration = Checkpointer.Configuration()
            configuration.policy = .everySteps(2)
            configuration.mode = .asynchronous()
            let codes = try LocalGroup.run(ranks: 2, timeout: 60) { [configuration] communicator in
                let checkpointer = try Checkpointer(
                    directory: directory,
                    communicator: communicator,
                    configuration: configuration
                )
                let state = Twice(broken: false)
                #expect(try checkpointer.checkpoint(state, step: 1) == nil)  // the first safe point: names are fine
                state.broken = communicator.rank == 1
                let error = try #require(throws: CheckpointError.self) {
                    try checkpointer.checkpoint(state, step: 2)
                }
                state.broken = false
                try checkpointer.finish()
                #expect(try checkpointer.checkpoints().isEmpty)
                return error.code
            }
            #expect(codes == [.duplicateName, .duplicateName])
        }
    }
}
