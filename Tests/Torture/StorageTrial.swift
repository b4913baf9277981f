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
struct StorageTrial {
    var index: Int
    var seed: UInt64
    var directory: String
    var programs: Programs

    func run() -> TrialOutcome {
        var random = SplitMix64(seed: seed)
        var outcome = TrialOutcome(kind: .storage, index: index, seed: seed)
        defer { StorageFaults.removeAll() }
        do {
            let choice = Double.random(in: 0..<1, using: &random)
            if choice < 0.1 {
                try failingRestore(&random, &outcome)
            } else {
                try failingCommit(slowOnly: choice < 0.2, &random, &outcome)
            }
        } catch {
            outcome.lose("\(error)")
        }
        return outcome
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

    /// Roughly how many calls of `operation` one commit makes, so that a random skip lands anywhere in it.
    private static func callsPerCommit(_ operation: StorageFault.Operation, ranks: Int) -> Int {
        switch operation {
        case .makeDirectory, .rename: 2  // the temporary directory and its rename; retention's
        case .syncDirectory: 4
        case .open, .sync: 2 * ranks + 3  // shards, manifest, checksum
        case .remove: ranks + 5  // retention's unlinks of the oldest checkpoint
        case .write, .read: 8 * ranks + 4
        }
    }

    private func failingCommit(slowOnly: Bool, _ random: inout SplitMix64, _ outcome: inout TrialOutcome) throws {
        let ranks = Int.random(in: 1...4, using: &random)
        let asynchronous = random.chance(0.4)
        let size = Int.random(in: 500...20_000, using: &random)
        let operations: [StorageFault.Operation] = [
            .open, .write, .sync, .syncDirectory, .rename, .makeDirectory, .remove,
        ]
        let operation = operations.randomElement(using: &random)!
        let number = [EIO, EIO, ENOSPC, EDQUOT, EROFS].randomElement(using: &random)!
        // Opening, writing and syncing shards are per-rank calls: some faults hit one rank's only.
        let perShard = [.open, .write, .sync].contains(operation)
        let target =
            perShard && ranks > 1 && random.chance(0.3) ? shardName(Int.random(in: 0..<ranks, using: &random)) : ""
        let fault: StorageFault
        if slowOnly {
            let delay = Duration.milliseconds(Int.random(in: 1...5, using: &random))
            fault = StorageFault(operation, errno: 0, delay: delay)
            outcome.count("slow")
            outcome.category = "slow-\(operation.rawValue)"
        } else {
            fault = StorageFault(
                operation,
                pathContains: target,
                skip: Int.random(in: 0...Self.callsPerCommit(operation, ranks: ranks), using: &random),
                count: random.chance(0.7) ? 1 : .max,
                errno: number,
                delay: random.chance(0.2) ? .milliseconds(1) : .zero
            )
            outcome.category = operation.rawValue
        }
        if asynchronous { outcome.count("async") }
        outcome.scenario = "\(ranks) rank(s), \(asynchronous ? "async" : "sync"): \(fault)"
        // The oldest checkpoint is there for retention to delete while the second one commits
        // (keep the newest two), so that unlink calls happen during the commit too.
        let (oldest, first, second, third): (Step, Step, Step, Step) = (50, 100, 200, 300)
        let checkpoints = directory + "/checkpoints"
        let dataSeed = seed
        var settings = trialConfiguration(mode: asynchronous ? .asynchronous() : .synchronous)
        settings.retention = .init(keepLast: 2)
        let configuration = settings
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
                let leftovers = temporaries(in: checkpoints)
                if !leftovers.isEmpty && operation != .remove {
                    report.problems.append("temporary directories left: \(leftovers)")
                }
            }
            try communicator.barrier()
            // Whatever is committed reads back exactly: the previous checkpoint always, the new one if it made it.
            let committed = committedSteps(checkpoints)
            for step in [first, second] where step == first || committed.contains(step.rawValue) {
                if readTrialState(checkpoints, step: step, rank: rank)
                    != TrialState(seed: dataSeed, rank: rank, step: step, size: size)
                {
                    report.problems.append(
                        "LOST: rank \(rank)'s shard of committed checkpoint \(step) does not read back exactly"
                    )
                }
            }
            if !committed.contains(first.rawValue) { report.problems.append("LOST: checkpoint \(first) is gone") }
            try communicator.barrier()
            do { try save(third) } catch {
                report.problems.append("the save after the fault was removed failed: \(error)")
            }
            return report
        }
        let committedSecond = committedSteps(checkpoints).contains(second.rawValue)
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
                outcome.count("committed-anyway")
                outcome.scenario += " (committed although the save threw)"
            }
        }
        // A restart restores the application's last checkpoint exactly, and removes anything left.
        try checkRestore(checkpoints, ranks: ranks, step: third, size: size, &outcome)
        let leftovers = temporaries(in: checkpoints)
        if !leftovers.isEmpty { outcome.complain("temporary directories left after a restart: \(leftovers)") }
        outcome.recovered = !outcome.lost
    }

    private func failingRestore(_ random: inout SplitMix64, _ outcome: inout TrialOutcome) throws {
        let ranks = Int.random(in: 1...4, using: &random)
        let size = Int.random(in: 500...20_000, using: &random)
        let checkpoints = directory + "/checkpoints"
        let steps: [Step] = [5, 6]
        let dataSeed = seed
        try saveTrialStates(checkpoints, steps: steps, ranks: ranks, seed: dataSeed, size: size)
        let target = ranks > 1 && random.chance(0.5) ? shardName(Int.random(in: 0..<ranks, using: &random)) : ""
        let fault = StorageFault(
            .read,
            pathContains: target,
            skip: Int.random(in: 0...20, using: &random),
            count: random.chance(0.5) ? 1 : .max,
            errno: EIO
        )
        outcome.category = "read-during-restore"
        outcome.scenario = "\(ranks) rank(s), restore with \(fault)"
        StorageFaults.install([fault])
        let result = Result { try restoreTrialStates(checkpoints, ranks: ranks) }
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
        try checkRestore(checkpoints, ranks: ranks, step: steps.last!, size: size, &outcome)
        outcome.recovered = !outcome.lost
    }

    /// A fresh restart (no faults) restores `step` exactly on every rank.
    private func checkRestore(
        _ checkpoints: String,
        ranks: Int,
        step: Step,
        size: Int,
        _ outcome: inout TrialOutcome
    )
        throws
    {
        let restored = try restoreTrialStates(checkpoints, ranks: ranks)
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
