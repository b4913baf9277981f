import Foundation
import Testing

@testable import Checkpoint

/// Lineage: a run restores only its own checkpoints, each following the one before it.
@Suite("Checkpoint lineage")
struct LineageTests {
    static func configuration(_ lineage: Lineage?, authentication: Authentication? = nil) -> Checkpointer.Configuration
    {
        var configuration = testConfiguration(keepLast: 10)
        configuration.lineage = lineage
        configuration.authentication = authentication
        return configuration
    }

    /// Saves `steps` in a new process-like checkpointer, which restores first unless it is another run's.
    static func save(_ directory: String, steps: ClosedRange<Int>, _ lineage: Lineage?, restoring: Bool = true) throws {
        let checkpointer = try Checkpointer(directory: directory, configuration: configuration(lineage))
        if restoring { _ = try checkpointer.restoreLatest(ArrayState<Double>.self) }
        for step in steps { try checkpointer.save(ArrayState(smoothField(2000, seed: UInt64(step))), step: Step(step)) }
    }

    static func restoredStep(_ directory: String, _ lineage: Lineage?) throws -> Step? {
        try Checkpointer(directory: directory, configuration: configuration(lineage))
            .restoreLatest(ArrayState<Double>.self)?.step
    }

    @Test("Each manifest links to the checkpoint before it, across a restart")
    func chain() throws {
        try withTemporaryDirectory { directory in
            let lineage = try Lineage(runID: "job-1")
            try Self.save(directory, steps: 1...2, lineage)
            try Self.save(directory, steps: 3...3, lineage)  // a new process: restores 2, then saves 3
            let checkpoints = CheckpointDirectory(path: directory, lineage: lineage)
            let first = try checkpoints.loadManifest(step: 1)
            #expect(first.lineage == Manifest.Lineage(runID: "job-1", previous: nil))
            for step in 2...3 {
                let manifest = try checkpoints.loadManifest(step: Step(step))
                let before = try checkpoints.loadManifest(step: Step(step - 1))
                #expect(
                    manifest.lineage?.previous
                        == Manifest.Link(step: Step(step - 1), manifestSHA256: try before.lineageDigest())
                )
            }
            #expect(try Self.restoredStep(directory, lineage) == 3)
        }
    }

    @Test("Another run's checkpoint, or one without lineage, is refused")
    func foreign() throws {
        try withTemporaryDirectory { directory in
            try Self.save(directory, steps: 1...2, try Lineage(runID: "job-1"))
            try Self.save(directory, steps: 3...3, try Lineage(runID: "job-2"), restoring: false)
            // A run that finds only another run's checkpoints refuses to start over silently.
            #expect(throws: CheckpointError.self) { _ = try Self.restoredStep(directory, try Lineage(runID: "job-3")) }
            #expect(try Self.restoredStep(directory, try Lineage(runID: "job-1")) == 2)
            do throws(CheckpointError) {
                _ = try CheckpointDirectory(path: directory, lineage: try Lineage(runID: "job-1")).loadManifest(step: 3)
                Issue.record("another run's checkpoint was accepted")
            } catch {
                #expect(error.code == .lineageMismatch)
                #expect(error.message.contains("belongs to run 'job-2'"))
            }
            try Self.save(directory, steps: 4...4, nil)
            #expect(throws: CheckpointError.self) {
                _ = try CheckpointDirectory(path: directory, lineage: try Lineage(runID: "job-1")).loadManifest(step: 4)
            }
            #expect(try Self.restoredStep(directory, nil) == 4)
        }
    }

    @Test("A checkpoint copied back from another attempt does not follow its predecessor and is refused")
    func replaced() throws {
        try withTemporaryDirectory { root in
            let lineage = try Lineage(runID: "job-1")
            let first = root + "/first"
            let second = root + "/second"
            // Two attempts of one run that diverge at step 2 (other metadata, as a non-deterministic run would).
            try Self.save(first, steps: 1...3, lineage)
            try Self.save(second, steps: 1...1, lineage)
            do {
                var configuration = Self.configuration(lineage)
                configuration.metadata = ["attempt": "2"]
                let checkpointer = try Checkpointer(directory: second, configuration: configuration)
                _ = try checkpointer.restoreLatest(ArrayState<Double>.self)
                try checkpointer.save(ArrayState(smoothField(2000, seed: 2)), step: 2)
            }
            // Step 3 of the first attempt is planted beside the second attempt's step 2.
            try FileManager.default.copyItem(
                atPath: CheckpointDirectory(path: first).path(for: 3),
                toPath: CheckpointDirectory(path: second).path(for: 3)
            )
            do throws(CheckpointError) {
                _ = try CheckpointDirectory(path: second, lineage: lineage).loadManifest(step: 3)
                Issue.record("a checkpoint that does not follow its predecessor was accepted")
            } catch {
                #expect(error.code == .lineageMismatch)
                #expect(error.message.contains("does not follow checkpoint 2"))
            }
            #expect(try Self.restoredStep(second, lineage) == 2)
        }
    }

    @Test("A directory rolled back below the step the workflow expects is refused, not restored")
    func rolledBack() throws {
        try withTemporaryDirectory { directory in
            try Self.save(directory, steps: 1...3, try Lineage(runID: "job-1"))
            try FileManager.default.removeItem(atPath: CheckpointDirectory(path: directory).path(for: 3))
            #expect(try Self.restoredStep(directory, try Lineage(runID: "job-1", atLeast: 2)) == 2)
            do {
                _ = try Self.restoredStep(directory, try Lineage(runID: "job-1", atLeast: 3))
                Issue.record("a rolled-back directory was restored")
            } catch let error as CheckpointError {
                #expect(error.code == .lineageMismatch)
                #expect(error.message.contains("step 3 or newer"))
            }
            _ = try withTemporaryDirectory { empty in
                #expect(throws: CheckpointError.self) {
                    _ = try Self.restoredStep(empty, try Lineage(runID: "job-1", atLeast: 1))
                }
            }
        }
    }

    @Test("Run IDs must be printable")
    func runIDs() {
        #expect(throws: CheckpointError.self) { _ = try Lineage(runID: "") }
        #expect(throws: CheckpointError.self) { _ = try Lineage(runID: "a\u{1B}[2J") }
        #expect(throws: CheckpointError.self) { _ = try Lineage(runID: String(repeating: "x", count: 257)) }
    }
}
