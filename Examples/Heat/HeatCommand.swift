// heat: the 2-D heat equation (Jacobi iteration) on a G x G grid split across ranks by rows,
// with halo exchange through the communicator and coordinated checkpoints.
//
//     swift run heat --ranks 4 --grid 512 --steps 500 --checkpoint-every 50 --dir /tmp/heat
//     mpirun -np 4 .build-mpi/debug/heat --mpi --grid 512 --steps 500 --dir /tmp/heat   (built with --traits MPI)
//
// It restores automatically when DIR holds a checkpoint and checkpoints after its last step, so a
// later run with a larger --steps continues where an earlier one ended. The first line is
// `fresh-start` or `resumed-from: <step>`, the last `checksum: <16 hex digits>`: a hash of the final
// global field's bits, the same for any rank count, transport, or number of interruptions.

import ArgumentParser
import Checkpoint
import Foundation
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

    @Option(name: .customLong("every-seconds"), help: "Checkpoint every T seconds of run time instead of every K steps.")
    var everySeconds: Double?

    @Option(name: .customLong("young-daly-mtbf"), help: "Checkpoint at the Young/Daly interval for this MTBF (seconds).")
    var youngDalyMTBF: Double?

    @Flag(name: .customLong("async"), help: "Write checkpoints in the background (asynchronous mode).")
    var asynchronous = false

    @Flag(name: .customLong("no-checkpoints"), help: "Never checkpoint or restore (a reference run).")
    var noCheckpoints = false

    @Flag(help: "Checkpoint and stop on SIGTERM or SIGUSR1 (as Slurm's --signal=B:USR1@120 sends).")
    var stopOnSignal = false

    func validate() throws {
        guard ranks >= 1 && ranks <= 1024 else { throw ValidationError("--ranks must be between 1 and 1024") }
        guard grid >= 3 && grid <= 65_536 else { throw ValidationError("--grid must be between 3 and 65536") }
        guard steps >= 0 else { throw ValidationError("--steps must not be negative") }
        guard checkpointEvery >= 1 else { throw ValidationError("--checkpoint-every must be at least 1") }
        guard delayMs >= 0 else { throw ValidationError("--delay-ms must not be negative") }
        guard timeout > 0 else { throw ValidationError("--timeout must be positive") }
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
        logger.logLevel = .warning
        var policy = CheckpointPolicy.everySteps(checkpointEvery)
        if let everySeconds { policy = .every(seconds: everySeconds) }
        if let youngDalyMTBF { policy = .youngDaly(mtbf: youngDalyMTBF) }
        if noCheckpoints { policy = .never }
        var configuration = Checkpointer.Configuration(policy: policy)
        configuration.metadata = ["example": "heat", "grid": "\(grid)"]
        if asynchronous { configuration.mode = .asynchronous() }
        if stopOnSignal { configuration.stopSignals = StopSignals() }
        let settings = Settings(
            grid: grid, steps: steps, directory: dir, delayMs: delayMs, checkpoints: !noCheckpoints,
            configuration: configuration, logger: logger)
        if mpi {
            #if MPI
            let communicator = try MPICommunicator.world()
            guard grid >= communicator.size else {
                throw ValidationError(
                    "--grid (\(grid)) must be at least the number of MPI ranks (\(communicator.size))"
                )
            }
            try runRank(communicator, settings)
            #else
            throw ValidationError("this heat was built without MPI; build it with `swift build --traits MPI`")
            #endif
        } else {
            _ = try LocalGroup.run(ranks: ranks, timeout: timeout) { communicator in
                try runRank(communicator, settings)
            }
        }
    }
}

struct Settings: Sendable {
    var grid: Int
    var steps: Int
    var directory: String
    var delayMs: Int
    var checkpoints: Bool
    var configuration: Checkpointer.Configuration
    var logger: Logger
}

/// The body every rank runs.
func runRank(_ communicator: any Communicator, _ settings: Settings) throws {
    var configuration = settings.configuration
    configuration.threads = max(1, Checkpointer.Configuration.defaultThreads / max(1, communicator.size))
    let fresh = Block(grid: settings.grid, rank: communicator.rank, size: communicator.size)
    guard settings.checkpoints else {
        if communicator.isRoot { say("fresh-start") }
        var block = fresh
        for _ in 0..<settings.steps { try block.advance(communicator, delayMs: settings.delayMs) }
        try report(block, communicator)
        return
    }
    let checkpointer = try Checkpointer(
        directory: settings.directory, communicator: communicator, configuration: configuration,
        logger: settings.logger)
    var (block, step) = try checkpointer.restoreLatest(or: fresh)
    guard block.grid == settings.grid else {
        throw HeatError(
            "the checkpoint in \(settings.directory) is for a \(block.grid) x \(block.grid) grid, not \(settings.grid); use the same --grid or another --dir"
        )
    }
    if communicator.isRoot { say(step == 0 ? "fresh-start" : "resumed-from: \(step)") }
    while step.intValue < settings.steps && !checkpointer.shouldStop {
        try block.advance(communicator, delayMs: settings.delayMs)
        step += 1
        try checkpointer.checkpoint(block, step: step)
    }
    if checkpointer.lastCheckpointStep != step { try checkpointer.save(block, step: step) }
    try checkpointer.finish()
    if checkpointer.shouldStop && step.intValue < settings.steps {
        if communicator.isRoot { say("stopped-at: \(step)") }
        return
    }
    try report(block, communicator)
}

/// Gathers the field on rank 0 and prints its checksum.
func report(_ block: Block, _ communicator: any Communicator) throws {
    let field = Array(block.interior).withUnsafeBytes { Array($0) }
    if let parts = try communicator.gather(field, root: 0) {
        say("checksum: \(checksum(parts))")
    }
}

/// FNV-1a (64-bit) over the bytes of the global field, in row-major order.
func checksum(_ parts: [[UInt8]]) -> String {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for part in parts {
        for byte in part { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
    }
    let hex = String(hash, radix: 16)
    return String(repeating: "0", count: 16 - hex.count) + hex
}

/// A failure to report as one line.
struct HeatError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Writes a line to standard output at once (unbuffered), so it survives a kill -9 right after.
func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}
