/// The shards of one committed checkpoint as one restoring rank sees them: opened on demand, each
/// checked against the manifest when first opened, with the block layouts the manifest records.
///
/// A restore by the same number of ranks that saved reads its own shard; a restore by another
/// number (re-partitioning) reads replicated entries from rank 0's shard (or a named owner's) and
/// assembles each distributed entry from the old shards whose blocks overlap the new block,
/// decoding only the chunks that hold overlapping bytes.
final class CheckpointShards: Sendable {
    /// The checkpoint's location, for messages.
    let location: String
    /// Opens the shard of an old rank and checks it against the manifest (the store's business).
    let openShard: @Sendable (Int) throws(CheckpointError) -> ShardReader
    let manifest: Manifest
    /// The restoring rank and the number of restoring ranks.
    let rank: Int
    let rankCount: Int
    let threads: Int

    /// What this rank has read so far: for the restart agreement and for tests.
    struct Statistics: Sendable {
        /// Chunks decoded by block reads.
        var chunksDecoded = 0
        /// Old ranks whose shards were opened.
        var shardsOpened: Set<Int> = []
        /// The blocks read per distributed entry, to check that the new blocks tile the array.
        var blocksRead: [String: [BlockLayout]] = [:]
    }

    private let opened: Locked<[Int: ShardReader]>
    private let layoutCache = Locked<[String: SavedBlocks]?>(nil)
    private let statistics = Locked(Statistics())

    init(
        location: String,
        openShard: @escaping @Sendable (Int) throws(CheckpointError) -> ShardReader,
        manifest: Manifest,
        rank: Int,
        rankCount: Int,
        threads: Int,
        opened shard: ShardReader? = nil
    ) {
        self.location = location
        self.openShard = openShard
        self.manifest = manifest
        self.rank = rank
        self.rankCount = rankCount
        self.threads = max(1, threads)
        opened = Locked(shard.map { [rank: $0] } ?? [:])
    }

    /// Whether the checkpoint was written by another number of ranks than are restoring it.
    var isRepartitioning: Bool { manifest.rankCount != rankCount }

    /// The old rank whose shard plain (non-block) reads use: this rank's own, or rank 0's when re-partitioning.
    var defaultSource: Int { isRepartitioning ? 0 : rank }

    /// What this rank has read so far.
    var readSoFar: Statistics { statistics.withLock { $0 } }

    /// Checks that this rank may restore the checkpoint and returns its reader.
    /// - Throws: `rankCountMismatch` when the rank count changed and the checkpoint records no block
    ///   layout; whatever opening the first shard throws.
    func reader() throws(CheckpointError) -> SnapshotReader {
        guard rankCount >= 1, (0..<rankCount).contains(rank) else {
            throw CheckpointError(
                .invalidConfiguration,
                "rank \(rank) is not one of \(rankCount) restoring ranks; pass a rank in 0..<\(rankCount)"
            )
        }
        if isRepartitioning && layouts.isEmpty {
            throw CheckpointError(
                .rankCountMismatch,
                "checkpoint \(manifest.step) was written by \(manifest.rankCount) ranks but \(rankCount) are restoring it, and it records no block layout to re-partition its state by; restart with \(manifest.rankCount) ranks, or save distributed arrays with SnapshotWriter.write(_:as:block:) so that later checkpoints can be restored on any number of ranks (see Documentation/Migration.md)",
                path: location
            )
        }
        return SnapshotReader(shard: try shard(defaultSource), threads: threads, checkpoint: self)
    }

    /// The shard of old rank `old`, opened and checked against the manifest on first use.
    func shard(_ old: Int) throws(CheckpointError) -> ShardReader {
        if let shard = opened.withLock({ $0[old] }) { return shard }
        let shard = try openShard(old)
        statistics.withLock { _ = $0.shardsOpened.insert(old) }
        return opened.withLock { opened in
            if let existing = opened[old] { return existing }
            opened[old] = shard
            return shard
        }
    }

    /// The saved blocks of every entry that any rank saved with a block layout.
    var layouts: [String: SavedBlocks] {
        if let cached = layoutCache.withLock({ $0 }) { return cached }
        var layouts: [String: SavedBlocks] = [:]
        for shard in manifest.shards {
            for entry in shard.entries {
                if let block = entry.block {
                    layouts[entry.name, default: SavedBlocks()].blocks.append((shard.rank, block))
                }
            }
        }
        for shard in manifest.shards {
            for entry in shard.entries where entry.block == nil && layouts[entry.name] != nil {
                layouts[entry.name]?.unblockedRanks.append(shard.rank)
            }
        }
        layoutCache.withLock { $0 = layouts }
        return layouts
    }

    /// Whether any rank saved `name` with a block layout.
    func isDistributed(_ name: String) -> Bool { layouts[name] != nil }

    /// Reads the part of distributed entry `name` that `block` covers into `destination`
    /// (`block.elementCount` elements of `type`), from every old shard whose block overlaps it.
    func read(
        _ name: String,
        as type: ElementType,
        block: BlockLayout,
        into destination: UnsafeMutableRawBufferPointer
    ) throws(CheckpointError) {
        try read(plan(name, as: type, block: block), into: destination)
    }

    /// Everything a block read needs, checked against the saved layout and the shards' indexes
    /// before the destination is allocated.
    struct BlockRead {
        /// The parts to decode: a shard, its record of the entry, and (for a saved block) which of
        /// the record's bytes go where; `nil` runs mean the whole record.
        var parts: [(shard: ShardReader, record: EntryRecord, runs: BlockRuns?)]
        var name: String
        var block: BlockLayout
        /// Whether the entry has a saved layout (the read counts in the statistics' blocks read).
        var isDistributed: Bool
    }

    /// Checks a read of `block` of entry `name` as `type` against what the checkpoint saved, and
    /// opens the shards it needs, without decoding anything.
    /// - Throws: what ``read(_:as:block:into:)`` throws for a read it would refuse.
    func plan(_ name: String, as type: ElementType, block: BlockLayout) throws(CheckpointError) -> BlockRead {
        guard let saved = layouts[name] else {
            let (shard, record) = try unblockedRecord(name, as: type, block: block)
            return BlockRead(parts: [(shard, record, nil)], name: name, block: block, isDistributed: false)
        }
        let path = location
        if let unblocked = saved.unblockedRanks.first {
            throw CheckpointError(
                .layoutMismatch,
                "rank \(unblocked) saved '\(PrintableText.escaped(name))' without a block layout but rank \(saved.blocks[0].rank) with one; every rank must save its block of a distributed array with write(_:as:block:)",
                path: path
            )
        }
        if let problem = BlockLayout.tilingProblem(saved.blocks) {
            throw CheckpointError(
                .layoutMismatch,
                "the checkpoint's blocks of '\(PrintableText.escaped(name))' do not tile the array: \(problem)",
                path: path
            )
        }
        let globalShape = saved.blocks[0].block.globalShape
        guard block.globalShape == globalShape else {
            throw CheckpointError(
                .layoutMismatch,
                "'\(PrintableText.escaped(name))' was saved with global shape \(globalShape), but rank \(rank) asks for a block of global shape \(block.globalShape); describe the new blocks with the saved global shape (SnapshotReader.globalShape(of:))",
                path: path
            )
        }
        var parts: [(shard: ShardReader, record: EntryRecord, runs: BlockRuns?)] = []
        for (old, savedBlock) in saved.blocks {
            guard let runs = BlockRuns(from: savedBlock, to: block, elementSize: type.size) else { continue }
            let shard = try shard(old)
            let record = try shard.record(name)
            try Self.check(record, holds: type, path: shard.path)
            guard record.shape == savedBlock.extent else {
                throw CheckpointError(
                    .corruptData,
                    "the shard's index gives '\(PrintableText.escaped(name))' the shape \(record.shape) but the manifest records a block of extent \(savedBlock.extent)",
                    path: shard.path
                )
            }
            parts.append((shard, record, runs))
        }
        return BlockRead(parts: parts, name: name, block: block, isDistributed: true)
    }

    /// Performs a checked block read into `destination` (`block.elementCount` elements).
    func read(_ plan: BlockRead, into destination: UnsafeMutableRawBufferPointer) throws(CheckpointError) {
        if plan.isDistributed {
            statistics.withLock { statistics in
                if statistics.blocksRead[plan.name, default: []].contains(plan.block) == false {
                    statistics.blocksRead[plan.name, default: []].append(plan.block)
                }
            }
        }
        for (shard, record, runs) in plan.parts {
            guard let runs else {
                precondition(destination.count == record.rawSize)
                try shard.decode(record, into: destination, threads: threads)
                statistics.withLock { $0.chunksDecoded += record.chunks.count }
                continue
            }
            let decoded = try shard.decode(record, runs: runs, into: destination, threads: threads)
            statistics.withLock { $0.chunksDecoded += decoded }
        }
    }

    /// A block read of an entry saved without a layout: allowed only as a plain read of this rank's
    /// own shard, on as many ranks as saved (checkpoints from before layouts were recorded).
    private func unblockedRecord(
        _ name: String,
        as type: ElementType,
        block: BlockLayout
    ) throws(CheckpointError) -> (ShardReader, EntryRecord) {
        let savedBy = manifest.shards.filter { shard in shard.entries.contains { $0.name == name } }.map(\.rank)
        guard !isRepartitioning else {
            guard savedBy.isEmpty else {
                throw CheckpointError(
                    .layoutMissing,
                    "'\(PrintableText.escaped(name))' was saved without a block layout, so checkpoint \(manifest.step) cannot give it to \(rankCount) ranks (it was written by \(manifest.rankCount)); restart with \(manifest.rankCount) ranks, or save the array with SnapshotWriter.write(_:as:block:) so later checkpoints can be re-partitioned",
                    path: location
                )
            }
            _ = try shard(defaultSource).record(name)  // entryMissing, naming what the checkpoint holds
            throw CheckpointError(
                .entryMissing,
                "entry '\(PrintableText.escaped(name))' is not in this checkpoint",
                path: location
            )
        }
        let shard = try shard(rank)
        let record = try shard.record(name)
        try Self.check(record, holds: type, path: shard.path)
        guard record.elementCount == block.elementCount else {
            throw CheckpointError(
                .layoutMissing,
                "'\(PrintableText.escaped(name))' was saved without a block layout and holds \(record.elementCount) elements (shape \(record.shape)), but the block \(block) has \(block.elementCount); restore it with the decomposition it was saved with",
                path: shard.path
            )
        }
        return (shard, record)
    }

    /// Throws unless `record` holds raw elements that may be restored as `type`.
    static func check(_ record: EntryRecord, holds type: ElementType, path: String) throws(CheckpointError) {
        guard record.encoding == .raw else {
            throw CheckpointError(
                .typeMismatch,
                "entry '\(PrintableText.escaped(record.name))' holds an encoded \(PrintableText.escaped(record.elementType.typeName)), not raw \(type.typeName); read it with decode(_:_:)",
                path: path
            )
        }
        if let problem = record.elementType.restoreProblem(as: type) {
            throw CheckpointError(.typeMismatch, "entry '\(PrintableText.escaped(record.name))' \(problem)", path: path)
        }
    }
}

/// The blocks that the ranks of a checkpoint saved of one distributed entry.
struct SavedBlocks: Sendable {
    /// Per rank that saved the entry with a layout: the rank and its block.
    var blocks: [(rank: Int, block: BlockLayout)] = []
    /// Ranks that saved an entry of the same name without a layout (an inconsistent checkpoint).
    var unblockedRanks: [Int] = []
}
