import Checkpoint
import Foundation

/// A corruption trial: a run with two or three committed checkpoints, one kind of damage to the
/// newest, then a restart. The restart must skip the newest with a logged reason and restore the
/// previous one exactly; `ckpt verify` must call the newest corrupt.
///
/// Most trials restore in-process (multi-rank, through `LocalGroup`), which is fast; some go
/// through `ckpt verify --json`, and some use the heat example end to end (its restart must resume
/// from the previous checkpoint and still finish with the uninterrupted run's checksum).
struct CorruptionTrial {
    var index: Int
    var seed: UInt64
    var directory: String
    var programs: Programs

    func run() -> TrialOutcome {
        var random = SplitMix64(seed: seed)
        let corruption = Corruption.allCases.randomElement(using: &random)!
        let ranks = Int.random(in: (corruption.needsTwoRanks ? 2 : 1)...4, using: &random)
        var outcome = TrialOutcome(kind: .corrupt, index: index, seed: seed, category: corruption.rawValue)
        do {
            if random.chance(0.1) {
                outcome.count("heat")
                try throughHeat(corruption, ranks: ranks, &random, &outcome)
            } else {
                try inProcess(corruption, ranks: ranks, &random, &outcome)
            }
        } catch {
            outcome.lose("\(error)")
        }
        return outcome
    }

    private func inProcess(
        _ corruption: Corruption,
        ranks: Int,
        _ random: inout SplitMix64,
        _ outcome: inout TrialOutcome
    ) throws {
        let checkpoints = directory + "/checkpoints"
        let size = Int.random(in: 500...6000, using: &random)
        let older = Step(rawValue: UInt64.random(in: 1...40, using: &random))
        let previous = older + Int.random(in: 1...40, using: &random)
        let newest = previous + Int.random(in: 1...40, using: &random)
        let steps = random.chance(0.5) ? [older, previous, newest] : [previous, newest]
        try saveTrialStates(checkpoints, steps: steps, ranks: ranks, seed: seed, size: size)
        let layout = CheckpointDirectory(path: checkpoints)
        let what = try corruption.apply(
            to: layout.path(for: newest),
            ranks: ranks,
            previous: layout.path(for: previous),
            using: &random
        )
        outcome.scenario = "\(ranks) rank(s), checkpoints \(steps.map(\.description).joined(separator: ",")): \(what)"

        var detected = false
        if random.chance(0.25) {
            outcome.count("ckpt-verify")
            detected = try verifyReportsDamage(checkpoints, newest: newest, previous: previous, &outcome)
        }

        let collector = LogCollector()
        let restored: [(state: TrialState, step: Step)?]
        do {
            restored = try restoreTrialStates(checkpoints, ranks: ranks, logs: collector)
        } catch {
            outcome.lose("the restart failed instead of falling back to checkpoint \(previous): \(error)")
            outcome.detected = detected
            return
        }
        var wrong: [String] = []
        var stepsRestored = Set<UInt64>()
        for (rank, result) in restored.enumerated() {
            guard let (state, step) = result else {
                wrong.append("rank \(rank) found no checkpoint")
                continue
            }
            stepsRestored.insert(step.rawValue)
            if state != TrialState(seed: seed, rank: rank, step: step, size: size) {
                wrong.append("rank \(rank) restored data that differs from what was saved at step \(step)")
            }
        }
        let skipped = collector.messages.contains {
            $0.contains("skipping damaged checkpoint") && $0.contains("step=\(newest)")
        }
        switch (wrong.isEmpty, stepsRestored) {
        case (true, [previous.rawValue]):
            outcome.recovered = true
            if skipped {
                detected = true
            } else {
                outcome.complain("the newest checkpoint was skipped without a logged reason")
            }
        case (true, [newest.rawValue]):
            // The damage went unnoticed, yet every byte restored is right: not lost, but a miss.
            outcome.recovered = true
            outcome.count("undetected")
            detected = false
            outcome.complain("the damaged checkpoint \(newest) was restored (its data happened to be intact)")
        default:
            outcome.lose(
                "restored steps \(stepsRestored.sorted()) instead of \(previous)"
                    + (wrong.isEmpty ? "" : ": " + wrong.joined(separator: "; "))
            )
        }
        outcome.detected = detected
    }

    /// `ckpt verify --json` must report the newest checkpoint as corrupt and the previous as ok.
    private func verifyReportsDamage(
        _ checkpoints: String,
        newest: Step,
        previous: Step,
        _ outcome: inout TrialOutcome
    ) throws -> Bool {
        struct Result: Decodable {
            var step: UInt64
            var status: String
            var code: String?
        }
        let run = try ChildProcess.run(
            [programs.ckptPath, "verify", checkpoints, "--all", "--json"],
            in: directory,
            name: "verify",
            timeout: programs.runTimeout
        )
        guard case .exited = run.ending, !run.hung,
            let results = try? JSONDecoder().decode([Result].self, from: Data(run.output.utf8))
        else {
            outcome.complain("ckpt verify --json ended with \(run.ending) and no JSON: \(run.errorTail)")
            return false
        }
        let verdicts = Dictionary(results.map { ($0.step, $0) }, uniquingKeysWith: { first, _ in first })
        if verdicts[previous.rawValue]?.status != "ok" {
            outcome.lose(
                "ckpt verify calls the intact checkpoint \(previous) \(verdicts[previous.rawValue]?.status ?? "missing")"
            )
        }
        guard let verdict = verdicts[newest.rawValue], verdict.status == "corrupt" else {
            outcome.complain(
                "ckpt verify reports the damaged checkpoint \(newest) as \(verdicts[newest.rawValue]?.status ?? "missing")"
            )
            return false
        }
        return true
    }

    /// Heat end to end: two checkpoints, damage to the newest, a longer run that must resume from the
    /// previous one, say why, and finish with the uninterrupted checksum.
    private func throughHeat(
        _ corruption: Corruption,
        ranks: Int,
        _ random: inout SplitMix64,
        _ outcome: inout TrialOutcome
    ) throws {
        let checkpoints = directory + "/checkpoints"
        let every = Int.random(in: 3...10, using: &random)
        let grid = [16, 32, 48].randomElement(using: &random)!
        let common = ["--grid", String(grid), "--checkpoint-every", String(every), "--dir", checkpoints]
        let heat = [programs.heatPath, "--ranks", String(ranks)] + common
        let first = try ChildProcess.run(
            heat + ["--steps", String(2 * every)],
            in: directory,
            name: "first",
            timeout: programs.runTimeout
        )
        guard first.succeeded else {
            throw HarnessError("heat's first run failed: \(first.ending), \(first.errorTail)")
        }
        let layout = CheckpointDirectory(path: checkpoints)
        let what = try corruption.apply(
            to: layout.path(for: Step(2 * every)),
            ranks: ranks,
            previous: layout.path(for: Step(every)),
            using: &random
        )
        outcome.scenario = "heat, \(ranks) rank(s), checkpoints \(every),\(2 * every): \(what)"
        let reference = try ChildProcess.run(
            [programs.heatPath, "--no-checkpoints", "--grid", String(grid), "--steps", String(3 * every)]
                + ["--dir", checkpoints + "-unused"],
            in: directory,
            name: "reference",
            timeout: programs.runTimeout
        )
        let second = try ChildProcess.run(
            heat + ["--steps", String(3 * every)],
            in: directory,
            name: "second",
            timeout: programs.runTimeout
        )
        guard second.succeeded else {
            outcome.lose("heat's restart failed: \(second.ending), \(second.errorTail)")
            return
        }
        let resumed = second.lines.first ?? ""
        let skipped = second.error.contains("skipping damaged checkpoint")
        outcome.detected = resumed == "resumed-from: \(every)" && skipped
        if second.lines.last != reference.lines.last || reference.lines.last?.hasPrefix("checksum: ") != true {
            outcome.lose("heat finished with \(second.lines.last ?? "nothing"), not \(reference.lines.last ?? "?")")
        } else if resumed == "resumed-from: \(every)" {
            outcome.recovered = true
            if !skipped { outcome.complain("heat skipped the damaged checkpoint without logging why") }
        } else {
            outcome.recovered = true
            outcome.count("undetected")
            outcome.complain("heat printed '\(resumed)' instead of resuming from \(every)")
        }
    }
}
