import Foundation
import Logging
import Synchronization

extension Checkpointer {

    /// Restores the newest checkpoint that verifies into a new value.
    ///
    /// Damaged checkpoints (checksum, truncation, missing files) are skipped with a logged warning
    /// and older ones tried; with several ranks, the ranks agree on the newest checkpoint that all
    /// of them can restore.
    /// - Returns: The state and its step, or `nil` when the directory holds no checkpoint at all.
    /// - Throws: `noCheckpoint` when checkpoints exist but none verifies; `rankCountMismatch` when
    ///   the newest was written by another number of ranks and records no block layout (see
    ///   ``SnapshotReader/read(_:_:block:)``); `layoutMissing`, `layoutMismatch` when it cannot be
    ///   re-partitioned as asked; `typeMismatch`, `shapeMismatch`,
    ///   `entryMissing`, `decodingFailed` when the newest good checkpoint does not fit the type (an
    ///   older one would not either); whatever `init(from:)` throws.
    public func restoreLatest<State: Checkpointable>(_ type: State.Type) throws -> (state: State, step: Step)? {
        try restoreNewest { try State(from: $0) }
    }

    /// Restores the newest `Codable` state saved with ``save(_:step:metadata:)-(State,_,_)``.
    @_disfavoredOverload
    public func restoreLatest<State: Codable>(_ type: State.Type) throws -> (state: State, step: Step)? {
        try restoreNewest { try CodableState<State>(from: $0).value }
    }

    /// Restores the newest checkpoint, or returns `initial` at step 0 when there is none.
    public func restoreLatest<State: Checkpointable>(
        or initial: @autoclosure () -> State
    ) throws -> (state: State, step: Step) {
        try restoreLatest(State.self) ?? (initial(), 0)
    }

    /// Restores the newest `Codable` checkpoint, or returns `initial` at step 0 when there is none.
    @_disfavoredOverload
    public func restoreLatest<State: Codable>(or initial: @autoclosure () -> State) throws -> (state: State, step: Step)
    {
        try restoreLatest(State.self) ?? (initial(), 0)
    }

    /// Restores everything in ``registry`` from the newest checkpoint that verifies.
    ///
    /// Every registered entry is decoded and verified (on every rank) before any is written back.
    /// - Returns: The restored step, or `nil` when there is no checkpoint (nothing is changed).
    @discardableResult
    public func restoreLatest() throws -> Step? {
        try restoreNewest { reader in try registry.prepareRestore(from: reader) }.map { apply, step in
            apply()
            return step
        }
    }

    /// The manifests of the committed checkpoints that have valid manifests, oldest first.
    public func checkpoints() throws(CheckpointError) -> [Manifest] {
        try directory.committedSteps().compactMap { step in try? directory.loadManifest(step: step) }
    }

    /// The restart agreement: candidates newest first; each rank builds its state from its shard;
    /// all ranks learn every rank's outcome and take the same decision.
    func restoreNewest<Value>(_ build: (SnapshotReader) throws -> Value) throws -> (Value, Step)? {
        let steps: [Step]
        if let localLevel {
            steps = try redundantCandidates(localLevel)
        } else {
            let listed = Shared<[Step]>(rank: rank) { try directory.committedSteps() }
            steps = try communicator.broadcast(value: rank == 0 ? listed : nil, root: 0).get()
        }
        guard !steps.isEmpty else { return nil }
        var reasons: [String] = []
        for step in steps.reversed() {
            var value: Value?
            var localError: (any Error)?
            let status: RestoreStatus
            // With redundancy, each rank reads its node-local copy, its partner's, or the shared one.
            let source = try localLevel.map { try locateShard(of: step, level: $0) } ?? directory
            do {
                let shards = source.shards(
                    of: try source.loadManifest(step: step),
                    rank: rank,
                    rankCount: communicator.size,
                    threads: configuration.threads
                )
                value = try build(try shards.reader())
                status = .restored(blocksRead: shards.readSoFar.blocksRead)
            } catch let error as CheckpointError where error.isCorruption {
                status = .damaged(error.description)
            } catch {
                localError = error
                status = .failed(RankFailure(rank: rank, error: error))
            }
            let all =
                try communicator.size == 1
                ? [status]
                : communicator.allgather(JSONCoding.encoder.encode(status).bytes).map {
                    try JSONCoding.decoder.decode(RestoreStatus.self, from: Data($0))
                }
            if let failure = all.lazy.compactMap(\.failure).first {
                if failure.rank == rank, let localError { throw localError }
                throw failure.error
            }
            let damaged = all.enumerated().compactMap { rank, status in status.damage.map { "rank \(rank): \($0)" } }
            if damaged.isEmpty, let value {
                try Self.checkRestoredBlocks(all.map(\.blocksRead), checkpoint: directory.path(for: step))
                if !reasons.isEmpty {
                    logger.warning(
                        "restored an older checkpoint",
                        metadata: ["step": "\(step)", "skipped": "\(reasons.count)"]
                    )
                }
                logger.info("restored checkpoint", metadata: ["step": "\(step)"])
                state.withLock { $0.lastStep = step }
                return (value, step)
            }
            logger.warning(
                "skipping damaged checkpoint",
                metadata: ["step": "\(step)", "reason": "\(damaged.joined(separator: "; "))"]
            )
            reasons.append("step \(step): \(damaged.joined(separator: "; "))")
        }
        throw CheckpointError(
            .noCheckpoint,
            "none of the \(steps.count) checkpoints verifies, so none was restored; inspect them with `ckpt verify \(directory.path) --all` — "
                + reasons.joined(separator: "; "),
            path: directory.path
        )
    }
}

/// One rank's result of trying to restore one checkpoint.
enum RestoreStatus: Codable {
    /// Built; with the blocks of distributed entries it read (for the tiling check).
    case restored(blocksRead: [String: [BlockLayout]])
    case damaged(String)
    case failed(RankFailure)

    var blocksRead: [String: [BlockLayout]] {
        if case .restored(let blocks) = self { blocks } else { [:] }
    }

    var failure: RankFailure? { if case .failed(let failure) = self { failure } else { nil } }
    var damage: String? { if case .damaged(let reason) = self { reason } else { nil } }
}
