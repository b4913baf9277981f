/// The checks that make a checkpoint restorable on any number of ranks.
enum BlockChecks {
    /// Rank 0's check before it commits: the ranks' blocks of each distributed entry share one
    /// global shape and element type and tile it exactly, so that the checkpoint can be restored on
    /// any number of ranks. A failure aborts the checkpoint on every rank.
    static func checkSaved(_ shards: [Manifest.Shard]) throws(CheckpointError) {
        var blocks: [String: [(rank: Int, block: BlockLayout)]] = [:]
        var types: [String: (rank: Int, type: String, scalar: String)] = [:]
        for shard in shards {
            for entry in shard.entries {
                guard let block = entry.block else { continue }
                blocks[entry.name, default: []].append((shard.rank, block))
                if let first = types[entry.name] {
                    guard first.type == entry.type, first.scalar == entry.scalar else {
                        throw CheckpointError(
                            .layoutMismatch,
                            "rank \(first.rank) saved its block of '\(entry.name)' as \(first.type) but rank \(shard.rank) as \(entry.type); every rank's block of a distributed array must have the same element type"
                        )
                    }
                } else {
                    types[entry.name] = (shard.rank, entry.type, entry.scalar)
                }
            }
        }
        for shard in shards {
            for entry in shard.entries where entry.block == nil && blocks[entry.name] != nil {
                throw CheckpointError(
                    .layoutMismatch,
                    "rank \(shard.rank) saved '\(entry.name)' without a block layout while other ranks saved blocks of it; write every rank's part with write(_:as:block:)"
                )
            }
        }
        for (name, saved) in blocks.sorted(by: { $0.key < $1.key }) {
            if let problem = BlockLayout.tilingProblem(saved) {
                throw CheckpointError(
                    .layoutMismatch,
                    "the saved blocks of '\(name)' do not tile the array: \(problem); describe each rank's block with its true offset and extent"
                )
            }
        }
    }

    /// After every rank built its state: the new blocks each rank read of each distributed entry
    /// must tile the array, or the restored state would have gaps or duplicates. Every rank checks
    /// the same gathered blocks, so every rank throws the same error.
    static func checkRestored(
        _ blocksRead: [[String: [BlockLayout]]],
        checkpoint path: String
    ) throws(CheckpointError) {
        let names = Set(blocksRead.flatMap(\.keys)).sorted()
        for name in names {
            let blocks = blocksRead.enumerated().flatMap { rank, read in (read[name] ?? []).map { (rank, $0) } }
            if let problem = BlockLayout.tilingProblem(blocks) {
                throw CheckpointError(
                    .layoutMismatch,
                    "the blocks the \(blocksRead.count) restoring ranks read of '\(name)' do not tile the array: \(problem); give every rank its part of one decomposition (BlockLayout.partition)",
                    path: path
                )
            }
        }
    }
}

extension [Manifest.Entry] {
    /// The entries, with the block layout each was written with (if any).
    func recordingBlocks(of writer: SnapshotWriter) -> [Manifest.Entry] {
        var blocks: [String: BlockLayout] = [:]
        for pending in writer.entries { if let block = pending.block { blocks[pending.name] = block } }
        guard !blocks.isEmpty else { return self }
        return map { entry in
            var entry = entry
            entry.block = blocks[entry.name]
            return entry
        }
    }
}
