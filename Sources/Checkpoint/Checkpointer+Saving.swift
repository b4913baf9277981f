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
    @_disfavoredOverload
    @discardableResult
    public func save<State: Codable>(_ state: State, step: Step, metadata: [String: String] = [:]) throws -> Manifest {
        try save(CodableState(state), step: step, metadata: metadata)
    }

    /// Saves everything in ``registry`` as the checkpoint of `step`.
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
    /// safe point (on every rank) or by ``finish()``.
    /// - Returns: The manifest when a synchronous checkpoint was committed; `nil` when none was due,
    ///   or when it was handed to the background (see ``lastCheckpointStep``).
    @discardableResult
    public func checkpoint(
        _ state: some Checkpointable,
        step: Step,
        metadata: [String: String] = [:]
    ) throws -> Manifest? {
        try safePoint(step: step, metadata: metadata) { try state.save(to: &$0) }
    }

    /// A safe point for a `Codable` value. See ``checkpoint(_:step:metadata:)-(Checkpointable,_,_)``.
    @_disfavoredOverload
    @discardableResult
    public func checkpoint<State: Codable>(
        _ state: State,
        step: Step,
        metadata: [String: String] = [:]
    ) throws -> Manifest? {
        try checkpoint(CodableState(state), step: step, metadata: metadata)
    }

    /// A safe point for the ``registry``.
    @discardableResult
    public func checkpoint(step: Step, metadata: [String: String] = [:]) throws -> Manifest? {
        try safePoint(step: step, metadata: metadata) { try registry.save(to: &$0) }
    }

    /// Whether ``Configuration/policy`` wants a checkpoint at `step` now, by this rank's clock and measurements.
    public func isDue(_ step: Step) -> Bool {
        configuration.policy.isDue(policyContext(step))
    }

    /// What the policy decides from, now.
    public func policyContext(_ step: Step) -> PolicyContext {
        state.withLock { state in
            PolicyContext(
                step: step,
                secondsSinceLast: state.lastCheckpoint.elapsed,
                checkpointCost: state.cost,
                runSeconds: state.started.elapsed,
                checkpointSeconds: state.blockedSeconds
            )
        }
    }

    // MARK: Safe points

    /// The collective decision of one safe point: every rank learns the same answer.
    struct Decision {
        var policyDue: Bool
        var stop: Bool
        var anyBusy: Bool
        var anyFailed: Bool
        var take: Bool { policyDue || stop }
    }

    /// How often ranks decide together: often enough that a time-based rule, a signal or a
    /// deadline is acted on within `decisionPeriod` seconds, rarely enough that a fast loop does not
    /// pay a global synchronization at every step.
    static let decisionPeriod = 0.05

    /// The collective decision of one safe point, or `nil` when the ranks agreed earlier to skip it.
    ///
    /// With several ranks a decision is an `allreduce`, which synchronizes every rank. Ranks
    /// therefore decide only at the safe points rank 0 scheduled at the previous decision (about
    /// every ``decisionPeriod`` seconds, from the measured time per safe point), and at every step
    /// where a step-based rule may fire; both are the same on every rank, so no rank ever waits
    /// alone in a collective.
    func decide(_ step: Step) throws -> Decision? {
        let (index, scheduled) = state.withLock { state -> (Int, Bool) in
            defer { state.safePoints += 1 }
            return (state.safePoints, state.safePoints >= state.nextDecision)
        }
        if communicator.size > 1 && !scheduled && !configuration.policy.mayBeDue(atStep: step) { return nil }
        let (stopAlreadyRequested, cost, startDate) = state.withLock { ($0.stopRequested, $0.cost, $0.startDate) }
        let deadlineNear =
            configuration.deadline.map { $0.remaining(now: Date(), start: startDate) <= 2 * (cost ?? 1) } ?? false
        let signalled = configuration.stopSignals != nil && SignalMonitor.isPending
        let local: [Int64] = [
            rank == 0 && isDue(step) ? 1 : 0,
            !stopAlreadyRequested && (signalled || (rank == 0 && deadlineNear)) ? 1 : 0,
            background?.isBusy == true ? 1 : 0,
            background?.hasFailure == true ? 1 : 0,
            rank == 0 ? Int64(safePointsUntilNextDecision(index)) : 0,
        ]
        let agreed = communicator.size == 1 ? local : try communicator.allreduce(local, .max)
        state.withLock { $0.nextDecision = index + Int(agreed[4]) }
        return Decision(
            policyDue: agreed[0] == 1,
            stop: agreed[1] == 1,
            anyBusy: agreed[2] == 1,
            anyFailed: agreed[3] == 1
        )
    }

    /// Rank 0's pacing: how many safe points fit in the decision period at the recent pace.
    private func safePointsUntilNextDecision(_ index: Int) -> Int {
        let period = min(Self.decisionPeriod, configuration.policy.decisionPeriod)
        return state.withLock { state in
            let elapsed = state.lastDecision.elapsed
            let calls = index - state.safePointsAtLastDecision
            state.lastDecision.restart()
            state.safePointsAtLastDecision = index
            guard calls > 0, elapsed > 0, period > 0 else { return 1 }
            return max(1, min(1_000_000, Int(period / (elapsed / Double(calls)))))
        }
    }

    private func safePoint(
        step: Step,
        metadata: [String: String],
        collect: (inout SnapshotWriter) throws -> Void
    ) throws -> Manifest? {
        try runPendingDump()
        guard let decision = try decide(step) else { return nil }
        if decision.anyFailed, let background {
            // Every rank's background commit failed together; every rank reports it here.
            if let failure = background.waitUntilIdle() { throw failure }
            throw CheckpointError(.peerFailed, "a background checkpoint failed on another rank")
        }
        guard decision.take else { return nil }
        if decision.stop {
            logger.notice(
                "stop requested: checkpointing now, then the application should stop",
                metadata: ["step": "\(step)"]
            )
            localLevel?.flushRequested.withLock { $0 = true }
        }
        defer {
            if decision.stop {
                SignalMonitor.received.store(0, ordering: .relaxed)
                state.withLock { $0.stopRequested = true }
            }
        }
        guard let background else {
            return try saveNow(step: step, metadata: metadata, collect: collect)
        }
        if decision.anyBusy {
            if background.options.whenBusy == .skip && !decision.stop {
                logger.notice(
                    "skipping a checkpoint: the previous one is still being written",
                    metadata: ["step": "\(step)"]
                )
                return nil
            }
            if let failure = background.waitUntilIdle() { throw failure }
        }
        let clock = Stopwatch()
        var writer = SnapshotWriter()
        var stagingError: (any Error)?
        do { try collect(&writer) } catch { stagingError = error }
        let fits = writer.ownedMemoryBytes <= background.options.stagingLimit
        guard try communicator.size == 1 ? fits : communicator.allTrue(fits) else {
            logger.notice(
                "checkpoint larger than the staging limit; writing it synchronously",
                metadata: ["step": "\(step)", "bytes": "\(writer.ownedMemoryBytes)"]
            )
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
        state.withLock { state in
            state.lastCheckpoint.restart()
            state.blockedSeconds += blocked
            state.lastStep = step
        }
        background.submit { [self] in
            let manifest = try commit(
                staged,
                step: step,
                metadata: metadata,
                stageSeconds: blocked,
                stagingError: stagingError,
                over: background.communicator
            )
            background.pool.recycle(staged.stagedStorage)
            recordCost(clock.elapsed)
            logCommit(manifest)
            try checkpointCommitted(step, inBackground: true)
        }
        return nil
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
        let manifest = try commit(
            writer,
            step: step,
            metadata: metadata,
            stageSeconds: clock.elapsed,
            stagingError: stagingError,
            over: communicator
        )
        let elapsed = clock.elapsed
        state.withLock { state in
            state.lastCheckpoint.restart()
            state.blockedSeconds += elapsed
            state.lastStep = step
        }
        recordCost(elapsed)
        logCommit(manifest)
        try checkpointCommitted(step, inBackground: false)
        return manifest
    }

    /// Updates the moving average of a checkpoint's duration.
    private func recordCost(_ seconds: Double) {
        state.withLock { state in state.cost = state.cost.map { 0.5 * $0 + 0.5 * seconds } ?? seconds }
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
        applyRetention()
    }
}
