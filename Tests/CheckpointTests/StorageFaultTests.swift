import Foundation
import Testing

@_spi(Testing) @testable import Checkpoint

/// Sweeps an injected storage failure over every system call a checkpoint makes: whichever call
/// fails, nothing is committed that should not be, every rank reports the same clear error, the
/// previous checkpoint restores exactly, nothing is left behind, and the application goes on.
@Suite("Injected storage faults", .serialized)
struct StorageFaultTests {
    /// What one checkpoint attempt under a fault left behind.
    private struct Trial {
        var triggered: Int
        var errors: [String?]
        var committed: [Step]
    }

    @Test(
        "A failing write, fsync, rename, mkdir, open or unlink never commits and never loses data",
        arguments: [StorageFault.Operation.open, .write, .sync, .syncDirectory, .rename, .makeDirectory, .remove],
        [1, 3]
    )
    func failingCallDuringCommit(operation: StorageFault.Operation, ranks: Int) throws {
        var failures = 0
        for skip in 0..<400 {
            let trial = try runTrial(StorageFault(operation, skip: skip, count: 1), ranks: ranks)
            guard trial.triggered > 0 else {
                #expect(trial.errors.allSatisfy { $0 == nil }, "no fault, no error: \(trial.errors)")
                // Every call of the commit has had its turn to fail.
                #expect(failures > 0 || operation == .remove || operation == .open, "\(operation) never failed")
                return
            }
            failures += 1
        }
        Issue.record("a checkpoint made more than 400 \(operation) calls")
    }

    @Test("Storage that keeps failing (every call, ENOSPC or EIO) fails each checkpoint cleanly")
    func persistentFailure() throws {
        for operation in StorageFault.Operation.allCases where operation != .read {
            for errno in [EIO, ENOSPC] {
                _ = try runTrial(StorageFault(operation, errno: errno), ranks: 2)
            }
        }
    }

    @Test("A fault on one rank's shard only fails every rank the same way")
    func oneRankFails() throws {
        for operation in [StorageFault.Operation.open, .write, .sync] {
            let trial = try runTrial(StorageFault(operation, pathContains: "rank-00002.snap"), ranks: 4)
            #expect(trial.triggered > 0)
            #expect(trial.errors.allSatisfy { $0 != nil && $0 == trial.errors[0] }, "\(trial.errors)")
            #expect(trial.errors[0]?.contains("rank 2") == true, "names the failing rank: \(trial.errors)")
        }
    }

    @Test("Retention that cannot delete an old checkpoint leaves no temporary directory behind")
    func retentionFailureCleansUp() throws {
        try withStorageFaults {
            // Found by Scripts/torture (storage kind, seed 2026, trial 29).
            for operation in [StorageFault.Operation.rename, .syncDirectory] {
                try withTemporaryDirectory { directory in
                    let checkpointer = try Checkpointer(
                        directory: directory,
                        configuration: testConfiguration(keepLast: 1)
                    )
                    try checkpointer.save(ArrayState([1.0]), step: 1)
                    StorageFaults.install([
                        StorageFault(operation, pathContains: directory, skip: operation == .rename ? 1 : 2)
                    ])
                    defer { StorageFaults.removeAll() }
                    _ = try? checkpointer.save(ArrayState([2.0]), step: 2)
                    #expect(StorageFaults.triggered > 0)
                    StorageFaults.removeAll()
                    let names = try FileManager.default.contentsOfDirectory(atPath: directory)
                    #expect(!names.contains { $0.hasSuffix(".tmp") }, "\(operation): \(names)")
                    #expect(try checkpointer.restoreLatest(ArrayState<Double>.self)?.state.values == [2.0])
                }
            }
        }
    }

    @Test("Re-saving a step whose directory fsync fails keeps the previous version")
    func replaceWithFailingSync() throws {
        try withStorageFaults {
            try withTemporaryDirectory { directory in
                let checkpointer = try Checkpointer(directory: directory, configuration: testConfiguration())
                try checkpointer.save(ArrayState([1.0]), step: 5)
                StorageFaults.install([StorageFault(.syncDirectory, pathContains: directory, skip: 1)])
                defer { StorageFaults.removeAll() }
                #expect(throws: CheckpointError.self) { try checkpointer.save(ArrayState([2.0]), step: 5) }
                StorageFaults.removeAll()
                #expect(try checkpointer.restoreLatest(ArrayState<Double>.self)?.state.values == [1.0])
                let names = try FileManager.default.contentsOfDirectory(atPath: directory)
                #expect(!names.contains { $0.hasSuffix(".tmp") }, "\(names)")
            }
        }
    }

    @Test("A marker store whose sync after the marker fails, and whose first withdrawal fails, commits nothing")
    func markerWithdrawnOnAbandon() throws {
        try withStorageFaults {
            try withTemporaryDirectory { directory in
                var configuration = testConfiguration()
                configuration.commitMethod = .marker
                let checkpointer = try Checkpointer(directory: directory, configuration: configuration)
                try checkpointer.save(ArrayState([1.0]), step: 1)
                let staged = directory + "/ckpt-000000000007"
                StorageFaults.install([
                    // The first sync of the staged directory succeeds, the one after the marker fails...
                    StorageFault(.syncDirectory, pathContains: staged, skip: 1, count: 1),
                    // ...and so does the commit's own attempt to remove the marker again.
                    StorageFault(.remove, pathContains: staged, Manifest.checksumFileName, count: 1),
                ])
                defer { StorageFaults.removeAll() }
                #expect(throws: CheckpointError.self) { try checkpointer.save(ArrayState([7.0]), step: 7) }
                #expect(StorageFaults.triggered == 2)
                StorageFaults.removeAll()
                #expect(!FileManager.default.fileExists(atPath: staged))
                #expect(try checkpointer.checkpoints().map(\.step) == [1])
                try checkpointer.save(ArrayState([7.0]), step: 7)
                #expect(try checkpointer.restoreLatest(ArrayState<Double>.self)?.state.values == [7.0])
            }
        }
    }

    @Test("A marker store lists only checkpoints with their marker")
    func markerStoreListsMarkedOnly() throws {
        try withTemporaryDirectory { directory in
            let store = MarkerStore(
                directory: CheckpointDirectory(path: directory),
                permissions: StorePermissions(file: 0o600, directory: 0o700)
            )
            let area = try store.begin(step: 4)
            try store.create("rank-00000.snap", in: area).close()
            // Being written in place: in the directory under its committed name, but not committed.
            #expect(try CheckpointDirectory(path: directory).committedSteps() == [4])
            #expect(try store.committedSteps() == [])
            store.abandon(area)
            #expect(try FileManager.default.contentsOfDirectory(atPath: directory) == [])
        }
    }

    @Test("A marker store's marker cut short by a kill means not committed", arguments: [0, 40])
    func tornMarker(length: Int) throws {
        try withTemporaryDirectory { directory in
            var configuration = testConfiguration()
            configuration.commitMethod = .marker
            try Checkpointer(directory: directory, configuration: configuration).save(ArrayState([1.0]), step: 1)
            try Checkpointer(directory: directory, configuration: configuration).save(ArrayState([2.0]), step: 2)
            // Killed while writing step 2's marker: every other file is there.
            let marker = directory + "/ckpt-000000000002/" + Manifest.checksumFileName
            let whole = try Data(contentsOf: URL(fileURLWithPath: marker))
            try whole.prefix(length).write(to: URL(fileURLWithPath: marker))
            let checkpointer = try Checkpointer(directory: directory, configuration: configuration)
            #expect(try checkpointer.restoreLatest(ArrayState<Double>.self)?.step == 1)
            #expect(!FileManager.default.fileExists(atPath: directory + "/ckpt-000000000002"))
            try checkpointer.save(ArrayState([2.0]), step: 2)
            #expect(try checkpointer.restoreLatest(ArrayState<Double>.self)?.state.values == [2.0])
        }
    }

    @Test("Retention stopped midway never leaves a checkpoint without the chunks it uses")
    func retentionStoppedMidway() throws {
        // Found by Scripts/torture (crash, seed 2026, trials 776 and 1226: killed during retention).
        try withStorageFaults {
            try withTemporaryDirectory { directory in
                var configuration = testConfiguration(keepLast: 1)
                configuration.incremental = .on(fullEvery: 2)
                let checkpointer = try Checkpointer(directory: directory, configuration: configuration)
                let values = (0..<10_000).map(Double.init)
                try checkpointer.save(ArrayState(values), step: 1)
                var changed = values
                changed[0] = -1
                // Step 2 uses step 1's unchanged chunks; step 3 is full, and its retention deletes both.
                #expect(try checkpointer.save(ArrayState(changed), step: 2).references == [1])
                StorageFaults.install([StorageFault(.rename, pathContains: directory, "ckpt-000000000002")])
                try checkpointer.save(ArrayState(values), step: 3)
                #expect(StorageFaults.triggered == 1)
                StorageFaults.removeAll()
                // Step 2 could not be deleted, so step 1 (which it uses) was not deleted either.
                let checkpoints = CheckpointDirectory(path: directory)
                #expect(try checkpoints.committedSteps() == [1, 2, 3])
                for step in try checkpoints.committedSteps() { try checkpoints.verify(step: step) }
                #expect(try CheckpointDirectory(path: directory).prunePlan(.init(keepLast: 1)).deletionOrder == [2, 1])
            }
        }
    }

    @Test("Slow storage still commits correctly")
    func slowStorage() throws {
        let trial = try runTrial(StorageFault(.sync, errno: 0, delay: .milliseconds(30)), ranks: 2)
        #expect(trial.errors.allSatisfy { $0 == nil })
        #expect(trial.committed == [1, 2, 3])
    }

    @Test("A read failing during restore never restores wrong data", arguments: [1, 3])
    func failingReadDuringRestore(ranks: Int) throws {
        try withStorageFaults {
            try withTemporaryDirectory { directory in
                try saveSteps([1, 2], ranks: ranks, directory: directory)
                for operation in [StorageFault.Operation.open, .read] {
                    for skip in 0..<200 {
                        StorageFaults.install([StorageFault(operation, pathContains: directory, skip: skip, count: 1)])
                        let results = try LocalGroup.run(ranks: ranks, timeout: 60) {
                            communicator -> Result<(RankState, Step)?, CheckpointError> in
                            do {
                                let checkpointer = try Checkpointer(
                                    directory: directory,
                                    communicator: communicator,
                                    configuration: testConfiguration()
                                )
                                return .success(try checkpointer.restoreLatest(RankState.self))
                            } catch let error as CheckpointError {
                                return .failure(error)
                            }
                        }
                        let triggered = StorageFaults.triggered
                        StorageFaults.removeAll()
                        for (rank, result) in results.enumerated() {
                            switch result {
                            case .success(let restored):
                                let (state, step) = try #require(restored)
                                #expect(state == RankState(rank: rank, seed: UInt64(step.rawValue)))
                                #expect(triggered > 0 || step == 2)
                            case .failure(let error):
                                #expect(triggered > 0, "\(error)")
                                #expect(!error.message.isEmpty)
                            }
                        }
                        if triggered == 0 { break }
                    }
                }
            }
        }
    }

    // MARK: Helpers

    /// Commits step 1, tries step 2 under `fault`, then removes the fault and commits step 3 with
    /// the same checkpointers; checks what is on disk.
    private func runTrial(_ fault: StorageFault, ranks: Int) throws -> Trial {
        try withStorageFaults {
            try withTemporaryDirectory { directory in
                let scoped = {
                    var scoped = fault
                    scoped.pathContains.append(directory)
                    return scoped
                }()
                let triggered = Locked(0)
                let errors = try LocalGroup.run(ranks: ranks, timeout: 60) { communicator -> String? in
                    let checkpointer = try Checkpointer(
                        directory: directory,
                        communicator: communicator,
                        configuration: testConfiguration(keepLast: 10)
                    )
                    try checkpointer.save(RankState(rank: communicator.rank, seed: 1), step: 1)
                    try communicator.barrier()
                    if communicator.rank == 0 { StorageFaults.install([scoped]) }
                    try communicator.barrier()
                    var message: String?
                    do {
                        try checkpointer.save(RankState(rank: communicator.rank, seed: 2), step: 2)
                    } catch let error as CheckpointError {
                        message = error.description
                    }
                    try communicator.barrier()
                    if communicator.rank == 0 {
                        triggered.withLock { $0 = StorageFaults.triggered }
                        StorageFaults.removeAll()
                    }
                    try communicator.barrier()
                    // The application keeps running: the next checkpoint commits.
                    try checkpointer.save(RankState(rank: communicator.rank, seed: 3), step: 3)
                    try checkpointer.finish()
                    return message
                }
                let count = triggered.withLock { $0 }
                if count == 0 {
                    #expect(errors.allSatisfy { $0 == nil }, "\(fault): error without a fault: \(errors)")
                }
                let checkpoints = try CheckpointDirectory(path: directory)
                let committed = try checkpoints.committedSteps()
                #expect(committed.contains(1) && committed.contains(3), "\(fault): \(committed)")
                if errors.contains(where: { $0 != nil }) {
                    #expect(Set(errors).count == 1, "\(fault): ranks disagree: \(errors)")
                    let message = errors[0] ?? ""
                    #expect(message.contains(String(cString: strerror(scoped.errno))), "\(fault): unclear: \(message)")
                    // A failed checkpoint is never committed, even when only the fsync of the parent
                    // directory after the rename failed (it is withdrawn again).
                    #expect(!committed.contains(2), "\(fault): a failed checkpoint was committed")
                }
                // A failed checkpoint cleans up after itself (unless removing is what fails; then the
                // next start does).
                if fault.operation != .remove {
                    let names = try FileManager.default.contentsOfDirectory(atPath: directory)
                    #expect(!names.contains { $0.hasSuffix(".tmp") }, "\(fault): temporaries left: \(names)")
                }
                // Every committed checkpoint verifies and restores exactly; nothing temporary is left.
                for step in committed { _ = try checkpoints.verify(step: step) }
                let restored = try LocalGroup.run(ranks: ranks, timeout: 60) { communicator in
                    try #require(
                        try Checkpointer(directory: directory, communicator: communicator).restoreLatest(RankState.self)
                    )
                }
                for (rank, result) in restored.enumerated() {
                    #expect(result.step == 3)
                    #expect(result.state == RankState(rank: rank, seed: 3))
                }
                let names = try FileManager.default.contentsOfDirectory(atPath: directory)
                #expect(!names.contains { $0.hasSuffix(".tmp") }, "\(fault): temporaries left: \(names)")
                return Trial(triggered: count, errors: errors, committed: committed)
            }
        }
    }

    private func saveSteps(_ steps: [Int], ranks: Int, directory: String) throws {
        _ = try LocalGroup.run(ranks: ranks, timeout: 60) { communicator in
            let checkpointer = try Checkpointer(
                directory: directory,
                communicator: communicator,
                configuration: testConfiguration()
            )
            for step in steps {
                try checkpointer.save(RankState(rank: communicator.rank, seed: UInt64(step)), step: Step(step))
            }
            try checkpointer.finish()
        }
    }
}
