import Logging

extension Checkpointer {
    /// What this rank's next shard builds on, and its place in the chain of incremental checkpoints.
    struct IncrementalPlan {
        /// The chunks the shard may reference; `nil` for a full checkpoint.
        var base: ChunkBase?
        /// Checkpoints since the last full one, this one included (0: this one is full).
        var sinceFull: Int
    }

    /// The plan for a checkpoint of `step`, or `nil` when incremental checkpoints are off.
    ///
    /// Builds on the chunks of the last checkpoint this checkpointer committed or, after a restart,
    /// of the newest committed checkpoint older than `step`. Only chunks held by checkpoints older
    /// than `step` whose shards are still the ones recorded are referenced: a checkpoint never uses
    /// itself (a same-step replacement swaps the old one out and deletes it) nor one deleted or
    /// replaced since.
    func incrementalPlan(for step: Step) -> IncrementalPlan? {
        guard let fullEvery = configuration.incremental.fullEvery else { return nil }
        var previous = state.withLock { $0.chunkBase }
        if previous == nil {
            do {
                previous = try directory.chunkBase(before: step, rank: rank, rankCount: communicator.size)
            } catch {
                logger.debug(
                    "incremental checkpoint: the previous checkpoint cannot be built on; this one is full",
                    metadata: ["step": "\(step)", "error": "\(error)"]
                )
            }
        }
        guard let previous, previous.sinceFull + 1 < fullEvery else { return IncrementalPlan(base: nil, sinceFull: 0) }
        let base = previous.keeping { holder in holder.step < step && directory.holds(holder, rank: rank) }
        return IncrementalPlan(base: base, sinceFull: previous.sinceFull + 1)
    }

    /// The manifest's incremental record from every rank's shard record.
    func incrementalRecord(reports: [ShardReport], sinceFull: Int) -> Manifest.Incremental {
        Manifest.Incremental(
            references: Set(reports.flatMap { $0.shard.references ?? [] }).sorted(),
            sinceFull: sinceFull,
            referencedBytes: reports.reduce(0) { $0 + ($1.shard.referencedBytes ?? 0) }
        )
    }
}
