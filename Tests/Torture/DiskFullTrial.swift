import Checkpoint
import Foundation

/// A full-disk trial on a small tmpfs: one checkpoint commits, then a ballast file leaves only part
/// of the room the next one needs, so it runs out of space in the middle (in a shard, the manifest
/// or its checksum, depending on how much is left). Every rank must get a clear `diskFull` error,
/// the previous checkpoint must stay intact and restorable, no temporary directory may be left, and
/// the application must go on as configured: in-process it keeps running and its next save (after
/// the ballast is removed) commits; the heat example stops with the error and, restarted with room,
/// resumes from the previous checkpoint to the uninterrupted result.
struct DiskFullTrial {
    var index: Int
    var seed: UInt64
    var directory: String
    var programs: Programs

    func run() -> TrialOutcome {
        var random = SplitMix64(seed: seed)
        var outcome = TrialOutcome(kind: .enospc, index: index, seed: seed)
        let disk: TmpfsMount
        do {
            disk = try TmpfsMount(at: directory + "/tmpfs", megabytes: 16)
        } catch {
            outcome.skipped = "\(error)"
            return outcome
        }
        defer { disk.unmount() }
        do {
            if random.chance(0.2) {
                try heatStops(on: disk, &random, &outcome)
            } else {
                try keepsRunning(on: disk, &random, &outcome)
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

    private func keepsRunning(on disk: TmpfsMount, _ random: inout SplitMix64, _ outcome: inout TrialOutcome) throws {
        let ranks = Int.random(in: 1...4, using: &random)
        let asynchronous = random.chance(0.4)
        let size = Int.random(in: 8_000...40_000, using: &random)
        let fraction = Double.random(in: 0...0.95, using: &random)
        let (first, second, third): (Step, Step, Step) = (10, 20, 30)
        let checkpoints = disk.path + "/checkpoints"
        let dataSeed = seed
        let mode: Checkpointer.Configuration.Mode = asynchronous ? .asynchronous() : .synchronous
        outcome.category = asynchronous ? "in-process-async" : "in-process-sync"
        if asynchronous { outcome.count("async") }
        outcome.scenario =
            "\(ranks) rank(s), \(asynchronous ? "async" : "sync"), \(size)-element field; room left for "
            + "\(Int(fraction * 100))% of the next checkpoint"
        let usage = SharedValue(0)
        let reports = try LocalGroup.run(ranks: ranks, timeout: 60) { communicator -> RankReport in
            let rank = communicator.rank
            var report = RankReport()
            let checkpointer = try Checkpointer(
                directory: checkpoints,
                communicator: communicator,
                configuration: trialConfiguration(mode: mode),
                logger: LogCollector().logger(label: "enospc")
            )
            func save(_ step: Step) throws {
                try checkpointer.checkpoint(TrialState(seed: dataSeed, rank: rank, step: step, size: size), step: step)
                try checkpointer.finish()
            }
            let before = disk.freeBytes
            try save(first)
            try communicator.barrier()
            if rank == 0 {
                let used = before - disk.freeBytes
                usage.value = used
                disk.fill(leaving: Int(Double(used) * fraction))
            }
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
            // The failed checkpoint left nothing behind, and the previous one is intact (read-only checks).
            if rank == 0 {
                let leftovers = temporaries(in: checkpoints)
                if !leftovers.isEmpty { report.problems.append("temporary directories left: \(leftovers)") }
            }
            let committed = committedSteps(checkpoints)
            if report.failure != nil, committed.contains(second.rawValue) {
                report.problems.append("checkpoint \(second) is committed although its save failed")
            }
            if readTrialState(checkpoints, step: first, rank: rank)
                != TrialState(seed: dataSeed, rank: rank, step: first, size: size)
            {
                report.problems.append("LOST: rank \(rank)'s shard of checkpoint \(first) does not read back intact")
            }
            try communicator.barrier()
            if rank == 0 { disk.freeUp() }
            try communicator.barrier()
            // The application goes on: with room again, the next checkpoint commits.
            do { try save(third) } catch {
                report.problems.append("the save after freeing space failed: \(error)")
            }
            return report
        }
        let triggered = reports.contains { $0.failure != nil }
        for problem in reports.flatMap(\.problems) {
            if problem.hasPrefix("LOST") { outcome.lose(problem) } else { outcome.complain(problem) }
        }
        if triggered {
            let clear = reports.allSatisfy { $0.code == "diskFull" }
            outcome.detected = clear
            if !clear {
                outcome.complain("not every rank reported diskFull: \(reports.map { $0.failure ?? "no error" })")
            }
        } else {
            outcome.count("not-triggered")
            outcome.scenario += " (it fit: \(usage.value) bytes)"
        }
        // A restart restores the newest checkpoint exactly.
        let restored = try restoreTrialStates(checkpoints, ranks: ranks)
        for (rank, result) in restored.enumerated() {
            guard let (state, step) = result, step == third,
                state == TrialState(seed: seed, rank: rank, step: third, size: size)
            else {
                outcome.lose(
                    "rank \(rank) restored \(restored[rank].map { "step \($0.step)" } ?? "nothing"), not \(third) exactly"
                )
                continue
            }
        }
        outcome.recovered = !outcome.lost
    }

    private func heatStops(on disk: TmpfsMount, _ random: inout SplitMix64, _ outcome: inout TrialOutcome) throws {
        let ranks = Int.random(in: 1...4, using: &random)
        let every = Int.random(in: 5...15, using: &random)
        let fraction = Double.random(in: 0.05...0.8, using: &random)
        let checkpoints = disk.path + "/checkpoints"
        let heat =
            [programs.heatPath, "--ranks", String(ranks), "--grid", "160", "--checkpoint-every", String(every)]
            + ["--dir", checkpoints]
        outcome.category = "heat-stops"
        outcome.count("heat")
        outcome.scenario =
            "heat, \(ranks) rank(s), checkpoint every \(every); room left for \(Int(fraction * 100))% of the first checkpoint"
        let before = disk.freeBytes
        let first = try ChildProcess.run(
            heat + ["--steps", String(every)],
            in: directory,
            name: "first",
            timeout: programs.runTimeout
        )
        guard first.succeeded else {
            throw HarnessError("heat's first run failed: \(first.ending), \(first.errorTail)")
        }
        disk.fill(leaving: Int(Double(before - disk.freeBytes) * fraction))
        let full = try ChildProcess.run(
            heat + ["--steps", String(2 * every)],
            in: directory,
            name: "full",
            timeout: programs.runTimeout
        )
        if full.hung { outcome.lose("heat hung on a full disk") }
        if full.succeeded {
            outcome.count("not-triggered")
        } else {
            outcome.detected = full.error.contains("diskFull")
            if outcome.detected != true {
                outcome.complain("heat stopped without a diskFull error: \(full.ending), \(full.errorTail)")
            }
            let leftovers = temporaries(in: checkpoints)
            if !leftovers.isEmpty { outcome.complain("temporary directories left: \(leftovers)") }
            let verify = try ChildProcess.run(
                [programs.ckptPath, "verify", checkpoints, "--step", String(every)],
                in: directory,
                name: "verify",
                timeout: programs.runTimeout
            )
            if !verify.succeeded { outcome.lose("the previous checkpoint does not verify: \(verify.output)") }
        }
        disk.freeUp()
        let resumed = try ChildProcess.run(
            heat + ["--steps", String(2 * every)],
            in: directory,
            name: "resumed",
            timeout: programs.runTimeout
        )
        let reference = try ChildProcess.run(
            [programs.heatPath, "--no-checkpoints", "--grid", "160", "--steps", String(2 * every)]
                + ["--dir", directory + "/unused"],
            in: directory,
            name: "reference",
            timeout: programs.runTimeout
        )
        let expectedStart = full.succeeded ? "resumed-from: \(2 * every)" : "resumed-from: \(every)"
        guard resumed.succeeded, resumed.lines.first == expectedStart,
            let last = resumed.lines.last, last == reference.lines.last, last.hasPrefix("checksum: ")
        else {
            outcome.lose(
                "the restart with room printed \(resumed.lines) (\(resumed.ending)); expected \(expectedStart) and \(reference.lines.last ?? "?")"
            )
            return
        }
        outcome.recovered = true
    }
}

/// A value shared between rank threads of a trial.
final class SharedValue<Value: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: Value
    init(_ value: Value) { stored = value }
    var value: Value {
        get { lock.withLock { stored } }
        set { lock.withLock { stored = newValue } }
    }
}
