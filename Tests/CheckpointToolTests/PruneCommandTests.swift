import Checkpoint
import Foundation
import Testing

/// `ckpt prune`.
@Suite struct PruneCommandTests {
    /// `ckpt prune --json`.
    struct Report: Decodable {
        var dryRun: Bool
        var deleted: [UInt64]
        var kept: [UInt64]
        var freedBytes: Int
    }

    static func steps(_ directory: String) throws -> [UInt64] {
        try CheckpointDirectory(path: directory).committedSteps().map(\.rawValue)
    }

    @Test(arguments: [
        (["--keep", "2"], [1, 2, 3, 4] as [UInt64], [5, 6] as [UInt64]),
        (["--keep", "2", "--keep-every", "3"], [1, 2, 4], [3, 5, 6]),
        (["--keep", "1"], [1, 2, 3, 4, 5], [6]),
        (["--keep", "10"], [], [1, 2, 3, 4, 5, 6]),
    ])
    func keepsTheRightSteps(arguments: [String], deleted: [UInt64], kept: [UInt64]) throws {
        try withTemporaryDirectory { directory in
            let manifests = try makeCheckpoints(in: directory, steps: [1, 2, 3, 4, 5, 6])
            let result = try ckpt(["prune", directory, "--json"] + arguments)
            #expect(result.status == 0, "\(result)")
            let report = try decodeJSON(Report.self, result)
            #expect(report.dryRun == false)
            #expect(report.deleted == deleted)
            #expect(report.kept == kept)
            let freed = manifests.filter { deleted.contains($0.step.rawValue) }.reduce(0) { $0 + $1.storedBytes }
            #expect(report.freedBytes == freed)
            #expect(try Self.steps(directory) == kept)
        }
    }

    @Test func dryRunDeletesNothing() throws {
        try withTemporaryDirectory { directory in
            try makeCheckpoints(in: directory, steps: [1, 2, 3])
            let json = try ckpt("prune", directory, "--keep", "1", "--dry-run", "--json")
            #expect(json.status == 0, "\(json)")
            let report = try decodeJSON(Report.self, json)
            #expect(report.dryRun)
            #expect(report.deleted == [1, 2])
            #expect(report.kept == [3])
            #expect(try Self.steps(directory) == [1, 2, 3])

            let human = try ckpt("prune", directory, "--keep", "1", "--dry-run")
            #expect(human.status == 0, "\(human)")
            #expect(human.stdout.contains("would delete step 1"), "\(human)")
            #expect(human.stdout.contains("would delete 2 checkpoints"), "\(human)")
            #expect(try Self.steps(directory) == [1, 2, 3])
        }
    }

    @Test func humanOutputListsDeletedSteps() throws {
        try withTemporaryDirectory { directory in
            try makeCheckpoints(in: directory, steps: [1, 2, 3])
            let result = try ckpt("prune", directory, "--keep", "2")
            #expect(result.status == 0, "\(result)")
            #expect(result.stdout.contains("deleted step 1 ("), "\(result)")
            #expect(result.stdout.contains("deleted 1 checkpoint,"), "\(result)")
            #expect(result.stdout.contains("kept steps 2, 3"), "\(result)")
            #expect(result.stderr.isEmpty)
        }
    }

    @Test func refusesWhileACheckpointerHoldsTheDirectory() throws {
        try withTemporaryDirectory { directory in
            try makeCheckpoints(in: directory, steps: [1, 2, 3])
            do {
                let configuration = Checkpointer.Configuration(
                    policy: .always,
                    retention: .init(keepLast: 10),
                    threads: 1
                )
                let checkpointer = try Checkpointer(directory: directory, configuration: configuration)
                let result = try ckpt("prune", directory, "--keep", "1")
                #expect(result.status == 2, "\(result)")
                #expect(result.errorLines.count == 1, "one line: \(result)")
                #expect(result.errorLines.first?.hasPrefix("error: ") == true)
                #expect(result.stderr.contains("checkpointer"), "\(result)")
                #expect(result.stdout.isEmpty)
                #expect(try Self.steps(directory) == [1, 2, 3], "nothing deleted")
                let dryRun = try ckpt("prune", directory, "--keep", "1", "--dry-run")
                #expect(dryRun.status == 0, "a dry run deletes nothing, so it needs no lock: \(dryRun)")
                withExtendedLifetime(checkpointer) {}
            }

            // Once it is released, pruning works.
            let after = try ckpt("prune", directory, "--keep", "1")
            #expect(after.status == 0, "\(after)")
            #expect(try Self.steps(directory) == [3])
        }
    }

    @Test(arguments: [
        ["prune", "/tmp"],
        ["prune", "/tmp", "--keep", "0"],
        ["prune", "/tmp", "--keep", "2", "--keep-every", "0"],
        ["prune", "/tmp", "--keep", "x"],
    ])
    func badArgumentsExitTwo(arguments: [String]) throws {
        let result = try ckpt(arguments)
        #expect(result.status == 2, "\(result)")
        #expect(result.errorLines.count == 1, "one line: \(result)")
        #expect(result.errorLines.first?.hasPrefix("error: ") == true)
    }

    @Test func emptyDirectoryHasNothingToDelete() throws {
        try withTemporaryDirectory { directory in
            let result = try ckpt("prune", directory, "--keep", "1", "--json")
            #expect(result.status == 0, "\(result)")
            let report = try decodeJSON(Report.self, result)
            #expect(report.deleted.isEmpty)
            #expect(report.kept.isEmpty)
        }
    }
}
