@_spi(Testing) import Checkpoint
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A storage trial: failing or slow system calls injected through the library's storage seam
/// (`StorageFaults`). A checkpoint commits cleanly, then a random fault — a random call (open,
/// write, fsync, rename, mkdir, unlink, directory fsync) failing with EIO, ENOSPC, EDQUOT or EROFS
/// after a random number of calls, sometimes only on one rank's shard — hits the next one. That save
/// must throw a clear error on every rank (unless the fault never fired), commit nothing, leave no
/// temporary directory, keep the previous checkpoint exact, and the application's next save must
/// commit. Slow storage (every call delayed) must still commit correctly, and a failing read during
/// restore must stop it with an error rather than return anything.
///
/// Each trial runs with a combination of options (see ``Combination``): node-local checkpoints with
/// partner copies and flushes (redundancy), incremental chunks, the marker commit method, so that
/// faults reach every call of the combined commit: the node-local commit, the partner copy, the
/// flush to the shared directory and retention at both levels. With redundancy a fault may hit one
/// rank's node-local folder only, and reads fail too (the partner copy and the flush read shards).
struct StorageTrial {
    var index: Int
    var seed: UInt64
    var directory: String
    var programs: Programs
    var combination: Combination = .plain

    func run() -> TrialOutcome {
        var random = SplitMix64(seed: seed)
        var outcome = TrialOutcome(kind: .storage, index: index, seed: seed)
        outcome.combination = combination.description
        defer { StorageFaults.removeAll() }
        do {
            let choice = Double.random(in: 0..<1, using: &random)
            if choice < 0.1 {
                try failingRestore(&random, &outcome)
            } else {
                try failingCommit(slowOnly: choice < 0.2, &random, &outcome)
            }
        } catch let error as CheckpointError where error.code == .invalidConfiguration {
            outcome.skipped = "refused by the library: \(error.message)"
        } catch {
            outcome.lose("\(error)")
        }
        return outcome
    }

    /// The trials' configuration with this trial's combination; `fullEvery` and `flushEvery` drawn.
    private func configuration(
        _ random: inout SplitMix64,
        asynchronous: Bool
    ) -> (configuration: Checkpointer.Configuration, local: String?, label: String) {
        var configuration = trialConfiguration(mode: asynchronous ? .asynchronous() : .synchronous)
        var label = "\(combination)"
        if combination.incremental {
            let fullEvery = Int.random(in: 2...4, using: &random)
            configuration.incremental = .on(fullEvery: fullEvery)
            label += ", full every \(fullEvery)"
        }
        if combination.marker { configuration.commitMethod = .marker }
        if combination.sealed {
            configuration.authentication = Authentication(signingKey: Combination.key)
            configuration.lineage = try! Lineage(runID: Combination.runID)
        }
        guard combination.redundancy else { return (configuration, nil, label) }
        let local = directory + "/local"
        // The faulted save is the third: flushed with 1 and 3, node-local only with 2.
        let flushEvery = Int.random(in: 1...3, using: &random)
        configuration.redundancy = .init(localDirectory: local, flushEvery: flushEvery)
        return (configuration, local, label + ", flush every \(flushEvery)")
    }

    /// Where a committed checkpoint of `step` has `rank`'s shard: the shared directory and, with
    /// redundancy, the rank's node-local folder.
    private func levels(holding step: Step, rank: Int, shared: String, local: String?) -> [String] {
        var levels = [shared]
        if let local { levels.append(local + "/" + shardName(rank).replacingOccurrences(of: ".snap", with: "")) }
        return levels.filter { committedSteps($0).contains(step.rawValue) }
    }

    /// The checkpoint directories of every level (the shared one, and each rank's node-local one).
    private func stores(shared: String, local: String?) -> [String] {
        [shared] + (local.map(nodeLocalStores) ?? [])
    }

    /// What one rank saw.
    private struct RankReport: Sendable {
        var failure: String?
        var code: String?
        var problems: [String] = []
    }

    /// The code a failing call's `errno` must surface as.
    private static func expectedCode(_ number: Int32) -> String {
        switch number {
        case ENOSPC, EDQUOT: "diskFull"
        case EROFS, EACCES, EPERM: "permissionDenied"
        default: "ioFailure"
        }
    }

    /// Runs the trial's saves without failures in a scratch directory and counts, per operation,
    /// the calls on paths containing `target` that the third save (the one a trial faults) makes.
    private func rehearse(
        _ operations: [StorageFault.Operation],
        target: String,
        ranks: Int,
        size: Int,
        configuration: Checkpointer.Configuration
    ) throws -> [StorageFault.Operation: Int] {
        let scratch = directory + "/rehearsal"
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        var configuration = configuration
        if let redundancy = configuration.redundancy {
            configuration.redundancy = .init(localDirectory: scratch + "/local", flushEvery: redundancy.flushEvery)
        }
        let counters = operations.map { StorageFault($0, pathContains: target, errno: 0) }
        let counted = SharedValue([Int]())
        let dataSeed = seed
        let settings = configuration
        _ = try LocalGroup.run(ranks: ranks, timeout: 60) { communicator in
            let rank = communicator.rank
            let checkpointer = try Checkpointer(
                directory: scratch + "/checkpoints",
                communicator: communicator,
                configuration: settings,
                logger: LogCollector().logger(label: "rehearsal")
            )
            func save(_ step: Step) throws {
                try checkpointer.checkpoint(TrialState(seed: dataSeed, rank: rank, step: step, size: size), step: step)
                try checkpointer.finish()
            }
            try save(50)
            try save(100)
            try communicator.barrier()
            if rank == 0 { StorageFaults.install(counters) }
            try communicator.barrier()
            try save(200)
            try communicator.barrier()
            if rank == 0 {
                counted.value = StorageFaults.matchedCalls
                StorageFaults.removeAll()
            }
        }
        return Dictionary(zip(operations, counted.value), uniquingKeysWith: +)
    }

    private func failingCommit(slowOnly: Bool, _ random: inout SplitMix64, _ outcome: inout TrialOutcome) throws {
        // Redundancy needs a second rank for its partner copies.
        let ranks = Int.random(in: (combination.redundancy ? 2 : 1)...4, using: &random)
        let asynchronous = random.chance(0.4)
        let size = Int.random(in: 500...20_000, using: &random)
        var operations: [StorageFault.Operation] = [
            .open, .write, .sync, .syncDirectory, .rename, .makeDirectory, .remove,
        ]
        // The partner copy and the flush read the node-local shards; a marker store never renames.
        if combination.redundancy { operations.append(.read) }
        if combination.marker { operations.removeAll { $0 == .rename } }
        var drawn = operations.randomElement(using: &random)!
        let number = [EIO, EIO, ENOSPC, EDQUOT, EROFS].randomElement(using: &random)!
        // Opening, writing, reading and syncing shards are per-rank calls: some faults hit one rank's
        // only; with redundancy, some hit every call in one rank's node-local folder.
        let perShard = [.open, .write, .read, .sync].contains(drawn)
        var target = ""
        if perShard && ranks > 1 && random.chance(0.3) {
            target = shardName(Int.random(in: 0..<ranks, using: &random))
        } else if combination.redundancy && random.chance(0.3) {
            target =
                "/local/"
                + shardName(Int.random(in: 0..<ranks, using: &random)).replacingOccurrences(of: ".snap", with: "/")
        }
        var (configured, localFolder, label) = configuration(&random, asynchronous: asynchronous)
        configured.retention = .init(keepLast: 2)
        let local = localFolder
        let fault: StorageFault
        if slowOnly {
            let delay = Duration.milliseconds(Int.random(in: 1...5, using: &random))
            fault = StorageFault(drawn, errno: 0, delay: delay)
            outcome.count("slow")
            outcome.category = "slow-\(drawn.rawValue)"
        } else {
            // A rehearsal counts the calls the faulted save makes, so that the fault lands on any one
            // of them: in the node-local commit, the partner copy, the flush or retention at either
            // level. An operation this combination's save never calls is replaced by one it does.
            let calls = try rehearse(operations, target: target, ranks: ranks, size: size, configuration: configured)
            if calls[drawn, default: 0] == 0,
                let called = operations.filter({ calls[$0, default: 0] > 0 }).randomElement(using: &random)
            {
                drawn = called
            }
            fault = StorageFault(
                drawn,
                pathContains: target,
                skip: Int.random(in: 0..<max(1, calls[drawn, default: 0]), using: &random),
                count: random.chance(0.7) ? 1 : .max,
                errno: number,
                delay: random.chance(0.2) ? .milliseconds(1) : .zero
            )
            outcome.category = drawn.rawValue
        }
        let operation = drawn
        if asynchronous { outcome.count("async") }
        outcome.scenario = "\(label), \(ranks) rank(s), \(asynchronous ? "async" : "sync"): \(fault)"
        if !slowOnly { outcome.scenario += fault.count == 1 ? " (once)" : " (persistent)" }
        // The oldest checkpoint is there for retention to delete while the second one commits
        // (keep the newest two), so that unlink calls happen during the commit too.
        let (oldest, first, second, third): (Step, Step, Step, Step) = (50, 100, 200, 300)
        let checkpoints = directory + "/checkpoints"
        let dataSeed = seed
        let configuration = configured
        let triggered = SharedValue(0)
        let reports = try LocalGroup.run(ranks: ranks, timeout: 60) { communicator -> RankReport in
            let rank = communicator.rank
            var report = RankReport()
            let checkpointer = try Checkpointer(
                directory: checkpoints,
                communicator: communicator,
                configuration: configuration,
                logger: LogCollector().logger(label: "storage")
            )
            func save(_ step: Step) throws {
                try checkpointer.checkpoint(TrialState(seed: dataSeed, rank: rank, step: step, size: size), step: step)
                try checkpointer.finish()
            }
            try save(oldest)
            try save(first)
            try communicator.barrier()
            if rank == 0 { StorageFaults.install([fault]) }
            try communicator.barrier()
            do {
                try save(second)
            } catch let error as CheckpointError {
                report.failure = error.description
                report.code = error.code.description
            } catch {
                report.failure = "\(error)"
            }
            try communicator.barrier()
            if rank == 0 {
                triggered.value = StorageFaults.triggered
                StorageFaults.removeAll()
                // A failed unlink cannot clean up after itself; the next start removes what it left.
                for store in stores(shared: checkpoints, local: local) {
                    let leftovers = temporaries(in: store)
                    if !leftovers.isEmpty && operation != .remove {
                        report.problems.append("temporary directories left in \(store): \(leftovers)")
                    }
                }
            }
            try communicator.barrier()
            // Whatever is committed reads back exactly at every level that holds it: the previous
            // checkpoint always (at one level at least), the new one if it made it.
            for step in [first, second] {
                let holding = levels(holding: step, rank: rank, shared: checkpoints, local: local)
                if step == first && holding.isEmpty {
                    report.problems.append("LOST: rank \(rank)'s shard of checkpoint \(first) is gone from every level")
                }
                for level in holding
                where readTrialState(level, step: step, rank: rank)
                    != TrialState(seed: dataSeed, rank: rank, step: step, size: size)
                {
                    report.problems.append(
                        "LOST: rank \(rank)'s shard of committed checkpoint \(step) in \(level) does not read back exactly"
                    )
                }
            }
            try communicator.barrier()
            do { try save(third) } catch {
                report.problems.append("the save after the fault was removed failed: \(error)")
            }
            return report
        }
        let committedSecond = restorableSteps(shared: checkpoints, local: local, ranks: ranks).contains(second.rawValue)
        for problem in reports.flatMap(\.problems) {
            if problem.hasPrefix("LOST") { outcome.lose(problem) } else { outcome.complain(problem) }
        }
        let failed = reports.filter { $0.failure != nil }
        if triggered.value == 0 {
            if !slowOnly { outcome.count("not-triggered") }
            if !failed.isEmpty { outcome.complain("the save failed although no fault fired: \(failed.map(\.failure))") }
            if !committedSecond { outcome.lose("checkpoint \(second) was not committed although no fault fired") }
        } else if failed.isEmpty {
            // Every failure was absorbed (say, a retried or optional call): fine only if the checkpoint is whole.
            outcome.detected = committedSecond
            if !committedSecond {
                outcome.lose("the save reported success but checkpoint \(second) is not committed")
            } else {
                outcome.count("absorbed")
            }
        } else {
            let code = Self.expectedCode(number)
            let clear = failed.count == ranks && reports.allSatisfy { $0.code == code }
            outcome.detected = clear
            if !clear {
                outcome.complain(
                    "expected \(code) on all \(ranks) rank(s), got: \(reports.map { $0.failure ?? "no error" })"
                )
            }
            if committedSecond {
                // The application was told the checkpoint failed; a restart would still restore it.
                // Only a persistent fault excuses it: withdrawing may need the very call that fails.
                outcome.count("committed-anyway")
                if fault.count == 1 {
                    outcome.complain("checkpoint \(second) is committed although the save threw on every rank")
                } else {
                    outcome.scenario += " (committed although the save threw)"
                }
            }
        }
        // A restart restores the application's last checkpoint exactly, and removes anything left.
        try checkRestore(checkpoints, ranks: ranks, step: third, size: size, configuration: configuration, &outcome)
        for store in stores(shared: checkpoints, local: local) {
            let leftovers = temporaries(in: store)
            if !leftovers.isEmpty {
                outcome.complain("temporary directories left in \(store) after a restart: \(leftovers)")
            }
        }
        outcome.recovered = !outcome.lost
    }

    private func failingRestore(_ random: inout SplitMix64, _ outcome: inout TrialOutcome) throws {
        let ranks = Int.random(in: (combination.redundancy ? 2 : 1)...4, using: &random)
        let size = Int.random(in: 500...20_000, using: &random)
        let checkpoints = directory + "/checkpoints"
        let steps: [Step] = [5, 6]
        let dataSeed = seed
        let (configuration, _, label) = configuration(&random, asynchronous: false)
        try saveTrialStates(
            checkpoints,
            steps: steps,
            ranks: ranks,
            seed: dataSeed,
            size: size,
            configuration: configuration
        )
        let target = ranks > 1 && random.chance(0.5) ? shardName(Int.random(in: 0..<ranks, using: &random)) : ""
        let fault = StorageFault(
            .read,
            pathContains: target,
            skip: Int.random(in: 0...20, using: &random),
            count: random.chance(0.5) ? 1 : .max,
            errno: EIO
        )
        outcome.category = "read-during-restore"
        outcome.scenario = "\(label), \(ranks) rank(s), restore with \(fault)"
        StorageFaults.install([fault])
        let result = Result { try restoreTrialStates(checkpoints, ranks: ranks, configuration: configuration) }
        let fired = StorageFaults.triggered
        StorageFaults.removeAll()
        switch result {
        case .success(let restored):
            if fired > 0 { outcome.count("absorbed") } else { outcome.count("not-triggered") }
            for (rank, value) in restored.enumerated() {
                guard let (state, step) = value, steps.contains(step),
                    state == TrialState(seed: seed, rank: rank, step: step, size: size)
                else {
                    outcome.lose("rank \(rank) restored wrong data or nothing while reads failed")
                    continue
                }
                // Falling back past a checkpoint that is intact because a read failed would be wrong too.
                if step != steps.last { outcome.complain("rank \(rank) fell back to \(step) because a read failed") }
            }
            outcome.detected = fired > 0 ? true : nil
        case .failure(let error):
            let code = (error as? CheckpointError)?.code.description
            outcome.detected = fired > 0 && code == "ioFailure"
            if outcome.detected != true { outcome.complain("restore failed with \(error) (\(fired) read(s) failed)") }
        }
        try checkRestore(
            checkpoints,
            ranks: ranks,
            step: steps.last!,
            size: size,
            configuration: configuration,
            &outcome
        )
        outcome.recovered = !outcome.lost
    }

    /// A fresh restart (no faults) restores `step` exactly on every rank.
    private func checkRestore(
        _ checkpoints: String,
        ranks: Int,
        step: Step,
        size: Int,
        configuration: Checkpointer.Configuration,
        _ outcome: inout TrialOutcome
    )
        throws
    {
        let restored = try restoreTrialStates(checkpoints, ranks: ranks, configuration: configuration)
        for (rank, result) in restored.enumerated() {
            if let (state, restoredStep) = result, restoredStep == step,
                state == TrialState(seed: seed, rank: rank, step: step, size: size)
            {
                continue
            }
            outcome.lose(
                "rank \(rank) restored \(restored[rank].map { "step \($0.step)" } ?? "nothing"), not \(step) exactly"
            )
        }
    }
}
