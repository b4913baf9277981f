import Foundation
import Testing

@_spi(Testing) @testable import Checkpoint

/// Every combination of the pipeline's stages round-trips, and a crash at every named point of it
/// keeps the newest committed checkpoint (and only committed ones) restorable.
@Suite("Commit pipeline combinations")
struct PipelineCombinationTests {
    /// A combination of features, and the crash points its commits pass through.
    struct Combination: CustomTestStringConvertible, Sendable {
        var name: String
        var ranks = 2
        var redundancy = false
        var incremental = false
        var dumps = false
        var asynchronous = false
        var marker = false
        var aggregation = false
        /// The simulated node of each rank.
        var nodes = ["a", "b"]
        /// Crash tests flush every checkpoint, so that the flush's points are reached.
        var flushEvery = 3

        var testDescription: String { name }

        func configuration(local: String, imagesLog: String) -> Checkpointer.Configuration {
            var configuration = testConfiguration(keepLast: 2)
            if redundancy { configuration.redundancy = .init(localDirectory: local, flushEvery: flushEvery) }
            if incremental { configuration.incremental = .on(fullEvery: 3) }
            if asynchronous { configuration.mode = .asynchronous() }
            if marker { configuration.commitMethod = .marker }
            if aggregation { configuration.aggregation = .perNode }
            if dumps {
                configuration.processDumps = ProcessDumps(
                    dumper: CommandDumper(arguments: ["/bin/sh", "-c", "echo {step} {rank} > {dir}/image"])
                )
            }
            return configuration
        }

        /// The points a commit passes through (flushed, with redundancy: see ``flushEvery``).
        var points: [CrashPoint] {
            let store = StoreCommitPoint.allCases.filter { !marker || $0 != .checksumWritten }
            var points: [CrashPoint] = [.shardWritten]
            if aggregation { points.append(.aggregateWritten) }
            if redundancy { points.append(.partnerCopied) }
            points += store.map(CrashPoint.committing)
            if redundancy { points += [.flushCopied] + store.map(CrashPoint.flushing) }
            points.append(.retentionApplied)
            if dumps { points.append(.dumped) }
            return points
        }
    }

    static let combinations: [Combination] = [
        Combination(name: "plain"),
        Combination(name: "marker store", marker: true),
        Combination(name: "redundancy", redundancy: true),
        Combination(name: "redundancy + incremental", redundancy: true, incremental: true),
        Combination(name: "redundancy + dumps", redundancy: true, dumps: true),
        Combination(name: "redundancy + marker store", redundancy: true, marker: true),
        Combination(name: "incremental + marker store", incremental: true, marker: true),
        Combination(name: "asynchronous + dumps", dumps: true, asynchronous: true),
        Combination(
            name: "asynchronous + redundancy + incremental",
            redundancy: true,
            incremental: true,
            asynchronous: true
        ),
        Combination(name: "aggregation", ranks: 4, aggregation: true, nodes: ["a", "a", "b", "b"]),
        Combination(
            name: "asynchronous + incremental + marker store + aggregation",
            ranks: 3,
            incremental: true,
            asynchronous: true,
            marker: true,
            aggregation: true,
            nodes: ["a", "a", "b"]
        ),
    ]

    static func state(rank: Int, step: Int) -> ArrayState<Double> {
        // Most chunks stay the same from step to step (incremental references them).
        ArrayState((0..<6_000).map { Double(rank * 100_000 + $0) + ($0 < 500 ? Double(step) : 0) })
    }

    /// Runs steps on every rank (through safe points in asynchronous mode), with an optional crash.
    static func run(
        _ combination: Combination,
        steps: ClosedRange<Int>,
        root: String,
        crash: CrashPoint? = nil
    ) throws -> [Step?] {
        try LocalGroup.run(ranks: combination.ranks, timeout: 30, nodes: combination.nodes) { communicator in
            let checkpointer = try Checkpointer(
                directory: root + "/shared",
                communicator: communicator,
                configuration: combination.configuration(local: root + "/local", imagesLog: root + "/log")
            )
            let restored = try checkpointer.restoreLatest(ArrayState<Double>.self)
            if let restored {
                #expect(restored.state == Self.state(rank: communicator.rank, step: Int(restored.step.rawValue)))
            }
            for step in steps where Step(step) > (restored?.step ?? 0) {
                // The crash is armed for the last step of the range.
                if step == steps.upperBound, let crash { checkpointer.injectCrash(at: crash) }
                let state = Self.state(rank: communicator.rank, step: step)
                if combination.asynchronous {
                    try checkpointer.checkpoint(state, step: Step(step))
                    try checkpointer.finish()
                } else {
                    try checkpointer.save(state, step: Step(step))
                }
            }
            return restored?.step
        }
    }

    @Test("Each combination round-trips", arguments: combinations)
    func roundTrip(_ combination: Combination) throws {
        try withTemporaryDirectory { root in
            _ = try Self.run(combination, steps: 1...4, root: root)
            let restarted = try Self.run(combination, steps: 1...5, root: root)
            #expect(restarted.allSatisfy { $0 == 4 })
            try Self.expectNoTemporaries(root)
            for step in try CheckpointDirectory(path: root + "/shared").committedSteps() {
                try CheckpointDirectory(path: root + "/shared").verify(step: step)
            }
        }
    }

    @Test("A crash at every named point of each combination loses nothing", arguments: combinations)
    func crashes(_ combination: Combination) throws {
        var combination = combination
        combination.flushEvery = 1
        for point in combination.points {
            try withTemporaryDirectory { root in
                _ = try Self.run(combination, steps: 1...2, root: root)
                #expect(throws: (any Error).self, "\(combination.name), \(point)") {
                    try Self.run(combination, steps: 1...3, root: root, crash: point)
                }
                // Restart: the newest committed checkpoint comes back, nothing uncommitted does.
                let restarted = try Self.run(combination, steps: 1...4, root: root)
                let expected: Step = point.leavesCheckpointCommitted ? 3 : 2
                #expect(restarted.allSatisfy { $0 == expected }, "\(combination.name), crash at \(point): \(restarted)")
                try Self.expectNoTemporaries(root)
            }
        }
    }

    @Test(
        "A step committed on some ranks only is discarded at restart and saved again",
        arguments: [false, true]
    )
    func partlyCommittedStep(marker: Bool) throws {
        let combination = Combination(name: "redundancy", redundancy: true, marker: marker, flushEvery: 10)
        try withTemporaryDirectory { root in
            _ = try Self.run(combination, steps: 1...3, root: root)
            // Step 3 as a crash between the ranks' node-local commits leaves it: rank 1 never
            // committed it, and so rank 0 holds no copy of rank 1's shard either.
            let local = root + "/local"
            try FileManager.default.removeItem(atPath: local + "/rank-00001/ckpt-000000000003")
            try FileManager.default.removeItem(atPath: local + "/rank-00000/ckpt-000000000003/rank-00001.snap")
            let restarted = try Self.run(combination, steps: 1...5, root: root)
            #expect(restarted.allSatisfy { $0 == 2 })
            #expect(!marker || FileManager.default.fileExists(atPath: local + "/rank-00000/ckpt-000000000005"))
            let again = try Self.run(combination, steps: 1...5, root: root)
            #expect(again.allSatisfy { $0 == 5 })
        }
    }

    @Test(
        "A damaged newest checkpoint stays for inspection and is replaced when its step is written again",
        arguments: [false, true]
    )
    func damagedNewestReplaced(marker: Bool) throws {
        let combination = Combination(name: "plain", marker: marker)
        try withTemporaryDirectory { root in
            _ = try Self.run(combination, steps: 1...3, root: root)
            let shard = root + "/shared/ckpt-000000000003/rank-00001.snap"
            var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: shard)))
            bytes[bytes.count / 2] ^= 0xFF
            try Data(bytes).write(to: URL(fileURLWithPath: shard))
            // The restart falls back to step 2 and runs on to step 3 only: the damaged one is there
            // until its step is written again.
            #expect(try Self.run(combination, steps: 1...2, root: root).allSatisfy { $0 == 2 })
            #expect(FileManager.default.fileExists(atPath: shard))
            #expect(try Self.run(combination, steps: 1...4, root: root).allSatisfy { $0 == 2 })
            #expect(try Self.run(combination, steps: 1...4, root: root).allSatisfy { $0 == 4 })
            try CheckpointDirectory(path: root + "/shared").verify(step: 3)
        }
    }

    @Test(
        "A node-local shard that cannot be read fails the restart with the read error, not 'missing'",
        arguments: [StorageFault.Operation.open, .read],
        [false, true]
    )
    func unreadableLocalShard(operation: StorageFault.Operation, incremental: Bool) throws {
        try withStorageFaults {
            let combination = Combination(
                name: "redundancy",
                redundancy: true,
                incremental: incremental,
                flushEvery: 10
            )
            try withTemporaryDirectory { root in
                // Nothing is flushed: the shards live node-locally only.
                _ = try Self.run(combination, steps: 1...2, root: root)
                StorageFaults.install([
                    StorageFault(operation, pathContains: root + "/local", "rank-00001.snap")
                ])
                defer { StorageFaults.removeAll() }
                #expect {
                    try Self.run(combination, steps: 1...2, root: root)
                } throws: { error in
                    let error = try #require(error as? CheckpointError)
                    return error.code == .ioFailure && error.description.contains(String(cString: strerror(EIO)))
                }
                StorageFaults.removeAll()
                // Nothing was discarded for it: once the storage recovers, the checkpoint restores.
                #expect(try Self.run(combination, steps: 1...2, root: root).allSatisfy { $0 == 2 })
            }
        }
    }

    static func expectNoTemporaries(_ root: String) throws {
        var folders = [root + "/shared"]
        let local = root + "/local"
        if let ranks = try? FileManager.default.contentsOfDirectory(atPath: local) {
            folders += ranks.map { local + "/" + $0 }
        }
        for folder in folders {
            let names = try FileManager.default.contentsOfDirectory(atPath: folder)
            #expect(!names.contains { $0.hasSuffix(".tmp") }, "temporaries left in \(folder): \(names)")
        }
    }
}
