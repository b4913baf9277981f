import Checkpoint
import Foundation
import Logging

/// What one run of the heat simulation does.
public struct HeatSettings: Sendable {
    /// The global grid size G (G x G cells).
    public var grid: Int
    /// The step to reach.
    public var steps: Int
    /// The checkpoint directory.
    public var directory: String
    /// Milliseconds to sleep after each step.
    public var delayMs: Int
    /// Whether to checkpoint and restore at all (`false`: a reference run).
    public var checkpoints: Bool
    /// The checkpointer's configuration (its thread count is divided among the ranks).
    public var configuration: Checkpointer.Configuration
    /// Where the checkpointer logs.
    public var logger: Logger
    /// Where rank 0 writes its output lines (`fresh-start`, `resumed-from: N`, `checksum: …`).
    public var output: @Sendable (String) -> Void
    /// Called with every rank's checkpointer once it exists, before it restores (heat's test
    /// options arm crash points through it). Default: does nothing.
    public var prepare: @Sendable (Checkpointer) -> Void = { _ in }
    /// When set, a run that finds no checkpoint to restore fails with this message instead of
    /// starting from step 0 (heat sets it in a requeued Slurm job). Default: `nil`, start fresh.
    public var freshStartRefusal: String?

    /// Creates settings.
    public init(
        grid: Int,
        steps: Int,
        directory: String,
        delayMs: Int = 0,
        checkpoints: Bool = true,
        configuration: Checkpointer.Configuration,
        logger: Logger,
        output: @escaping @Sendable (String) -> Void
    ) {
        self.grid = grid
        self.steps = steps
        self.directory = directory
        self.delayMs = delayMs
        self.checkpoints = checkpoints
        self.configuration = configuration
        self.logger = logger
        self.output = output
    }
}

/// The body every rank runs: restore or start fresh, step with halo exchange and safe points,
/// checkpoint the last step, and report the checksum on rank 0.
public func runHeatRank(_ communicator: any Communicator, _ settings: HeatSettings) throws {
    let say = settings.output
    var configuration = settings.configuration
    configuration.threads = max(1, Checkpointer.Configuration.defaultThreads / max(1, communicator.size))
    let fresh = try Block(grid: settings.grid, rank: communicator.rank, size: communicator.size)
    guard settings.checkpoints else {
        if communicator.isRoot { say("fresh-start") }
        var block = fresh
        for _ in 0..<settings.steps { try block.advance(communicator, delayMs: settings.delayMs) }
        try report(block, communicator, say)
        return
    }
    let checkpointer = try Checkpointer(
        directory: settings.directory,
        communicator: communicator,
        configuration: configuration,
        logger: settings.logger
    )
    settings.prepare(checkpointer)
    var (block, step) = try Block.$expectedGrid.withValue(settings.grid) { try checkpointer.restoreLatest(or: fresh) }
    guard block.grid == settings.grid else {
        throw HeatError(
            "the checkpoint in \(settings.directory) is for a \(block.grid) x \(block.grid) grid, not \(settings.grid); use the same --grid or another --dir"
        )
    }
    if step == 0, let refusal = settings.freshStartRefusal { throw HeatError(refusal) }
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
    try report(block, communicator, say)
}

/// Gathers the field on rank 0 and prints its checksum.
func report(_ block: Block, _ communicator: any Communicator, _ say: (String) -> Void) throws {
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
public struct HeatError: Error, CustomStringConvertible {
    /// The line.
    public var description: String
    init(_ description: String) { self.description = description }
}
