import Foundation
import Logging
import Synchronization

/// Saves application state as atomic, verified, compressed checkpoints and restores the newest good one.
///
/// The three-line integration:
///
/// ```swift
/// let checkpointer = try Checkpointer(directory: "checkpoints")
/// var (sim, step) = try checkpointer.restoreLatest(or: Simulation())
/// while step < 1_000 { sim.advance(); step += 1; try checkpointer.checkpoint(sim, step: step) }
/// ```
///
/// `Simulation` is any `Codable` type or any ``Checkpointable`` type. Alternatively register
/// state once in ``registry`` and call ``save(step:metadata:)-876x`` / ``restoreLatest()-8tbto``.
///
/// A save writes a shard into a temporary directory, `fsync`s it, writes the manifest, and
/// renames the directory into place: a crash at any instant leaves the previous checkpoints
/// intact and never leaves a half-written one that looks committed. Restore finds the newest
/// checkpoint that verifies, falling back past damaged ones (logging why), and builds the state
/// before anything of the application's is touched.
///
/// ## Ranks
///
/// With a ``Communicator`` of several ranks, create one checkpointer per rank on the same
/// (shared) directory. Saves, safe points and restores are then collective: every rank calls them
/// in the same order with the same step. Each rank writes its own shard; only when all succeeded
/// does rank 0 write the manifest and commit, and any rank's failure aborts the checkpoint on all
/// ranks with the same error. Restore agrees on the newest checkpoint that every rank can verify.
///
/// One checkpointer per directory (per rank); rank 0 locks the directory while it lives.
public final class Checkpointer: Sendable {
    /// The directory the checkpoints live in.
    public let directory: CheckpointDirectory
    /// The configuration it was created with.
    public let configuration: Configuration
    /// The ranks that checkpoint together.
    public let communicator: any Communicator
    /// State registered for ``save(step:metadata:)-876x`` and ``restoreLatest()-8tbto``.
    public let registry = StateRegistry()
    /// Hooks run around process dumps (see ``Configuration/processDumps``).
    public let dumpParticipants = DumpParticipants()

    let logger: Logger
    private let lockDescriptor: Int32?
    /// The test seam that stops a commit at a named point as if the process had died there.
    let crashes = CrashInjector()
    /// The background pipeline and its own communicator, in asynchronous mode.
    let background: BackgroundPipeline?
    /// The shared and (with redundancy) node-local levels.
    let levels: StorageLevels
    /// The owners the façade delegates to.
    let scheduler: SafePointScheduler
    let driver: CommitDriver
    let restart: RestartAgreement
    let dumps: DumpStage
    /// Whether the first safe point has checked the entries (see `checkEntries`).
    let entriesChecked = Locked(false)
    /// The thread the `async` methods run their blocking work on.
    let blockingWorker: BlockingWorker
    /// What commits and restores report through swift-metrics.
    let metrics: CheckpointMetrics

    var rank: Int { communicator.rank }

    /// Opens (creating if configured) a checkpoint directory, locks it, and removes temporary
    /// directories left by crashed runs. With several ranks this is collective: rank 0 prepares
    /// the directory and every rank learns the outcome.
    ///
    /// - Parameters:
    ///   - directory: The directory path (the same on every rank; shared storage for several nodes).
    ///   - communicator: The ranks that checkpoint together; default: this process alone.
    ///   - configuration: Options; see ``Configuration``.
    ///   - logger: Where to log commits, fallbacks and cleanups.
    /// - Throws: `invalidConfiguration` for bad options, when another process uses the directory, when a
    ///   file is in the way of the directory (it or a parent exists but is not a directory), or when its
    ///   file system cannot hold directories (`/proc`); `notFound` or `permissionDenied` for the directory;
    ///   `peerFailed` or `timedOut` when a rank fails.
    public init(
        directory: String,
        communicator: any Communicator = SingleProcessCommunicator(),
        configuration: Configuration = Configuration(),
        logger: Logger = Logger(label: "swift-checkpoint")
    ) throws {
        let checkpointDirectory = configuration.checkpointDirectory(directory)
        self.directory = checkpointDirectory
        self.configuration = configuration
        self.communicator = communicator
        self.logger = logger
        let sharedStore = StorageLevels.store(checkpointDirectory, configuration)
        var lock: Int32?
        var removed: [String] = []
        let rank = communicator.rank
        var localFailure: (any Error)?
        let prepared: Shared<Bool>
        do {
            try configuration.validate()
            if rank == 0 {
                if configuration.createDirectory {
                    try Syscalls.makeDirectories(directory, permissions: configuration.directoryPermissions)
                }
                try Syscalls.checkWritableDirectory(
                    directory,
                    groupMayWrite: configuration.directorySharing.allowsGroup
                )
                lock = try Syscalls.lockExclusively(directory + "/.lock", permissions: configuration.filePermissions)
                removed = try sharedStore.removeUnfinished()
            }
            prepared = .success(true)
        } catch {
            localFailure = error
            prepared = .failure(RankFailure(rank: rank, error: error))
        }
        lockDescriptor = lock
        do {
            let shared = try communicator.broadcastValue(rank == 0 ? prepared : nil, root: 0)
            // Rank 0 reports its own failure as it happened; the others learn it by rank.
            if rank == 0, case .failure = prepared, let localFailure { throw localFailure }
            _ = try shared.get()
            // Incremental settings must agree: they decide the format every rank's shard is written in.
            let incremental = Int64(configuration.incremental.fullEvery ?? 0)
            let extremes =
                communicator.size == 1
                ? [incremental, -incremental] : try communicator.allreduce([incremental, -incremental], .max)
            // Every rank must accept the configuration and see the directory rank 0 prepared
            // (shared storage).
            try communicator.agree(
                Shared<Bool>(rank: rank) {
                    if let localFailure { throw localFailure }
                    try Syscalls.checkWritableDirectory(
                        directory,
                        groupMayWrite: configuration.directorySharing.allowsGroup
                    )
                    guard extremes[0] == -extremes[1] else {
                        throw CheckpointError(
                            .invalidConfiguration,
                            "the ranks' incremental settings differ; give every rank the same configuration.incremental"
                        )
                    }
                    return true
                }
            )
            levels = StorageLevels(
                shared: sharedStore,
                local: try LocalLevel.prepare(configuration, communicator: communicator, logger: logger)
            )
            if case .asynchronous(let options) = configuration.mode.value {
                background = BackgroundPipeline(
                    communicator: try communicator.duplicate(),
                    options: options,
                    name: "checkpoint-rank-\(rank)"
                )
            } else {
                background = nil
            }
        } catch {
            if let lock { Syscalls.closeDescriptor(lock) }
            throw error
        }
        blockingWorker = BlockingWorker(name: "checkpoint-async-rank-\(rank)")
        metrics = CheckpointMetrics(configuration.metrics, rank: rank)
        scheduler = SafePointScheduler(configuration: configuration, communicator: communicator)
        dumps = DumpStage(
            configuration: configuration,
            participants: dumpParticipants,
            directory: levels.primary.directory,
            rank: rank,
            ranksShareProcess: communicator.ranksShareProcess,
            logger: logger,
            crashes: crashes
        )
        driver = CommitDriver(
            configuration: configuration,
            levels: levels,
            incremental: IncrementalBases(
                fullEvery: configuration.incremental.fullEvery,
                rank: rank,
                rankCount: communicator.size,
                logger: logger
            ),
            dumps: dumps,
            crashes: crashes,
            logger: logger,
            rank: rank
        )
        restart = RestartAgreement(
            configuration: configuration,
            communicator: communicator,
            levels: levels,
            metrics: metrics,
            logger: logger
        )
        if let stopSignals = configuration.stopSignals { SignalMonitor.install(stopSignals) }
        for name in removed {
            logger.notice(
                "removed an unfinished checkpoint left by an earlier run",
                metadata: ["path": "\(directory)/\(name)"]
            )
        }
    }

    /// Waits for a checkpoint still being written in the background and reports its outcome.
    ///
    /// Call it before the program exits (deinit also waits, but can only log a failure).
    /// - Throws: The background checkpoint's error, if it failed.
    public func finish() throws {
        if let background, let failure = background.waitUntilIdle() { throw failure }
        try dumps.runPending()
    }

    /// Whether the application should stop: a stop signal arrived or the deadline is near, and the
    /// checkpoint taken in response has been started (synchronous: committed).
    public var shouldStop: Bool { scheduler.stopRequested }

    /// The step of the last checkpoint this checkpointer took (or restored), if any.
    public var lastCheckpointStep: Step? { scheduler.lastStep }

    /// The measured cost of one checkpoint in seconds (moving average), once one was taken.
    public var measuredCheckpointCost: Double? { scheduler.cost }

    deinit {
        if let background, let failure = background.waitUntilIdle() {
            logger.error("a background checkpoint failed", metadata: ["error": "\(failure)"])
        }
        background?.stop()
        blockingWorker.stop()
        if let lockDescriptor { Syscalls.closeDescriptor(lockDescriptor) }
    }
}

extension Checkpointer {
    /// Test seam: the `occurrence`-th time a commit reaches `point`, it stops as if the process died
    /// there (`nil` disarms). Used by the crash tests and by `heat --crash-at`.
    @_spi(Testing) public func injectCrash(
        at point: CrashPoint?,
        occurrence: Int = 1,
        by action: CrashAction = .throwError
    ) {
        crashes.arm(point, occurrence: occurrence, action: action)
    }
}
