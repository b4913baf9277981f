import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Crash trials: the heat example (in-process ranks or MPI, synchronous or asynchronous
/// checkpoints) is killed with SIGKILL — the whole session, mpirun and its ranks included — at
/// random instants, some of them while it restores, and restarted until it finishes. Its final
/// checksum must equal an uninterrupted run's.
final class CrashTrials {
    let programs: Programs
    let mpi: MPILauncher?
    /// Uninterrupted runs' checksums by "grid x steps": the same for every rank count and transport.
    private var references: [String: String] = [:]

    init(programs: Programs, mpi: MPILauncher?) {
        self.programs = programs
        self.mpi = mpi
    }

    /// One configuration of heat, drawn from the trial's seed.
    struct Setup: CustomStringConvertible {
        var ranks: Int
        var grid: Int
        var steps: Int
        var every: Int
        var delayMs: Int
        var asynchronous: Bool
        var mpi: Bool
        var plannedKills: Int

        init(_ random: inout SplitMix64, mpiAvailable: Bool) {
            ranks = Int.random(in: 1...4, using: &random)
            grid = [24, 32, 48, 64].randomElement(using: &random)!
            steps = Int.random(in: 30...90, using: &random)
            every = Int.random(in: 1...6, using: &random)
            delayMs = Int.random(in: 1...4, using: &random)
            asynchronous = random.chance(0.5)
            mpi = mpiAvailable && random.chance(0.3)
            plannedKills = Int.random(in: 1...6, using: &random)
        }

        func heatArguments(directory: String) -> [String] {
            var arguments = ["--grid", String(grid), "--steps", String(steps), "--checkpoint-every", String(every)]
            arguments += ["--delay-ms", String(delayMs), "--dir", directory]
            if asynchronous { arguments.append("--async") }
            return arguments
        }

        var description: String {
            "\(ranks) \(mpi ? "MPI" : "in-process") rank(s), \(asynchronous ? "async" : "sync"), grid \(grid), "
                + "\(steps) steps, checkpoint every \(every), \(delayMs) ms/step"
        }
    }

    func run(index: Int, seed: UInt64, directory: String) -> TrialOutcome {
        var random = SplitMix64(seed: seed)
        let setup = Setup(&random, mpiAvailable: mpi != nil)
        var outcome = TrialOutcome(
            kind: .crash,
            index: index,
            seed: seed,
            category: (setup.mpi ? "mpi-" : "local-") + (setup.asynchronous ? "async" : "sync"),
            scenario: setup.description
        )
        if setup.asynchronous { outcome.count("async") }
        if setup.mpi { outcome.count("mpi") }
        do {
            let expected = try reference(grid: setup.grid, steps: setup.steps, scratch: directory)
            try crashUntilDone(setup, &random, expected: expected, directory: directory, outcome: &outcome)
        } catch {
            outcome.lose("\(error)")
        }
        return outcome
    }

    /// The uninterrupted run's checksum (computed once per grid and step count).
    private func reference(grid: Int, steps: Int, scratch: String) throws -> String {
        let key = "\(grid)x\(steps)"
        if let known = references[key] { return known }
        let arguments = [programs.heatPath, "--no-checkpoints", "--grid", String(grid), "--steps", String(steps)]
        let run = try ChildProcess.run(
            arguments + ["--dir", scratch + "/unused"],
            in: scratch,
            name: "reference",
            timeout: programs.runTimeout
        )
        guard run.succeeded, let line = run.lines.last, line.hasPrefix("checksum: ") else {
            throw HarnessError("the uninterrupted reference run failed: \(run.ending), \(run.errorTail)")
        }
        references[key] = line
        return line
    }

    private func crashUntilDone(
        _ setup: Setup,
        _ random: inout SplitMix64,
        expected: String,
        directory: String,
        outcome: inout TrialOutcome
    ) throws {
        let checkpoints = directory + "/checkpoints"
        let arguments = setup.heatArguments(directory: checkpoints)
        let command =
            setup.mpi
            ? mpi!.command(ranks: setup.ranks, arguments)
            : [programs.heatPath, "--ranks", String(setup.ranks)] + arguments
        // The time a whole run takes and the time until a resumed run has restored, learnt as runs go.
        // (mpirun alone takes most of a second to start its ranks.)
        var runTime = Duration.milliseconds(setup.steps * (setup.delayMs + 3) + (setup.mpi ? 900 : 100))
        var restoreTime: Duration?
        var kills = 0
        for attempt in 1...(setup.plannedKills + 4) {
            let newestAtStart = committedSteps(checkpoints).last
            let child = try ChildProcess(
                command,
                output: directory + "/run-\(attempt).out",
                error: directory + "/run-\(attempt).err"
            )
            outcome.count("runs")
            if attempt > 1 { outcome.count("restarts") }
            var killed = false
            if kills < setup.plannedKills {
                // Some kills aim at the restore: just before a resumed run prints where it resumed.
                let aimAtRestore = newestAtStart != nil && restoreTime != nil && random.chance(0.5)
                let delay =
                    aimAtRestore
                    ? restoreTime! * Double.random(in: 0.4...1.0, using: &random)
                    : runTime * Double.random(in: 0.02...0.9, using: &random)
                if !child.wait(until: child.started + delay) {
                    let inRestore = newestAtStart != nil && child.firstOutput == nil
                    child.killSession()
                    if child.waitForEnd() == .signalled(SIGKILL) {
                        killed = true
                        kills += 1
                        outcome.count("kills")
                        if inRestore { outcome.count("kills-in-restore") }
                    }
                }
            }
            if !killed {
                if !child.wait(until: child.started + programs.runTimeout) {
                    child.killSession()
                    _ = child.waitForEnd()
                    outcome.count("hangs")
                    outcome.lose("run \(attempt) hung (killed after \(Int(programs.timeout)) s): \(tail(child))")
                    return
                }
                runTime = max(runTime, ContinuousClock.now - child.started)
            }
            let lines = child.output.split(separator: "\n").map(String.init)
            if let first = lines.first {
                checkStart(first, newest: newestAtStart, attempt: attempt, outcome: &outcome)
                // The first line comes right after the restore: aim later kills at just before it.
                if let seen = child.firstOutput { restoreTime = seen }
            }
            if killed { continue }
            let ending = child.waitForEnd()
            guard ending == .exited(0) else {
                outcome.lose("run \(attempt) ended with \(ending) although nobody killed it: \(tail(child))")
                return
            }
            guard let last = lines.last, last == expected else {
                outcome.lose("final \(lines.last ?? "(no output)") differs from the uninterrupted run's \(expected)")
                return
            }
            outcome.count("bit-identical")
            outcome.recovered = true
            try checkDirectory(checkpoints, outcome: &outcome)
            return
        }
        outcome.lose("heat did not finish after \(setup.plannedKills + 4) runs")
    }

    /// A restart must resume from the newest committed checkpoint: a crash never makes it unusable.
    private func checkStart(_ first: String, newest: UInt64?, attempt: Int, outcome: inout TrialOutcome) {
        switch (first, newest) {
        case ("fresh-start", nil): break
        case ("fresh-start", let newest?):
            outcome.lose("run \(attempt) started fresh although checkpoint \(newest) was committed")
        case (_, let newest?) where first == "resumed-from: \(newest)": break
        default:
            outcome.complain(
                "run \(attempt) printed '\(first)' but the newest committed checkpoint was \(newest.map(String.init) ?? "none")"
            )
        }
    }

    /// After the finish every committed checkpoint verifies and no temporary directory is left.
    private func checkDirectory(_ checkpoints: String, outcome: inout TrialOutcome) throws {
        let run = try ChildProcess.run(
            [programs.ckptPath, "verify", checkpoints, "--all"],
            in: checkpoints + "/..",
            name: "verify",
            timeout: programs.runTimeout
        )
        if !run.succeeded {
            outcome.complain("ckpt verify --all failed after the finish: \(run.output) \(run.errorTail)")
        }
        let leftovers = ((try? FileManager.default.contentsOfDirectory(atPath: checkpoints)) ?? []).filter {
            $0.hasPrefix(".ckpt-") && $0.hasSuffix(".tmp")
        }
        if !leftovers.isEmpty { outcome.complain("temporary directories left after the finish: \(leftovers)") }
    }

    private func tail(_ child: ChildProcess) -> String {
        child.errorOutput.split(separator: "\n").suffix(3).joined(separator: " | ")
    }
}

/// The steps of the committed checkpoint directories (`ckpt-<12+ digits>`) in `directory`, oldest first.
func committedSteps(_ directory: String) -> [UInt64] {
    ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).compactMap { name in
        name.hasPrefix("ckpt-") ? UInt64(name.dropFirst(5)) : nil
    }.sorted()
}
