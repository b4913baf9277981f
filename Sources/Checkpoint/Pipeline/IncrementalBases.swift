import Logging

/// The incremental stage's memory: the chunks of this rank's last committed shard, which the next
/// incremental checkpoint may reference instead of storing again (Documentation/Incremental.md).
///
/// Bases follow the level a checkpoint commits to first: the shared directory, or the node-local
/// store with redundancy. A flushed checkpoint is always full, so the shared level never depends
/// on chunks only node-local stores hold.
final class IncrementalBases: Sendable {
    /// What this rank's next shard builds on, and its place in the chain of incremental checkpoints.
    struct Plan {
        /// The chunks the shard may reference; `nil` for a full checkpoint.
        var base: ChunkBase?
        /// Checkpoints since the last full one, this one included (0: this one is full).
        var sinceFull: Int
    }

    private let fullEvery: Int?
    private let rank: Int
    private let rankCount: Int
    private let logger: Logger
    private let last = Locked<ChunkBase?>(nil)

    init(fullEvery: Int?, rank: Int, rankCount: Int, logger: Logger) {
        self.fullEvery = fullEvery
        self.rank = rank
        self.rankCount = rankCount
        self.logger = logger
    }

    /// The plan for a checkpoint of `step` in `store`, or `nil` when incremental checkpoints are off.
    ///
    /// Builds on the chunks of the last checkpoint this checkpointer committed or, after a restart,
    /// of the newest committed checkpoint older than `step`. Only chunks held by checkpoints older
    /// than `step` whose shards are still the ones recorded are referenced: a checkpoint never uses
    /// itself (a same-step replacement swaps the old one out and deletes it) nor one deleted or
    /// replaced since.
    func plan(for step: Step, full: Bool, store: any CheckpointStore) -> Plan? {
        guard let fullEvery else { return nil }
        if full { return Plan(base: nil, sinceFull: 0) }
        var previous = last.withLock { $0 }
        if previous == nil {
            do {
                previous = try newestBase(before: step, in: store)
            } catch {
                logger.debug(
                    "incremental checkpoint: the previous checkpoint cannot be built on; this one is full",
                    metadata: ["step": "\(step)", "error": "\(error)"]
                )
            }
        }
        guard let previous, previous.sinceFull + 1 < fullEvery else { return Plan(base: nil, sinceFull: 0) }
        let base = previous.keeping { holder in holder.step < step && holds(holder, in: store.directory) }
        return Plan(base: base, sinceFull: previous.sinceFull + 1)
    }

    /// Records the chunks of the shard this rank just committed (`nil`: incremental is off).
    func committed(_ base: ChunkBase?) {
        if let base { last.withLock { $0 = base } }
    }

    /// The chunks of this rank's shard of the newest committed checkpoint older than `step`, when it
    /// was written incrementally by the same number of ranks and opens cleanly; otherwise `nil`.
    private func newestBase(
        before step: Step,
        in store: any CheckpointStore
    ) throws(CheckpointError)
        -> ChunkBase?
    {
        let directory = store.directory
        guard let previous = try store.committedSteps().last(where: { $0 < step }) else { return nil }
        let manifest = try directory.loadManifest(step: previous)
        guard let incremental = manifest.incremental, manifest.rankCount == rankCount else { return nil }
        let reader = try directory.openSnapshot(step: previous, rank: rank, threads: 1)
        return ChunkBase(
            index: reader.shard.index,
            step: previous,
            indexDigest: reader.shard.indexDigest,
            sinceFull: incremental.sinceFull
        )
    }

    /// Whether the committed checkpoint of `holder.step` still has, for this rank, the shard whose
    /// index digest is `holder.indexDigest`, as its manifest records it (it may have been deleted or
    /// replaced since): the manifest records every shard's index digest, so no shard is parsed.
    private func holds(_ holder: ChunkBase.Holder, in directory: CheckpointDirectory) -> Bool {
        guard let manifest = try? directory.loadManifest(step: holder.step), rank < manifest.shards.count else {
            return false
        }
        let shard = manifest.shards[rank]
        guard shard.indexSHA256 == hexString(holder.indexDigest),
            let source = try? directory.openShard(shard, step: holder.step)
        else { return false }
        return (try? source.size()) == shard.fileBytes
    }
}
