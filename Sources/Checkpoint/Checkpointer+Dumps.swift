import Foundation
import Logging

extension Checkpointer {
    /// Counts a committed checkpoint and, every ``ProcessDumps/everyNthCheckpoint`` of them, dumps
    /// this rank's process with the configured dumper. Called once per committed checkpoint on every
    /// rank, so all ranks dump at the same steps.
    /// - Throws: The dump's failure, only when ``ProcessDumps/onFailure`` is `.throw`.
    func checkpointCommitted(_ step: Step, inBackground: Bool) throws {
        guard let dumps = configuration.processDumps else { return }
        let due = state.withLock { state -> Bool in
            state.committedCount += 1
            return state.committedCount % dumps.everyNthCheckpoint == 0
        }
        guard due else { return }
        // Ranks that are threads of one process dump it once, from rank 0, when one dump captures it all.
        if dumps.dumper.oncePerProcess && communicator.ranksShareProcess && rank != 0 { return }
        if inBackground {
            // Participants quiesce the application; that must happen on its own thread, at its
            // next safe point.
            state.withLock { $0.pendingDump = step }
        } else {
            try dumpProcess(after: step, dumps)
        }
    }

    /// Runs a dump that a background commit left for the application's thread.
    func runPendingDump() throws {
        guard let dumps = configuration.processDumps else { return }
        guard
            let step = state.withLock({ state -> Step? in
                defer { state.pendingDump = nil }
                return state.pendingDump
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
                let previous = state.withLock { $0.lastDumpImages }.flatMap { Syscalls.isDirectory($0) ? $0 : nil }
                let request = DumpRequest(
                    pid: dumps.pid ?? Syscalls.processID,
                    imagesDirectory: images,
                    previousImagesDirectory: previous,
                    step: step,
                    rank: rank,
                    timeout: dumps.timeout
                )
                let (outcome, cancelled) = try dumpParticipants.around { try dumps.dumper.dump(request) }
                if let cancelled {
                    record.status = "cancelled"
                    record.message = cancelled
                    failure = CheckpointError(.ioFailure, cancelled)
                } else {
                    record.exitStatus = 0
                    state.withLock { $0.lastDumpImages = images }
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
