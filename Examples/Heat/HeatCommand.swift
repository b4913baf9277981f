// heat: the 2-D heat equation (Jacobi iteration) on a G x G grid split across ranks by rows,
// with halo exchange through the communicator and coordinated checkpoints.
//
//     swift run heat --ranks 4 --grid 512 --steps 500 --checkpoint-every 50 --dir /tmp/heat
//     mpirun -np 4 .build-mpi/debug/heat --mpi --grid 512 --steps 500 --dir /tmp/heat   (built with --traits MPI)
//
// It restores automatically when DIR holds a checkpoint and checkpoints after its last step, so a
// later run with a larger --steps continues where an earlier one ended, on any number of ranks: the
// field is saved as a distributed array, so a checkpoint of 4 ranks restores on 1, 3 or 8. The first
// line is `fresh-start` or `resumed-from: <step>`, the last `checksum: <16 hex digits>`: a hash of the
// final global field's bits, the same for any rank count, transport, or number of interruptions.
//
// The library's options combine: node-local checkpoints with partner copies or XOR sets (--local-dir,
// --flush-every, --xor-set S), --incremental FULL_EVERY, --async, process dumps (--dumper), the commit
// method (--commit-method rename|marker), and one aggregated file per node (--aggregate); --nodes N
// spreads in-process ranks over N simulated nodes. Scripts/torture kills it at random instants and, through the
// hidden test option --crash-at POINT[@N], at the library's named crash points.

import ArgumentParser
@_spi(Testing) import Checkpoint
import Foundation
import HeatKernel
import Logging

#if MPI
import CheckpointMPI
#endif

@main
struct Heat: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "2-D heat equation with coordinated, crash-safe checkpoints."
    )

    @Option(help: "In-process ranks (threads); ignored with --mpi, where mpirun sets the size.")
    var ranks = 1

    @Option(help: "Global grid size G (G x G cells).")
    var grid = 256

    @Option(help: "Total number of steps to reach.")
    var steps = 100

    @Option(name: .customLong("checkpoint-every"), help: "Checkpoint every K steps.")
    var checkpointEvery = 10

    @Option(help: "Checkpoint directory.")
    var dir = "heat-checkpoints"

    @Flag(help: "Use MPI (the program must be built with --traits MPI and started by mpirun or srun).")
    var mpi = false

    @Option(help: "Seconds a rank waits for a peer before failing (in-process ranks).")
    var timeout = 120.0

    @Option(help: "Milliseconds to sleep after each step (to make runs slow enough to interrupt).")
    var delayMs = 0

    @Option(
        name: .customLong("every-seconds"),
        help: "Checkpoint every T seconds of run time instead of every K steps."
    )
    var everySeconds: Double?

    @Option(
        name: .customLong("young-daly-mtbf"),
        help: "Checkpoint at the Young/Daly interval for this MTBF (seconds)."
    )
    var youngDalyMTBF: Double?

    @Flag(name: .customLong("async"), help: "Write checkpoints in the background (asynchronous mode).")
    var asynchronous = false

    @Flag(name: .customLong("no-checkpoints"), help: "Never checkpoint or restore (a reference run).")
    var noCheckpoints = false

    @Option(
        help: "Also dump the process: criu, dmtcp, or 'command:PROGRAM ARGS' ({pid} {dir} {step} {rank} are filled in)."
    )
    var dumper: String?

    @Option(name: .customLong("dump-every"), help: "Dump the process after every K-th checkpoint.")
    var dumpEvery = 1

    @Flag(help: "Checkpoint and stop on SIGTERM or SIGUSR1 (as Slurm's --signal=USR1@120 sends).")
    var stopOnSignal = false

    @Option(
        name: .customLong("local-dir"),
        help: "Node-local folder: checkpoint there with a partner copy, flushing to --dir every --flush-every."
    )
    var localDirectory: String?

    @Option(name: .customLong("flush-every"), help: "With --local-dir: every K-th checkpoint also goes to --dir.")
    var flushEvery = 10

    @Option(
        name: .customLong("xor-set"),
        help: ArgumentHelp(
            "With --local-dir: protect node-local checkpoints with XOR sets of S ranks on S nodes (1/(S-1) extra bytes) instead of partner copies; at least 3.",
            valueName: "S"
        )
    )
    var xorSet: Int?

    @Flag(
        name: .customLong("shared-group-directory"),
        help: "Accept checkpoint directories their group can write (shared with a trusted group on purpose)."
    )
    var sharedGroupDirectory = false

    @Option(
        name: .customLong("incremental"),
        help: ArgumentHelp(
            "Incremental checkpoints: store only changed chunks, and all of them every FULL_EVERY-th checkpoint.",
            valueName: "FULL_EVERY"
        )
    )
    var incrementalFullEvery: Int?

    @Option(
        name: .customLong("commit-method"),
        help:
            "How a checkpoint is committed: rename (a finished directory renamed into place) or marker (a commit marker written last)."
    )
    var commitMethod = "rename"

    @Option(
        name: .customLong("key-file"),
        help: ArgumentHelp(
            "Seal checkpoints with this key and restore only sealed ones (a file only you can read, e.g. from 'openssl rand -hex 32'); repeat to also accept older keys.",
            valueName: "FILE"
        )
    )
    var keyFiles: [String] = []

    @Option(
        name: .customLong("run-id"),
        help:
            "Record this run in every checkpoint and restore only this run's (e.g. \"$SLURM_JOB_ID\", kept across requeues)."
    )
    var runID: String?

    @Flag(
        name: .customLong("allow-fresh-start"),
        help:
            "Start from step 0 even in a requeued Slurm job (SLURM_RESTART_COUNT > 0) that finds no checkpoint; without it such a part refuses to start over."
    )
    var allowFreshStart = false

    @Flag(
        name: .customLong("aggregate"),
        help: "Write one file per node per checkpoint: the ranks of a node send their shards to its lowest rank."
    )
    var aggregate = false

    @Option(
        help: ArgumentHelp(
            "In-process ranks only: spread the ranks over N simulated nodes (rank r on node r * N / ranks), for --aggregate and --xor-set; default: every rank on this host.",
            valueName: "N"
        )
    )
    var nodes: Int?

    @Option(
        name: .customLong("log-level"),
        help: "The library's log level: trace, debug, info, notice, warning, error or critical."
    )
    var logLevel = "warning"

    @Option(
        name: .customLong("crash-at"),
        help: ArgumentHelp(
            "Test seam: kill this process (SIGKILL) when a commit reaches the named point for the N-th time (default 1), e.g. commit.published@3.",
            valueName: "POINT[@N]",
            visibility: .hidden
        )
    )
    var crashAt: String?

    func validate() throws {
        guard ranks >= 1 && ranks <= 1024 else { throw ValidationError("--ranks must be between 1 and 1024") }
        if aggregate, localDirectory != nil {
            throw ValidationError("--aggregate writes to --dir; it does not combine with --local-dir")
        }
        guard grid >= 3 && grid <= Block.maximumGrid else {
            throw ValidationError("--grid must be between 3 and \(Block.maximumGrid)")
        }
        guard steps >= 0 else { throw ValidationError("--steps must not be negative") }
        guard checkpointEvery >= 1 else { throw ValidationError("--checkpoint-every must be at least 1") }
        guard delayMs >= 0 else { throw ValidationError("--delay-ms must not be negative") }
        guard timeout > 0 else { throw ValidationError("--timeout must be positive") }
        guard dumpEvery >= 1 else { throw ValidationError("--dump-every must be at least 1") }
        guard flushEvery >= 1 else { throw ValidationError("--flush-every must be at least 1") }
        if let nodes, !(1...ranks).contains(nodes) || mpi {
            throw ValidationError("--nodes must be between 1 and --ranks (\(ranks)), and is for in-process ranks only")
        }
        if let xorSet {
            guard localDirectory != nil else { throw ValidationError("--xor-set needs --local-dir") }
            let size = mpi ? Int.max : ranks
            guard xorSet >= 3, xorSet <= size else {
                throw ValidationError("--xor-set must be at least 3 and at most the number of ranks, not \(xorSet)")
            }
            guard mpi || xorSet <= (nodes ?? 1) else {
                throw ValidationError(
                    "--xor-set \(xorSet) needs its ranks on as many nodes: with in-process ranks, pass --nodes \(xorSet) or more"
                )
            }
        }
        if let incrementalFullEvery {
            let limit = Checkpointer.Configuration.Incremental.maximumFullEvery
            guard (1...limit).contains(incrementalFullEvery) else {
                throw ValidationError(
                    "--incremental FULL_EVERY must be between 1 and \(limit) (1: every checkpoint full), not \(incrementalFullEvery)"
                )
            }
        }
        guard Checkpointer.Configuration.CommitMethod(commitMethod) != nil else {
            throw ValidationError("--commit-method must be rename or marker, not '\(commitMethod)'")
        }
        if let crashAt { _ = try Self.parseCrashAt(crashAt) }
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError(
                "--log-level must be trace, debug, info, notice, warning, error or critical, not '\(logLevel)'"
            )
        }
        if let dumper, dumper != "criu", dumper != "dmtcp", !dumper.hasPrefix("command:") || dumper.count <= 8 {
            throw ValidationError("--dumper must be criu, dmtcp or 'command:PROGRAM ARGS', not '\(dumper)'")
        }
        if let everySeconds, !(everySeconds >= 0 && everySeconds.isFinite) {
            throw ValidationError("--every-seconds must be a non-negative number")
        }
        if let youngDalyMTBF, !(youngDalyMTBF > 0 && youngDalyMTBF.isFinite) {
            throw ValidationError("--young-daly-mtbf must be a positive number of seconds")
        }
        if !mpi && grid < ranks {
            throw ValidationError("--grid (\(grid)) must be at least --ranks (\(ranks)): every rank needs a row")
        }
    }

    func run() throws {
        var logger = Logger(label: "heat")
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .warning
        var policy = CheckpointPolicy.everySteps(checkpointEvery)
        if let everySeconds { policy = .every(seconds: everySeconds) }
        if let youngDalyMTBF { policy = .youngDaly(mtbf: youngDalyMTBF) }
        if noCheckpoints { policy = .never }
        var configuration = Checkpointer.Configuration(policy: policy)
        configuration.metadata = ["example": "heat", "grid": "\(grid)"]
        if asynchronous { configuration.mode = .asynchronous() }
        if stopOnSignal { configuration.stopSignals = StopSignals() }
        if sharedGroupDirectory { configuration.directorySharing = .group }
        if let incrementalFullEvery { configuration.incremental = .on(fullEvery: incrementalFullEvery) }
        if let method = Checkpointer.Configuration.CommitMethod(commitMethod) { configuration.commitMethod = method }
        if aggregate { configuration.aggregation = .perNode }
        if let signing = keyFiles.first {
            configuration.authentication = Authentication(
                signingKey: try .contentsOfFile(signing),
                alsoAccepting: try keyFiles.dropFirst().map { path throws(CheckpointError) in try .contentsOfFile(path)
                }
            )
        }
        if let runID { configuration.lineage = try Lineage(runID: runID) }
        if let localDirectory {
            configuration.redundancy = .init(localDirectory: localDirectory, flushEvery: flushEvery)
            if let xorSet {
                configuration.redundancy = .init(
                    localDirectory: localDirectory,
                    xorSetSize: xorSet,
                    flushEvery: flushEvery
                )
            }
        }
        if let dumper {
            let processDumper: any ProcessDumper =
                switch dumper {
                case "criu": CRIUDumper()
                case "dmtcp": DMTCPDumper()
                default: CommandDumper(commandLine: String(dumper.dropFirst("command:".count)))
                }
            configuration.processDumps = ProcessDumps(dumper: processDumper, everyNthCheckpoint: dumpEvery)
        }
        var settings = HeatSettings(
            grid: grid,
            steps: steps,
            directory: dir,
            delayMs: delayMs,
            checkpoints: !noCheckpoints,
            configuration: configuration,
            logger: logger,
            output: say
        )
        if !allowFreshStart, let part = Self.requeuedPart() {
            settings.freshStartRefusal =
                "this is a requeued part of Slurm job \(part.job) (SLURM_RESTART_COUNT=\(part.restarts)), but \(dir) holds no checkpoint every rank can verify: refusing to start over from step 0, which would spend the allocation redoing finished work; check the directory (ckpt list \(dir)) and the earlier parts' output, or pass --allow-fresh-start to start over on purpose"
        }
        if let crashAt {
            let (point, occurrence) = try Self.parseCrashAt(crashAt)
            settings.prepare = { checkpointer in
                checkpointer.injectCrash(at: point, occurrence: occurrence, by: .killProcess)
            }
        }
        let prepared = settings
        if mpi {
            #if MPI
            let communicator = try MPICommunicator.world()
            guard grid >= communicator.size else {
                throw ValidationError(
                    "--grid (\(grid)) must be at least the number of MPI ranks (\(communicator.size))"
                )
            }
            try runHeatRank(communicator, prepared)
            #else
            throw ValidationError("this heat was built without MPI; build it with `swift build --traits MPI`")
            #endif
        } else {
            let names = nodes.map { count in (0..<ranks).map { "node-\($0 * count / ranks)" } }
            _ = try LocalGroup.run(ranks: ranks, timeout: timeout, nodes: names) { communicator in
                try runHeatRank(communicator, prepared)
            }
        }
    }
}

extension Heat {
    /// The job ID and restart count when this runs in a Slurm job that was requeued at least once.
    static func requeuedPart(
        _ environment: [String: String] = ProcessInfo.processInfo.environment
    ) -> (job: String, restarts: Int)? {
        guard let restarts = environment["SLURM_RESTART_COUNT"].flatMap({ Int($0) }), restarts > 0 else { return nil }
        return (environment["SLURM_JOB_ID"] ?? "?", restarts)
    }

    /// Parses `--crash-at POINT[@N]`: a crash point's name and the occurrence (at least 1) to crash at.
    static func parseCrashAt(_ text: String) throws -> (CrashPoint, Int) {
        let parts = text.split(separator: "@", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        guard let point = CrashPoint(parts[0]) else {
            let names = CrashPoint.allCases.map(\.description).joined(separator: ", ")
            throw ValidationError("--crash-at: unknown crash point '\(parts[0])'; use one of \(names)")
        }
        guard parts.count == 2 else { return (point, 1) }
        guard let occurrence = Int(parts[1]), occurrence >= 1 else {
            throw ValidationError(
                "--crash-at: the occurrence after '@' must be a whole number of at least 1, not '\(parts[1])'"
            )
        }
        return (point, occurrence)
    }
}

/// Writes a line to standard output at once (unbuffered), so it survives a kill -9 right after.
func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}
