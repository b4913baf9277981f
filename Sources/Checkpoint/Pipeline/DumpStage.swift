import Foundation
import Logging

/// The dump stage: after every ``ProcessDumps/everyNthCheckpoint``-th committed checkpoint, dumps
/// this rank's process into the checkpoint's `images/rank-N` folder, at the level the checkpoint
/// committed to first (node-local with redundancy: images are large and belong beside the shard).
///
/// Participants quiesce the application, which must happen on its own thread: after a background
/// commit, the dump waits for the application's next safe point (``runPending()``).
final class DumpStage: Sendable {
    private struct Memory {
        var committedCount = 0
        /// A dump a background commit left for the application's thread.
        var pending: Step?
        /// The last dump's images, for incremental dumps.
        var lastImages: String?
    }

    let configuration: Checkpointer.Configuration
    let participants: DumpParticipants
    /// The level dumps go to.
    let directory: CheckpointDirectory
    let rank: Int
    let ranksShareProcess: Bool
    let logger: Logger
    let crashes: CrashInjector
    private let state = Locked(Memory())

    init(
        configuration: Checkpointer.Configuration,
        participants: DumpParticipants,
        directory: CheckpointDirectory,
        rank: Int,
        ranksShareProcess: Bool,
        logger: Logger,
        crashes: CrashInjector
    ) {
        self.configuration = configuration
        self.participants = participants
        self.directory = directory
        self.rank = rank
        self.ranksShareProcess = ranksShareProcess
        self.logger = logger
        self.crashes = crashes
    }

    /// Counts a committed checkpoint and dumps if due: now, or at the next safe point after a
    /// background commit. Called once per committed checkpoint on every rank, so all ranks dump at
    /// the same steps.
    /// - Returns: The dump's failure, only when ``ProcessDumps/onFailure`` is `.throw`.
    /// - Throws: Only the crash-test seam's error (``CrashPoint/dumped``).
    func checkpointCommitted(_ step: Step, inBackground: Bool) throws(CheckpointError) -> (any Error)? {
        guard let dumps = configuration.processDumps else { return nil }
        let due = state.withLock { state -> Bool in
            state.committedCount += 1
            return state.committedCount % dumps.everyNthCheckpoint == 0
        }
        guard due else { return nil }
        // Ranks that are threads of one process dump it once, from rank 0, when one dump captures it all.
        if dumps.dumper.oncePerProcess && ranksShareProcess && rank != 0 { return nil }
        if inBackground {
            state.withLock { $0.pending = step }
            return nil
        }
        do { try dumpProcess(after: step, dumps) } catch {
            if error.isSimulatedCrash { throw SimulatedCrash.error }
            return error
        }
        return nil
    }

    /// Runs a dump that a background commit left for the application's thread.
    func runPending() throws {
        guard let dumps = configuration.processDumps else { return }
        guard
            let step = state.withLock({ state -> Step? in
                defer { state.pending = nil }
                return state.pending
            })
        else { return }
        try dumpProcess(after: step, dumps)
    }

    /// Dumps this process into the checkpoint's `images/rank-N` folder, between the participants'
    /// hooks, and records the outcome beside the manifest.
    private func dumpProcess(after step: Step, _ dumps: ProcessDumps) throws {
        let folder = CheckpointLayout.imagesFolder(rank: rank)
        let images = directory.path(for: step) + "/" + folder
        // Wall-clock time: a copy restored from the dump (elsewhere, or after a reboot) resumes in this
        // function, where a monotonic stopwatch could run backwards.
        let started = Date()
        let probe = dumps.dumper.probe()
        var record = DumpRecord(
            rank: rank,
            dumper: dumps.dumper.name,
            version: probe.version,
            imagesDirectory: folder,
            status: "ok",
            exitStatus: nil,
            seconds: 0,
            message: nil
        )
        var failure: (any Error)?
        if !probe.isUsable {
            record.status = "unavailable"
            record.message = probe.reason
            failure = CheckpointError(
                .invalidConfiguration,
                "\(dumps.dumper.name) cannot dump here: \(probe.reason ?? "unknown reason")"
            )
        } else {
            do {
                try Syscalls.makeDirectories(images, permissions: configuration.directoryPermissions)
                let previous = state.withLock { $0.lastImages }.flatMap { Syscalls.isDirectory($0) ? $0 : nil }
                let request = DumpRequest(
                    pid: dumps.pid ?? Syscalls.processID,
                    imagesDirectory: images,
                    previousImagesDirectory: previous,
                    step: step,
                    rank: rank,
                    timeout: dumps.timeout
                )
                let (outcome, cancelled) = try participants.around { try dumps.dumper.dump(request) }
                if let cancelled {
                    record.status = "cancelled"
                    record.message = cancelled
                    failure = CheckpointError(.ioFailure, cancelled)
                } else {
                    record.exitStatus = 0
                    state.withLock { $0.lastImages = images }
                    if outcome == .restored {
                        logger.notice("this process was restored from a dump", metadata: ["step": "\(step)"])
                    }
                }
            } catch {
                record.status = "failed"
                record.message = "\(error)"
                record.exitStatus = ((error as? CheckpointError)?.underlying as? DumperExit)?.status
                failure = error
            }
        }
        record.seconds = max(0, Date().timeIntervalSince(started))
        do {
            try directory.writeDumpRecord(
                record,
                step: step,
                permissions: (configuration.filePermissions, configuration.directoryPermissions)
            )
        } catch {
            logger.error("could not record a process dump", metadata: ["step": "\(step)", "error": "\(error)"])
        }
        try crashes.reached(.dumped)
        if let failure {
            logger.warning(
                "process dump failed; the application-level checkpoint is unaffected",
                metadata: ["step": "\(step)", "dumper": "\(dumps.dumper.name)", "error": "\(failure)"]
            )
            if dumps.onFailure == .throw { throw failure }
        } else {
            logger.info(
                "process dumped",
                metadata: ["step": "\(step)", "dumper": "\(dumps.dumper.name)", "seconds": "\(record.seconds)"]
            )
        }
    }
}
