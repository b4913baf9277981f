@_spi(Testing) import Checkpoint
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Crash trials: the heat example, with one combination of the library's options (see
/// ``Combination``), is killed — the whole session, mpirun and its ranks included — and restarted
/// until it finishes. It dies either by SIGKILL at random instants (some aimed at the restore right
/// after a restart) or, in about half the trials, first at a named point of the commit pipeline
/// (`heat --crash-at POINT@N`, a point that the combination's commit reaches, at a later checkpoint),
/// then at random instants. Every restart must resume from the newest checkpoint a level holds, the
/// final checksum must equal an uninterrupted run's, `ckpt verify --all` must pass on the shared
/// directory, and no temporary or unfinished checkpoint may be left at any level.
final class CrashTrials {
    let programs: Programs
    let mpi: MPILauncher?
    /// Where the stand-in process dumper is written (once, when a trial needs it).
    let scratch: String
    /// Uninterrupted runs' checksums by "grid x steps": the same for every rank count and transport.
    private var references: [String: String] = [:]
    private var dumperScript: String?

    init(programs: Programs, mpi: MPILauncher?, scratch: String) {
        self.programs = programs
        self.mpi = mpi
        self.scratch = scratch
    }

    /// A crash at a named point of the pipeline: heat kills itself when every rank's checkpointer
    /// reaches `point` for the `occurrence`-th time.
    struct NamedCrash: CustomStringConvertible {
        var point: CrashPoint
        var occurrence: Int
        var description: String { "\(point)@\(occurrence)" }
    }

    /// One configuration of heat, drawn from the trial's seed.
    struct Setup: CustomStringConvertible {
        var combination: Combination
        var ranks: Int
        var grid: Int
        var steps: Int
        var every: Int
        var delayMs: Int
        var mpi: Bool
        /// Random SIGKILLs (after the named crash, if there is one).
        var plannedKills: Int
        /// `--incremental FULL_EVERY` (incremental combinations).
        var fullEvery: Int?
        /// `--flush-every K` (redundancy combinations).
        var flushEvery: Int?
        /// `--dump-every K` (dump combinations).
        var dumpEvery: Int?
        /// The first run's `--crash-at`, in about half the trials.
        var namedCrash: NamedCrash?

        init(_ combination: Combination, _ random: inout SplitMix64, mpiAvailable: Bool) {
            self.combination = combination
            // With redundancy, partner copies need a second rank.
            // XOR sets of 3 need three ranks (on three simulated nodes).
            ranks = Int.random(in: (combination.xor ? 3 : combination.redundancy ? 2 : 1)...4, using: &random)
            grid = [24, 32, 48, 64].randomElement(using: &random)!
            steps = Int.random(in: 30...90, using: &random)
            every = Int.random(in: 1...6, using: &random)
            delayMs = Int.random(in: 1...4, using: &random)
            // Drawn either way, so that a seed repeats the same trials with and without MPI.
            let underMPI = random.chance(0.3)
            // Simulated nodes exist for in-process ranks only.
            mpi = mpiAvailable && underMPI && !combination.xor
            if combination.incremental { fullEvery = Int.random(in: 2...5, using: &random) }
            if combination.redundancy { flushEvery = Int.random(in: 1...4, using: &random) }
            if combination.dumps { dumpEvery = Int.random(in: 1...3, using: &random) }
            plannedKills = 0
            if random.chance(0.5), let crash = drawNamedCrash(&random) {
                namedCrash = crash
                plannedKills = Int.random(in: 0...3, using: &random)
            } else {
                plannedKills = Int.random(in: 1...6, using: &random)
            }
        }

        /// Checkpoints an uninterrupted run from scratch commits (heat also saves its last step).
        var checkpoints: Int { steps / every + (steps % every == 0 ? 0 : 1) }

        /// The checkpoints (1-based) at which rank 0's commit reaches `point` in an uninterrupted run
        /// from scratch; empty when this combination's commit never reaches it.
        func checkpointsReaching(_ point: CrashPoint) -> [Int] {
            let all = Array(1...max(1, checkpoints))
            func every(_ period: Int?) -> [Int] { period.map { period in all.filter { $0 % period == 0 } } ?? [] }
            switch point {
            case .shardWritten: return all
            case .aggregateWritten: return combination.aggregate ? all : []
            case .partnerCopied: return combination.redundancy && ranks > 1 ? all : []
            case .parityWritten: return combination.xor ? all : []
            // A marker store writes no checksum file before its marker: the marker is `published`.
            case .committing(let step): return combination.marker && step == .checksumWritten ? [] : all
            case .flushCopied: return every(flushEvery)
            case .flushing(let step): return combination.marker && step == .checksumWritten ? [] : every(flushEvery)
            // Retention runs after every commit (from the 4th on, heat's keep-3 deletes one).
            case .retentionApplied: return all
            case .dumped: return every(dumpEvery)
            }
        }

        /// A point this combination's commit reaches, at an occurrence that falls on the second
        /// checkpoint or later (so that a committed checkpoint is there to resume from).
        private func drawNamedCrash(_ random: inout SplitMix64) -> NamedCrash? {
            let candidates = CrashPoint.allCases.compactMap { point -> (CrashPoint, [Int])? in
                let reaching = checkpointsReaching(point)
                return reaching.contains { $0 >= 2 } ? (point, reaching) : nil
            }
            guard let (point, reaching) = candidates.randomElement(using: &random) else { return nil }
            let first = reaching.firstIndex { $0 >= 2 }! + 1
            return NamedCrash(point: point, occurrence: Int.random(in: first...reaching.count, using: &random))
        }

        func heatArguments(shared: String, local: String, dumper: String?, keyFile: String?) -> [String] {
            var arguments = ["--grid", String(grid), "--steps", String(steps), "--checkpoint-every", String(every)]
            arguments += ["--delay-ms", String(delayMs), "--dir", shared]
            if combination.asynchronous { arguments.append("--async") }
            if combination.marker { arguments += ["--commit-method", "marker"] }
            if combination.aggregate {
                arguments.append("--aggregate")
                if !mpi && ranks > 1 { arguments += ["--nodes", String(ranks / 2)] }
            }
            if let fullEvery { arguments += ["--incremental", String(fullEvery)] }
            if let flushEvery { arguments += ["--local-dir", local, "--flush-every", String(flushEvery)] }
            if combination.xor { arguments += ["--xor-set", "3", "--nodes", String(ranks)] }
            if let dumpEvery, let dumper {
                arguments += ["--dumper", "command:" + dumper, "--dump-every", String(dumpEvery)]
            }
            if let keyFile { arguments += ["--key-file", keyFile, "--run-id", Combination.runID] }
            return arguments
        }

        var description: String {
            var parts = [
                "\(combination)", "\(ranks) \(mpi ? "MPI" : "in-process") rank(s)", "grid \(grid)", "\(steps) steps",
                "checkpoint every \(every)", "\(delayMs) ms/step",
            ]
            if let fullEvery { parts.append("full every \(fullEvery)") }
            if let flushEvery { parts.append("flush every \(flushEvery)") }
            if let dumpEvery { parts.append("dump every \(dumpEvery)") }
            if let namedCrash { parts.append("crash at \(namedCrash)") }
            parts.append("\(plannedKills) random kill(s)")
            return parts.joined(separator: ", ")
        }
    }

    func run(index: Int, seed: UInt64, directory: String, combination: Combination) -> TrialOutcome {
        var random = SplitMix64(seed: seed)
        let setup = Setup(combination, &random, mpiAvailable: mpi != nil)
        var outcome = TrialOutcome(
            kind: .crash,
            index: index,
            seed: seed,
            category: setup.namedCrash.map { "\($0.point)" } ?? "random-kills",
            scenario: setup.description
        )
        outcome.combination = combination.description
        if combination.asynchronous { outcome.count("async") }
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

    /// A stand-in process dumper for heat's `--dumper 'command:…'`: a script that really writes a
    /// small image file into the images directory the library gives it (`{dir}`).
    private func dumper() throws -> String {
        if let dumperScript { return dumperScript }
        let path = scratch + "/stand-in-dumper.sh"
        guard !path.contains(" ") else {
            throw HarnessError("the work directory \(scratch) contains a space, which heat's --dumper cannot take")
        }
        let script = """
            #!/bin/sh
            # A stand-in process dumper: writes a small image of "the process" into the images directory.
            set -e
            mkdir -p "$1"
            printf 'pid %s step %s rank %s\\n' "$2" "$3" "$4" > "$1/pages-1.img"
            """
        try (script + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        chmod(path, 0o755)
        let command = "\(path) {dir} {pid} {step} {rank}"
        dumperScript = command
        return command
    }

    private func crashUntilDone(
        _ setup: Setup,
        _ random: inout SplitMix64,
        expected: String,
        directory: String,
        outcome: inout TrialOutcome
    ) throws {
        let shared = directory + "/checkpoints"
        let local = directory + "/local"
        let levels = (shared: shared, local: setup.combination.redundancy ? local : nil)
        let keyFile = setup.combination.sealed ? try writeKeyFile(in: directory) : nil
        let arguments = setup.heatArguments(
            shared: shared,
            local: local,
            dumper: setup.combination.dumps ? try dumper() : nil,
            keyFile: keyFile
        )
        let command =
            setup.mpi
            ? mpi!.command(ranks: setup.ranks, arguments)
            : [programs.heatPath, "--ranks", String(setup.ranks)] + arguments
        // The time a whole run takes and the time until a resumed run has restored, learnt as runs go.
        // (mpirun alone takes most of a second to start its ranks.)
        var runTime = Duration.milliseconds(setup.steps * (setup.delayMs + 3) + (setup.mpi ? 900 : 100))
        var restoreTime: Duration?
        var kills = 0
        let attempts = setup.plannedKills + (setup.namedCrash == nil ? 4 : 5)
        for attempt in 1...attempts {
            let newestAtStart = restorableSteps(
                shared: levels.shared,
                local: levels.local,
                ranks: setup.ranks,
                xorSets: setup.combination.xor ? xorSets(ranks: setup.ranks, size: 3) : []
            ).last
            // The named crash is the first run's; later runs are killed at random instants.
            let named = attempt == 1 ? setup.namedCrash : nil
            let child = try ChildProcess(
                command + (named.map { ["--crash-at", $0.description] } ?? []),
                output: directory + "/run-\(attempt).out",
                error: directory + "/run-\(attempt).err"
            )
            outcome.count("runs")
            if attempt > 1 { outcome.count("restarts") }
            var killed = false
            if named == nil && kills < setup.plannedKills {
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
                if named == nil { runTime = max(runTime, ContinuousClock.now - child.started) }
            }
            let ending = child.waitForEnd()
            // Under mpirun, ranks may outlive the one that crashed itself for a moment.
            child.killSession()
            if !killed, ending != .exited(0), let refusal = refusal(child) {
                outcome.skipped = "refused by the library: \(refusal)"
                return
            }
            let lines = child.output.split(separator: "\n").map(String.init)
            if let first = lines.first {
                checkStart(first, newest: newestAtStart, attempt: attempt, outcome: &outcome)
                // The first line comes right after the restore: aim later kills at just before it.
                if let seen = child.firstOutput { restoreTime = seen }
            }
            if let named {
                if crashedItself(child, ending, mpi: setup.mpi) {
                    killed = true
                    outcome.count("named")
                } else if ending == .exited(0) {
                    outcome.count("named-missed")
                    outcome.scenario += " (\(named) not reached)"
                }
            }
            if killed { continue }
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
            try checkLevels(levels, keyFile: keyFile, outcome: &outcome)
            return
        }
        outcome.lose("heat did not finish after \(attempts) runs")
    }

    /// Whether a run armed with `--crash-at` ended by killing itself there: SIGKILL, or under
    /// mpirun, mpirun reporting that a rank died of signal 9.
    private func crashedItself(_ child: ChildProcess, _ ending: ChildProcess.Ending, mpi: Bool) -> Bool {
        if ending == .signalled(SIGKILL) { return true }
        return mpi && ending != .exited(0) && child.errorOutput.contains("signal 9")
    }

    /// The library's refusal of the combination (`invalidConfiguration`), when that is why heat stopped.
    private func refusal(_ child: ChildProcess) -> String? {
        child.errorOutput.split(separator: "\n").first { $0.contains("invalidConfiguration") }.map {
            $0.replacingOccurrences(of: "Error: ", with: "").replacingOccurrences(
                of: "invalidConfiguration: ",
                with: ""
            )
        }
    }

    /// A restart must resume from the newest checkpoint a level holds: a crash never makes it unusable.
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

    /// After the finish every committed checkpoint of the shared directory verifies, no level holds
    /// a temporary or unfinished checkpoint, and every recorded process dump succeeded.
    /// Writes the sealed combinations' key into the trial's directory, owner-only as heat requires.
    private func writeKeyFile(in directory: String) throws -> String {
        let path = directory + "/torture.key"
        guard
            FileManager.default.createFile(
                atPath: path,
                contents: Data(Combination.keySecret),
                attributes: [.posixPermissions: 0o600]
            )
        else { throw HarnessError("could not write the key file \(path)") }
        return path
    }

    private func checkLevels(
        _ levels: (shared: String, local: String?),
        keyFile: String?,
        outcome: inout TrialOutcome
    ) throws {
        let shared = levels.shared
        if !committedSteps(shared).isEmpty {
            let sealing = keyFile.map { ["--key-file", $0, "--run-id", Combination.runID] } ?? []
            let run = try ChildProcess.run(
                [programs.ckptPath, "verify", shared, "--all"] + sealing,
                in: shared + "/..",
                name: "verify",
                timeout: programs.runTimeout
            )
            if !run.succeeded {
                outcome.complain("ckpt verify --all failed after the finish: \(run.output) \(run.errorTail)")
            }
        }
        var stores = [shared]
        if let local = levels.local { stores += nodeLocalStores(local) }
        for store in stores {
            let leftovers = temporaries(in: store)
            if !leftovers.isEmpty {
                outcome.complain("temporary or unfinished checkpoints left in \(store) after the finish: \(leftovers)")
            }
            checkDumpRecords(store, outcome: &outcome)
        }
    }

    /// Every dump record of a committed checkpoint says `ok` and its images are there.
    private func checkDumpRecords(_ store: String, outcome: inout TrialOutcome) {
        for step in committedSteps(store) {
            let folder = store + "/ckpt-" + zeroPadded(step)
            let names = (try? FileManager.default.contentsOfDirectory(atPath: folder + "/dumps")) ?? []
            for name in names where name.hasSuffix(".json") {
                guard let data = FileManager.default.contents(atPath: folder + "/dumps/" + name),
                    let record = try? JSONDecoder().decode(DumpRecord.self, from: data)
                else {
                    outcome.complain("unreadable dump record \(folder)/dumps/\(name)")
                    continue
                }
                if record.status != "ok" {
                    outcome.complain("dump record \(folder)/dumps/\(name): \(record.status) \(record.message ?? "")")
                } else if !FileManager.default.fileExists(
                    atPath: folder + "/" + record.imagesDirectory + "/pages-1.img"
                ) {
                    outcome.complain("dump record \(folder)/dumps/\(name) says ok but the image is missing")
                } else {
                    outcome.count("dump-records")
                }
            }
        }
    }

    private func tail(_ child: ChildProcess) -> String {
        child.errorOutput.split(separator: "\n").suffix(3).joined(separator: " | ")
    }
}
