import Foundation
import Logging

extension Checkpointer {
    /// Saves `state` as the checkpoint of `step`, now, in the foreground.
    ///
    /// A checkpoint still being written in the background is waited for first.
    /// - Parameters:
    ///   - state: The state to save.
    ///   - step: Identifies the checkpoint; saving a step that exists replaces it atomically.
    ///   - metadata: Recorded in the manifest, on top of ``Configuration/metadata`` (rank 0's is used).
    /// - Returns: The committed checkpoint's manifest.
    /// - Throws: What `state.save(to:)` throws, or a ``CheckpointError`` (`diskFull`,
    ///   `permissionDenied`, `ioFailure`, `peerFailed`, …). Nothing partial is ever committed. With
    ///   several ranks, a rank whose own save failed rethrows its error; the others throw a
    ///   ``CheckpointError`` with the same code and message naming that rank.
    @discardableResult
    public func save(_ state: some Checkpointable, step: Step, metadata: [String: String] = [:]) throws -> Manifest {
        try saveNow(step: step, metadata: metadata) { try state.save(to: &$0) }
    }

    /// Saves a `Codable` value as the checkpoint of `step` (one JSON entry named `state`).
    ///
    /// - Throws: `encodingFailed` when the value cannot be encoded; what
    ///   ``save(_:step:metadata:)-(Checkpointable,_,_)`` throws.
    @_disfavoredOverload
    @discardableResult
    public func save<State: Codable>(_ state: State, step: Step, metadata: [String: String] = [:]) throws -> Manifest {
        try save(CodableState(state), step: step, metadata: metadata)
    }

    /// Saves everything in ``registry`` as the checkpoint of `step`.
    ///
    /// - Throws: What a registered entry throws; what ``save(_:step:metadata:)-(Checkpointable,_,_)`` throws.
    @discardableResult
    public func save(step: Step, metadata: [String: String] = [:]) throws -> Manifest {
        try saveNow(step: step, metadata: metadata) { try registry.save(to: &$0) }
    }

    /// A safe point: checkpoints `state` if it is due — by ``Configuration/policy``, a stop signal
    /// or the deadline.
    ///
    /// With several ranks, rank 0's policy decides and every rank follows, so a time-based policy
    /// can never make ranks disagree; a stop signal on any rank makes all of them checkpoint.
    /// In ``Configuration/Mode/asynchronous(stagingLimit:whenBusy:)`` mode the checkpoint is only
    /// staged here and committed in the background; a background failure is thrown at the next
    /// safe point (on every rank) or by ``finish()-6l53m``.
    ///
    /// The first safe point also stages the state once without writing it (collectively), so that a
    /// mistake in its entries (a duplicate or invalid name, a shape that does not fit) throws there,
    /// not when the first checkpoint is due. Asynchronously, such a mistake throws at the safe point
    /// that staged it, on every rank, not one checkpoint later.
    /// - Returns: The manifest when a synchronous checkpoint was committed; `nil` when none was due,
    ///   or when it was handed to the background (see ``lastCheckpointStep``).
    /// - Throws: What `state.save(to:)` throws (`duplicateName`, `invalidName`, …), a background
    ///   checkpoint's failure, or what ``save(_:step:metadata:)-(Checkpointable,_,_)`` throws.
    @discardableResult
    public func checkpoint(
        _ state: some Checkpointable,
        step: Step,
        metadata: [String: String] = [:]
    ) throws -> Manifest? {
        try safePoint(step: step, metadata: metadata) { try state.save(to: &$0) }
    }

    /// A safe point for a `Codable` value. See ``checkpoint(_:step:metadata:)-(Checkpointable,_,_)``.
    ///
    /// - Throws: What ``checkpoint(_:step:metadata:)-(Checkpointable,_,_)`` throws.
    @_disfavoredOverload
    @discardableResult
    public func checkpoint<State: Codable>(
        _ state: State,
        step: Step,
        metadata: [String: String] = [:]
    ) throws -> Manifest? {
        try checkpoint(CodableState(state), step: step, metadata: metadata)
    }

    /// A safe point for the ``registry``. See ``checkpoint(_:step:metadata:)-(Checkpointable,_,_)``.
    ///
    /// - Throws: What ``checkpoint(_:step:metadata:)-(Checkpointable,_,_)`` throws.
    @discardableResult
    public func checkpoint(step: Step, metadata: [String: String] = [:]) throws -> Manifest? {
        try safePoint(step: step, metadata: metadata) { try registry.save(to: &$0) }
    }

    /// Whether ``Configuration/policy`` wants a checkpoint at `step` now, by this rank's clock and measurements.
    public func isDue(_ step: Step) -> Bool {
        configuration.policy.isDue(policyContext(step))
    }

    /// What the policy decides from, now.
    public func policyContext(_ step: Step) -> PolicyContext { scheduler.policyContext(step) }

    // MARK: Safe points

    private func safePoint(
        step: Step,
        metadata: [String: String],
        collect: (inout SnapshotWriter) throws -> Void
    ) throws -> Manifest? {
        try dumps.runPending()
        guard let decision = try scheduler.decide(step, background: background) else { return nil }
        if decision.anyFailed, let background {
            // Every rank's background commit failed together; every rank reports it here.
            if let failure = background.waitUntilIdle() { throw failure }
            throw CheckpointError(.peerFailed, "a background checkpoint failed on another rank")
        }
        let firstSafePoint = entriesChecked.withLock { checked in
            defer { checked = true }
            return !checked
        }
        guard decision.take else {
            if firstSafePoint { try checkEntries(collect) }
            return nil
        }
        if decision.stop {
            logger.jobWide(
                .notice,
                "stop requested: checkpointing now, then the application should stop",
                metadata: ["step": "\(step)"],
                rank: rank
            )
            levels.local?.flushRequested.withLock { $0 = true }
        }
        defer { if decision.stop { scheduler.stopHandled() } }
        guard let background else {
            return try saveNow(step: step, metadata: metadata, collect: collect)
        }
        if decision.anyBusy {
            if background.options.whenBusy == .skip && !decision.stop {
                metrics.skipped.increment()
                logger.jobWide(
                    .notice,
                    "skipping a checkpoint: the previous one is still being written",
                    metadata: ["step": "\(step)"],
                    rank: rank
                )
                return nil
            }
            if let failure = background.waitUntilIdle() { throw failure }
        }
        let clock = Stopwatch()
        var writer = SnapshotWriter()
        var stagingError: (any Error)?
        do { try collect(&writer) } catch { stagingError = error }
        // A rank whose entries are wrong (a duplicate name) makes every rank commit in the
        // foreground, where the commit aborts and every rank throws now, not one checkpoint late
        // from the background. Other staging failures (the application's save(to:) throwing) are
        // reported at the next safe point, as background failures are.
        let fits = writer.ownedMemoryBytes <= background.options.stagingLimit
        let entriesValid = stagingError.map { !Self.isEntryMistake($0) } ?? true
        let everywhere =
            communicator.size == 1
            ? [fits, entriesValid]
            : try communicator.allreduce([fits ? 1 : 0, entriesValid ? 1 : 0], .min).map { $0 == 1 }
        guard everywhere[0], everywhere[1] else {
            if everywhere[1] {
                metrics.synchronousFallbacks.increment()
                logger.jobWide(
                    .notice,
                    "checkpoint larger than the staging limit; writing it synchronously",
                    metadata: ["step": "\(step)", "bytes": "\(writer.ownedMemoryBytes)"],
                    rank: rank
                )
            }
            return try commitInForeground(
                writer,
                step: step,
                metadata: metadata,
                clock: clock,
                stagingError: stagingError
            )
        }
        writer.copyOwnedMemory(pool: background.pool)
        let blocked = clock.elapsed
        let staged = writer
        scheduler.checkpointTaken(step, blocked: blocked)
        metrics.blocked.record(seconds: blocked)
        background.submit { [self] in
            let manifest: Manifest
            do {
                manifest = try driver.commit(
                    staged,
                    step: step,
                    metadata: metadata,
                    stageSeconds: blocked,
                    stagingError: stagingError,
                    over: background.communicator,
                    inBackground: true
                )
            } catch {
                metrics.failed(error)
                throw error
            }
            metrics.committed(manifest, rank: rank, seconds: clock.elapsed, blockedSeconds: nil)
            background.pool.recycle(staged.stagedStorage)
            scheduler.recordCost(clock.elapsed)
            logCommit(manifest)
        }
        return nil
    }

    /// Collective: stages the entries once without writing them, so that a mistake in them (a
    /// duplicate or invalid name, a shape that does not fit) surfaces at the first safe point, on
    /// every rank, even when the first checkpoint is due much later. Other failures of the
    /// application's `save(to:)` wait for a checkpoint that is due.
    private func checkEntries(_ collect: (inout SnapshotWriter) throws -> Void) throws {
        var writer = SnapshotWriter()
        var localFailure: (any Error)?
        do { try collect(&writer) } catch  where Self.isEntryMistake(error) { localFailure = error } catch {}
        let outcome = try communicator.agreement(
            Shared<Bool>(rank: rank) {
                if let localFailure { throw localFailure }
                return true
            }
        )
        if case .failure(let failure) = outcome {
            if failure.rank == rank, let localFailure { throw localFailure }
            throw failure.error
        }
    }

    /// Whether `error` is a mistake in the entries a save writes, which every later save would
    /// repeat: a name that is invalid or written twice, a shape that does not fit its array.
    private static func isEntryMistake(_ error: any Error) -> Bool {
        guard let error = error as? CheckpointError else { return false }
        return error.code == .duplicateName || error.code == .invalidName || error.code == .shapeMismatch
    }

    /// A foreground save: waits for the background, stages, commits, records.
    private func saveNow(
        step: Step,
        metadata: [String: String],
        collect: (inout SnapshotWriter) throws -> Void
    ) throws -> Manifest {
        if let background, let failure = background.waitUntilIdle() { throw failure }
        let clock = Stopwatch()
        var writer = SnapshotWriter()
        var stagingError: (any Error)?
        do { try collect(&writer) } catch { stagingError = error }
        return try commitInForeground(writer, step: step, metadata: metadata, clock: clock, stagingError: stagingError)
    }

    private func commitInForeground(
        _ writer: SnapshotWriter,
        step: Step,
        metadata: [String: String],
        clock: Stopwatch,
        stagingError: (any Error)?
    ) throws -> Manifest {
        let manifest: Manifest
        do {
            manifest = try driver.commit(
                writer,
                step: step,
                metadata: metadata,
                stageSeconds: clock.elapsed,
                stagingError: stagingError,
                over: communicator,
                inBackground: false
            )
        } catch {
            metrics.failed(error)
            throw error
        }
        let elapsed = clock.elapsed
        metrics.committed(manifest, rank: rank, seconds: elapsed, blockedSeconds: elapsed)
        scheduler.checkpointTaken(step, blocked: elapsed)
        scheduler.recordCost(elapsed)
        logCommit(manifest)
        return manifest
    }

    private func logCommit(_ manifest: Manifest) {
        guard rank == 0 else { return }
        logger.info(
            "committed checkpoint",
            metadata: [
                "step": "\(manifest.step)", "ranks": "\(manifest.rankCount)", "raw": "\(manifest.rawBytes)",
                "stored": "\(manifest.storedBytes)",
            ]
        )
    }
}
