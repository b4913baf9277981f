// torture: the fault-injection harness. It crashes, corrupts, starves and sabotages checkpoints and
// checks that the last good state always comes back.
//
//     Scripts/torture --trials 20 --kinds crash,corrupt --seed 7
//     Scripts/torture --kinds crash --trials-per-combination 200 --seed 2027
//
// It prints what it tried per kind, a table of trials, detected, recovered and lost per fault kind,
// and as its last line `lost: N`. The exit status is 0 only when nothing was lost and every fault
// that should be detected was. A fixed --seed repeats the same trials (the instants of kills aside).

import ArgumentParser
import Foundation

#if canImport(Glibc)
import Glibc
#endif

@main
enum Torture {
    /// `torture _trial …` runs one trial (the harness starts itself so); anything else runs the harness.
    static func main() {
        let arguments = Array(CommandLine.arguments.dropFirst())
        if arguments.first == TrialCommand.configuration.commandName {
            TrialCommand.main(Array(arguments.dropFirst()))
        } else {
            RunTrials.main(arguments)
        }
    }
}

/// Where the programs under test are, shared by the harness and its trial processes.
struct Programs: ParsableArguments {
    @Option(help: "The heat example (default: beside this executable).")
    var heat: String?

    @Option(help: "The ckpt tool (default: beside this executable).")
    var ckpt: String?

    @Option(help: "Seconds one program run may take before it counts as hung.")
    var timeout = 120.0

    /// This executable.
    static var ownExecutable: String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }

    /// The directory this executable is in.
    static var ownDirectory: String { (ownExecutable as NSString).deletingLastPathComponent }

    var heatPath: String { heat ?? Self.ownDirectory + "/heat" }
    var ckptPath: String { ckpt ?? Self.ownDirectory + "/ckpt" }
    var runTimeout: Duration { .milliseconds(Int(timeout * 1000)) }

    func validate() throws {
        guard timeout > 0 && timeout.isFinite else { throw ValidationError("--timeout must be a positive number") }
        for (path, flag) in [(heatPath, "--heat"), (ckptPath, "--ckpt")]
        where !FileManager.default.isExecutableFile(atPath: path) {
            throw ValidationError(
                "\(path) is not an executable; build it (swift build --product heat --product ckpt) or pass \(flag)"
            )
        }
    }

    /// The options to hand to a trial process.
    var arguments: [String] { ["--heat", heatPath, "--ckpt", ckptPath, "--timeout", String(timeout)] }
}

/// `torture [--trials N] [--kinds …]`: runs the trials and prints the summary.
struct RunTrials: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "torture",
        abstract: "Fault-injection harness: crash, corrupt, fill and sabotage checkpoints; count what survives.",
        discussion: """
            Runs --trials trials of each fault kind: crash (kill -9 of the heat example at random \
            instants or at named points of the commit pipeline, restarts until it finishes, checksum \
            compared with an uninterrupted run), corrupt \
            (damage to the newest checkpoint, then a restart that must fall back), enospc (a small tmpfs \
            that fills up mid-checkpoint; needs root), storage (failing or slow system calls injected \
            through the library's storage seam). The crash and storage kinds run each trial with a \
            combination of the library's options (redundancy, incremental, dumps, async, marker commit), \
            drawn at random, or N of each with --trials-per-combination N; their tables have a row per \
            combination. Prints what it tried, a table per kind and, last, `lost: N`. Exits with status \
            0 only when nothing was lost and every fault was detected.
            """
    )

    @Option(help: "Trials per fault kind (crash and storage: each with a combination drawn at random).")
    var trials = 10

    @Option(
        name: .customLong("trials-per-combination"),
        help: ArgumentHelp(
            "Crash and storage kinds: N trials of each combination (N x combinations trials) instead of --trials.",
            valueName: "N"
        )
    )
    var trialsPerCombination: Int?

    @Option(
        help:
            "Crash and storage kinds: only these combinations (comma-separated): \(Combination.names.joined(separator: ", ")).",
        transform: { text in
            try text.split(separator: ",").map { name in
                let name = name.trimmingCharacters(in: .whitespaces)
                guard let combination = Combination(name: name) else {
                    throw ValidationError(
                        "unknown combination '\(name)'; use \(Combination.names.joined(separator: ", "))"
                    )
                }
                return combination
            }
        }
    )
    var combinations: [Combination]?

    @Option(
        help: "Comma-separated fault kinds: \(FaultKind.allCases.map(\.rawValue).joined(separator: ",")).",
        transform: { text in
            try text.split(separator: ",").map { name in
                guard let kind = FaultKind(rawValue: name.trimmingCharacters(in: .whitespaces)) else {
                    throw ValidationError(
                        "unknown kind '\(name)'; use \(FaultKind.allCases.map(\.rawValue).joined(separator: ", "))"
                    )
                }
                return kind
            }
        }
    )
    var kinds: [FaultKind] = FaultKind.allCases

    @Option(help: "The seed that decides every trial (default: random; printed either way).")
    var seed: UInt64?

    @Option(help: "Run only the trial with this index (to repeat a failure with its --seed).")
    var only: Int?

    @Option(
        name: .customLong("mpi-heat"),
        help: "A heat built with --traits MPI: crash trials then also run it under mpirun (when mpirun exists)."
    )
    var mpiHeat: String?

    @Flag(name: .customLong("no-mpi"), help: "Never use MPI, even when it is available.")
    var noMPI = false

    @Option(name: .customLong("work-dir"), help: "Where trial directories go (default: the temporary directory).")
    var workDirectory: String?

    @Flag(help: "Keep the directories of failed trials (their paths are printed).")
    var keep = false

    @Flag(help: "Print the summary as JSON instead of a table.")
    var json = false

    @Flag(help: "Print a line for every trial.")
    var verbose = false

    @OptionGroup var programs: Programs

    func validate() throws {
        guard trials >= 1 && trials <= 1_000_000 else { throw ValidationError("--trials must be at least 1") }
        if let trialsPerCombination, !(1...100_000).contains(trialsPerCombination) {
            throw ValidationError("--trials-per-combination must be at least 1")
        }
        guard !kinds.isEmpty else { throw ValidationError("--kinds must name at least one kind") }
        for kind in kinds where !Combination.all(for: kind).isEmpty && plan(kind).combinations.isEmpty {
            throw ValidationError(
                "--combinations names none of the \(kind.rawValue) kind's: \(Combination.all(for: kind).map(\.description).joined(separator: ", "))"
            )
        }
        let most = kinds.map { plan($0).count }.max() ?? trials
        if let only, only < 0 || only >= most {
            throw ValidationError("--only must be a trial index between 0 and \(most - 1)")
        }
        if let mpiHeat, !FileManager.default.isExecutableFile(atPath: mpiHeat) {
            throw ValidationError("--mpi-heat \(mpiHeat) is not an executable")
        }
    }

    func run() throws {
        let seed = self.seed ?? UInt64.random(in: 0...UInt64(UInt32.max))
        let root = try makeWorkRoot(seed: seed)
        let console = Console(json: json, verbose: verbose)
        console.say("seed: \(seed) (repeat with --seed \(seed)); work directory: \(root)")
        let mpi = noMPI ? nil : MPILauncher.detect(heat: mpiHeat, console: console)
        let crashes = CrashTrials(programs: programs, mpi: mpi, scratch: root)
        var summaries: [KindSummary] = []
        var kept: [String] = []
        for kind in FaultKind.allCases where kinds.contains(kind) {
            let plan = plan(kind)
            var summary = KindSummary(kind: kind, combinations: plan.combinations)
            let clock = ContinuousClock.now
            let indices = only.map { plan.count > $0 ? [$0] : [] } ?? Array(0..<plan.count)
            for (done, index) in indices.enumerated() {
                let trialSeed = SplitMix64.derive(seed, [SplitMix64.label(kind.rawValue), UInt64(index)])
                let combination = plan.combination(index: index, seed: trialSeed)
                let directory = root + "/\(kind.rawValue)-\(index)"
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
                var outcome =
                    kind == .crash
                    ? crashes.run(
                        index: index,
                        seed: trialSeed,
                        directory: directory,
                        combination: combination ?? .plain
                    )
                    : runInChild(kind, index: index, seed: trialSeed, directory: directory, combination: combination)
                if keep && !outcome.passed {
                    outcome.directory = directory
                    kept.append(directory)
                } else {
                    removeTree(directory)
                }
                summary.add(outcome)
                console.trial(outcome, done: done + 1, of: indices.count)
            }
            summary.seconds = (ContinuousClock.now - clock) / .seconds(1)
            summaries.append(summary)
        }
        if kept.isEmpty { removeTree(root) }
        var repeatOptions: [String] = []
        if let trialsPerCombination { repeatOptions += ["--trials-per-combination", String(trialsPerCombination)] }
        if let combinations {
            repeatOptions += ["--combinations", combinations.map(\.description).joined(separator: ",")]
        }
        console.summary(summaries, seed: seed, repeatOptions: repeatOptions)
        let lost = summaries.reduce(0) { $0 + $1.lost }
        let failed = summaries.reduce(0) { $0 + $1.failures.count }
        if lost > 0 || failed > 0 { throw ExitCode.failure }
    }

    /// Runs one trial of an in-process kind in a child process of its own, so that a crash of the
    /// library (a trap on bad input, say) is counted instead of ending the harness.
    private func runInChild(
        _ kind: FaultKind,
        index: Int,
        seed: UInt64,
        directory: String,
        combination: Combination?
    ) -> TrialOutcome {
        var arguments =
            [Programs.ownExecutable, "_trial", "--kind", kind.rawValue, "--index", String(index)]
            + ["--seed", String(seed), "--dir", directory + "/work"] + programs.arguments
        if let combination { arguments += ["--combination", combination.description] }
        var outcome = TrialOutcome(kind: kind, index: index, seed: seed, category: "harness", scenario: "trial process")
        outcome.combination = combination?.description
        do {
            // The trial runs several programs itself; give it room for a few slow ones.
            let run = try ChildProcess.run(arguments, in: directory, name: "trial", timeout: programs.runTimeout * 4)
            if let line = run.lines.last,
                let decoded = try? JSONDecoder().decode(TrialOutcome.self, from: Data(line.utf8))
            {
                outcome = decoded
                outcome.combination = combination?.description
                if run.hung { outcome.lose("the trial hung after reporting") }
            } else if run.hung {
                outcome.lose("the trial hung (killed after \(Int(programs.timeout * 4)) s): \(run.errorTail)")
            } else {
                outcome.lose("the trial process ended with \(run.ending) without a result: \(run.errorTail)")
            }
        } catch {
            outcome.lose("\(error)")
        }
        return outcome
    }

    /// Which trials a kind runs: `--trials` of them, or with `--trials-per-combination N`, N of
    /// each of its combinations that `--combinations` selects.
    private func plan(_ kind: FaultKind) -> TrialPlan {
        let selected = Combination.all(for: kind).filter { combinations?.contains($0) ?? true }
        return TrialPlan(combinations: selected, perCombination: trialsPerCombination, trials: trials)
    }

    private func makeWorkRoot(seed: UInt64) throws -> String {
        let base = workDirectory ?? FileManager.default.temporaryDirectory.path
        let root = base + "/torture-\(seed)-\(getpid())"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        return root
    }
}

/// `torture _trial --kind K --seed S --dir D`: one in-process trial; prints its outcome as JSON.
struct TrialCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "_trial",
        abstract: "Run one trial (used by the harness).",
        shouldDisplay: false
    )

    @Option var kind: FaultKind
    @Option var index: Int
    @Option var seed: UInt64
    @Option var dir: String
    @Option var combination: String?
    @OptionGroup var programs: Programs

    func run() throws {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var outcome: TrialOutcome
        switch kind {
        case .corrupt: outcome = CorruptionTrial(index: index, seed: seed, directory: dir, programs: programs).run()
        case .enospc: outcome = DiskFullTrial(index: index, seed: seed, directory: dir, programs: programs).run()
        case .storage:
            let combination = try combination.map { name in
                guard let found = Combination(name: name) else { throw ValidationError("unknown combination \(name)") }
                return found
            }
            outcome = StorageTrial(
                index: index,
                seed: seed,
                directory: dir,
                programs: programs,
                combination: combination ?? .plain
            ).run()
        case .crash: throw ValidationError("crash trials run in the harness itself")
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        outcome.index = index
        outcome.seed = seed
        print(String(decoding: try encoder.encode(outcome), as: UTF8.self))
    }
}

extension FaultKind: ExpressibleByArgument {}

/// The trials of one kind: how many, and which combination each runs with.
struct TrialPlan {
    /// The kind's combinations that were selected (empty: the kind has none).
    var combinations: [Combination]
    /// `--trials-per-combination`, if given.
    var perCombination: Int?
    /// `--trials`.
    var trials: Int

    var count: Int {
        guard let perCombination, !combinations.isEmpty else { return trials }
        return perCombination * combinations.count
    }

    /// Trial `index`'s combination: in turn with `--trials-per-combination` (so that a run cut short
    /// has covered them all evenly), otherwise drawn from the trial's seed.
    func combination(index: Int, seed: UInt64) -> Combination? {
        guard !combinations.isEmpty else { return nil }
        if perCombination != nil { return combinations[index % combinations.count] }
        var random = SplitMix64(seed: SplitMix64.derive(seed, [SplitMix64.label("combination")]))
        return combinations.randomElement(using: &random)
    }
}

/// Removes a directory tree, unmounting anything mounted inside it first (the ENOSPC trials' tmpfs).
func removeTree(_ path: String) {
    TmpfsMount.unmountAll(under: path)
    try? FileManager.default.removeItem(atPath: path)
}
