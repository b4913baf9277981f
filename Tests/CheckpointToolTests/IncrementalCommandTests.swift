import Checkpoint
import Foundation
import Testing

/// `ckpt prune` and `ckpt verify` on incremental checkpoints.
@Suite struct IncrementalCommandTests {
    /// A field of 20 chunks of 4 KiB; each save changes two of them.
    struct Field: Checkpointable {
        var values: [Double]
        func save(to writer: inout SnapshotWriter) throws { try writer.write(values, as: "values") }
        init(values: [Double]) { self.values = values }
        init(from reader: SnapshotReader) throws { values = try reader.read([Double].self, "values") }
    }

    /// Steps 1 (full), 2 (uses 1), 3 (uses 1, 2), 4 (full), 5 (uses 4).
    static func makeChain(in directory: String) throws {
        var configuration = Checkpointer.Configuration(
            policy: .always,
            retention: .init(keepLast: 10),
            threads: 2,
            chunkSize: 4096
        )
        configuration.incremental = .on(fullEvery: 3)
        let checkpointer = try Checkpointer(directory: directory, configuration: configuration)
        var field = Field(values: (0..<10_240).map { sin(Double($0) * 0.01) })
        for step in 1...5 {
            field.values[(step % 10) * 1024] += 1
            field.values[(step % 10) * 1024 + 512] += 1
            try checkpointer.save(field, step: Step(step))
        }
    }

    /// `ckpt prune --json`.
    struct Report: Decodable {
        struct Reference: Decodable, Equatable {
            var step: UInt64
            var usedBy: [UInt64]
        }
        var deleted: [UInt64]
        var kept: [UInt64]
        var keptForReferences: [Reference]
    }

    @Test func dryRunShowsCheckpointsKeptForReferences() throws {
        try withTemporaryDirectory { directory in
            try Self.makeChain(in: directory)
            let json = try ckpt("prune", directory, "--keep", "1", "--dry-run", "--json")
            #expect(json.status == 0, "\(json)")
            let report = try decodeJSON(Report.self, json)
            #expect(report.deleted == [1, 2, 3])
            #expect(report.kept == [4, 5])
            #expect(report.keptForReferences == [.init(step: 4, usedBy: [5])])

            let human = try ckpt("prune", directory, "--keep", "2", "--dry-run")
            #expect(human.status == 0, "\(human)")
            #expect(human.stdout.contains("would delete step 3"), "\(human)")
            #expect(!human.stdout.contains("would keep step 4:"), "the rule keeps 4 itself: \(human)")

            let three = try ckpt("prune", directory, "--keep", "3", "--dry-run")
            #expect(three.stdout.contains("would keep step 1: used by steps 2, 3"), "\(three)")
            #expect(three.stdout.contains("would keep step 2: used by step 3"), "\(three)")
            #expect(try CheckpointDirectory(path: directory).committedSteps() == [1, 2, 3, 4, 5])

            let pruned = try ckpt("prune", directory, "--keep", "1")
            #expect(pruned.status == 0, "\(pruned)")
            #expect(try CheckpointDirectory(path: directory).committedSteps() == [4, 5])
            #expect(try ckpt("verify", directory, "--all").status == 0)
        }
    }

    @Test func verifyFollowsReferencesAndReportsAMissingBase() throws {
        try withTemporaryDirectory { directory in
            try Self.makeChain(in: directory)
            let good = try ckpt("verify", directory, "--step", "3")
            #expect(good.status == 0, "\(good)")
            #expect(good.stdout.contains("with chunks of steps 1, 2"), "\(good)")

            try FileManager.default.removeItem(atPath: CheckpointDirectory(path: directory).path(for: 1))
            let result = try ckpt("verify", directory, "--all")
            #expect(result.status == 1, "\(result)")
            #expect(result.stdout.contains("step 2: corrupt: incompleteCheckpoint"), "\(result)")
            #expect(result.stdout.contains("checkpoint 1, whose shard is missing"), "\(result)")
            #expect(result.stdout.contains("step 4: ok"), "\(result)")
        }
    }
}
