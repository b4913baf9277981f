extension CheckpointDirectory {
    /// Opens the checkpoint at `step` as rank `rank` of `rankCount` restoring ranks, which need not be
    /// the number of ranks that wrote it.
    ///
    /// Distributed arrays are read with ``SnapshotReader/read(_:_:block:)``, which assembles any
    /// block from the saved blocks that overlap it; other entries come from the shard of rank 0 when
    /// the rank count differs (this rank's own shard otherwise). With `rankCount: 1` and a block of
    /// ``BlockLayout/whole(_:)`` this reads a whole distributed array, for post-processing:
    ///
    /// ```swift
    /// let reader = try directory.openSnapshot(step: 500, rank: 0, rankCount: 1)
    /// let field = try reader.read([Double].self, "temperature", block: .whole(reader.globalShape(of: "temperature")))
    /// ```
    ///
    /// Unlike a restore through ``Checkpointer``, nothing checks that the blocks read by several
    /// such readers tile the array: any block may be read.
    /// - Parameters:
    ///   - step: The checkpoint.
    ///   - rank: The restoring rank, in `0..<rankCount`.
    ///   - rankCount: The number of restoring ranks.
    ///   - threads: Threads used to decode chunks.
    /// - Throws: `rankCountMismatch` when the rank count differs and the checkpoint records no block
    ///   layout; `invalidConfiguration` for a rank outside `0..<rankCount`; what
    ///   ``openSnapshot(step:rank:threads:)`` throws.
    public func openSnapshot(
        step: Step,
        rank: Int,
        rankCount: Int,
        threads: Int = Syscalls.onlineProcessorCount
    ) throws(CheckpointError) -> SnapshotReader {
        let shards = self.shards(of: try loadManifest(step: step), rank: rank, rankCount: rankCount, threads: threads)
        return try shards.reader()
    }

    /// The shards of a committed checkpoint as restoring rank `rank` of `rankCount` sees them.
    func shards(
        of manifest: Manifest,
        rank: Int,
        rankCount: Int,
        threads: Int,
        opened: ShardReader? = nil
    ) -> CheckpointShards {
        CheckpointShards(
            location: path(for: manifest.step),
            openShard: { old throws(CheckpointError) in
                try self.openSnapshot(manifest: manifest, rank: old, threads: threads).shard
            },
            manifest: manifest,
            rank: rank,
            rankCount: rankCount,
            threads: threads,
            opened: opened
        )
    }
}
