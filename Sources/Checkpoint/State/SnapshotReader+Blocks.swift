extension SnapshotReader {
    /// The rank this reader restores for: the restoring communicator's rank in a restore, the
    /// shard's rank when opened with ``CheckpointDirectory/openSnapshot(step:rank:threads:)``.
    public var rank: Int { checkpoint.rank }

    /// The number of ranks restoring the checkpoint (the number that saved it, unless it is being re-partitioned).
    public var rankCount: Int { checkpoint.rankCount }

    /// The number of ranks that wrote the checkpoint.
    public var savedRankCount: Int { checkpoint.manifest.rankCount }

    /// The global shape of a distributed array saved with ``SnapshotWriter/write(_:as:block:)-([Element],_,_)``,
    /// to describe the new blocks with.
    /// - Throws: `layoutMissing` when the entry was saved without a block layout, `entryMissing`
    ///   when there is no such entry, `layoutMismatch` when the ranks saved different global shapes.
    public func globalShape(of name: String) throws(CheckpointError) -> [Int] {
        guard let saved = checkpoint.layouts[prefix + name] else {
            _ = try plainRecord(prefix + name)
            throw CheckpointError(
                .layoutMissing,
                "entry '\(prefix + name)' was saved without a block layout, so it has no global shape; save it with SnapshotWriter.write(_:as:block:)",
                path: shard.path
            )
        }
        let shapes = Set(saved.blocks.map(\.block.globalShape))
        guard shapes.count == 1, let shape = shapes.first else {
            throw CheckpointError(
                .layoutMismatch,
                "the ranks saved '\(prefix + name)' with different global shapes \(shapes.sorted { $0.lexicographicallyPrecedes($1) })",
                path: shard.path
            )
        }
        return shape
    }

    /// Reads this rank's block of a distributed array, whichever saved blocks hold its elements.
    ///
    /// When the checkpoint was written by as many ranks with the same decomposition, this reads the
    /// rank's own shard. Otherwise it opens only the shards whose saved blocks overlap `block` and
    /// decodes only the chunks that hold overlapping elements; each chunk is verified by its
    /// SHA-256 before any of its bytes is used.
    ///
    /// ```swift
    /// let shape = try reader.globalShape(of: "temperature")
    /// let mine = try BlockLayout.partition(shape, part: reader.rank, of: reader.rankCount)
    /// let rows = try reader.read([Double].self, "temperature", block: mine)
    /// ```
    /// - Parameters:
    ///   - type: The array type; its element type must match the saved one.
    ///   - name: The entry's name.
    ///   - block: This rank's new block; its global shape must equal the saved one.
    /// - Returns: The block's elements, row-major, `block.elementCount` of them.
    /// - Throws: `layoutMissing` when the entry was saved without a layout and the rank count or
    ///   element count changed; `layoutMismatch` when global shapes differ or the saved blocks do
    ///   not tile the array; `typeMismatch`; `entryMissing`; `corruptData` when a chunk fails its checksum.
    ///   Restores through ``Checkpointer`` also check that the ranks' new blocks tile the array.
    public func read<Element: BitwiseCopyable>(
        _ type: [Element].Type,
        _ name: String,
        block: BlockLayout
    ) throws(CheckpointError) -> [Element] {
        let count = block.elementCount
        // Everything is checked against the saved layout before the array is allocated.
        let plan = try checkpoint.plan(prefix + name, as: .of(Element.self), block: block)
        // An empty array must not go through `unsafeUninitializedCapacity`: for 0 elements it
        // writes the count into the shared empty-array storage, which other threads read
        // (the thread sanitizer reports it). The read still runs: it checks the entry and block.
        guard count > 0 else {
            try checkpoint.read(plan, into: UnsafeMutableRawBufferPointer(start: nil, count: 0))
            return []
        }
        let (bytes, overflow) = count.multipliedReportingOverflow(by: MemoryLayout<Element>.stride)
        try ShardReader.checkAllocation(
            overflow ? Int.max : bytes,
            of: "a block of '\(PrintableText.escaped(prefix + name))'",
            path: shard.path
        )
        var failure: CheckpointError?
        let array = [Element](unsafeUninitializedCapacity: count) { buffer, initialized in
            do throws(CheckpointError) {
                try checkpoint.read(plan, into: UnsafeMutableRawBufferPointer(buffer))
                initialized = count
            } catch {
                failure = error
                initialized = 0
            }
        }
        if let failure { throw failure }
        return array
    }

    /// The verified bytes of a block of a distributed array, whatever its element type: the
    /// elements' little-endian bytes, row-major, as ``readBytes(_:)`` gives a whole entry's.
    ///
    /// For tools that learn the element type only from the checkpoint (`ckpt extract --assemble`,
    /// `ckpt export`); an application reads its typed blocks with ``read(_:_:block:)``. With
    /// `block: .whole(globalShape(of: name))` this assembles the global array from every rank's block:
    ///
    /// ```swift
    /// let shape = try reader.globalShape(of: "temperature")
    /// let bytes = try reader.readBytes("temperature", block: .whole(shape))
    /// ```
    ///
    /// Every saved block is checked against the manifest and the others (one global shape, one element
    /// type, blocks that tile the array), and the size against this machine's memory, before the
    /// result is allocated; each chunk is verified by its SHA-256 before any of its bytes is used.
    /// - Parameters:
    ///   - name: The entry's name.
    ///   - block: The block to read; its global shape must equal the saved one.
    /// - Returns: `block.elementCount` elements of the saved element type's size.
    /// - Throws: `layoutMissing` when the entry was saved without a block layout; `entryMissing`;
    ///   `layoutMismatch` when the ranks saved different global shapes or blocks that do not tile the array;
    ///   `typeMismatch` when the ranks saved different element types; `insufficientMemory`; what opening
    ///   a rank's shard throws (`notFound` for a missing shard, `corruptData`, …).
    public func readBytes(_ name: String, block: BlockLayout) throws(CheckpointError) -> [UInt8] {
        _ = try globalShape(of: name)
        guard let first = checkpoint.layouts[prefix + name]?.blocks.first else {
            throw CheckpointError(
                .layoutMissing,
                "entry '\(PrintableText.escaped(prefix + name))' was saved without a block layout",
                path: shard.path
            )
        }
        let type = try checkpoint.shard(first.rank).record(prefix + name).elementType
        let plan = try checkpoint.plan(prefix + name, as: type, block: block)
        let (count, overflow) = block.elementCount.multipliedReportingOverflow(by: type.size)
        try ShardReader.checkAllocation(
            overflow ? Int.max : count,
            of: "a block of '\(PrintableText.escaped(prefix + name))'",
            path: shard.path
        )
        var bytes = [UInt8](repeating: 0, count: count)
        try withTypedThrows {
            try bytes.withUnsafeMutableBytes { buffer in try checkpoint.read(plan, into: buffer) }
        }
        return bytes
    }

    /// Reads this rank's block of a distributed array into memory the caller owns, which must hold
    /// exactly `block.elementCount` elements. The buffer is written only once every needed chunk
    /// has been read and verified. See ``read(_:_:block:)``.
    /// - Throws: `shapeMismatch` when the buffer's count differs from the block's, and what
    ///   ``read(_:_:block:)`` throws.
    public func read<Element: BitwiseCopyable>(
        into buffer: UnsafeMutableBufferPointer<Element>,
        _ name: String,
        block: BlockLayout
    ) throws(CheckpointError) {
        let staged = try stage(into: buffer.count, Element.self, name, block: block)
        staged.apply(to: UnsafeMutableRawBufferPointer(buffer))
    }

    /// A reader whose plain reads (scalars, `Codable` values, arrays read without a block) come from
    /// the copy that old rank `owner` saved, whatever rank restores.
    ///
    /// When the rank count changes, replicated state comes from rank 0's shard; use this when another
    /// rank owns a value (say the rank that wrote the output file keeps its offset). Every restoring
    /// rank then gets the owner's value.
    /// - Throws: `incompleteCheckpoint` when the checkpoint has no rank `owner`, and what opening
    ///   its shard throws (`corruptData`, `truncated`, …).
    public func savedBy(rank owner: Int) throws(CheckpointError) -> SnapshotReader {
        guard (0..<savedRankCount).contains(owner) else {
            throw CheckpointError(
                .incompleteCheckpoint,
                "checkpoint \(checkpoint.manifest.step) was written by \(savedRankCount) ranks; there is no rank \(owner) to read from",
                path: checkpoint.location
            )
        }
        var reader = SnapshotReader(shard: try checkpoint.shard(owner), threads: threads, checkpoint: checkpoint)
        if !prefix.isEmpty { reader = reader.nested(String(prefix.dropLast())) }
        reader.namedSource = true
        return reader
    }

    /// Reads and verifies a block into a staging buffer of `count` elements, for two-phase restores.
    func stage<Element: BitwiseCopyable>(
        into count: Int,
        _ type: Element.Type,
        _ name: String,
        block: BlockLayout
    ) throws(CheckpointError) -> StagedBytes {
        guard count == block.elementCount else {
            throw CheckpointError(
                .shapeMismatch,
                "the destination of '\(prefix + name)' has \(count) elements but the block \(block) has \(block.elementCount)"
            )
        }
        let plan = try checkpoint.plan(prefix + name, as: .of(Element.self), block: block)
        let staged = StagedBytes(count: count * MemoryLayout<Element>.stride)
        try checkpoint.read(plan, into: staged.bytes)
        return staged
    }

    /// The index record for a plain read. While re-partitioning, a distributed entry has no single
    /// record to read: reading it without a block would silently give rank 0's block.
    func plainRecord(_ name: String) throws(CheckpointError) -> EntryRecord {
        if checkpoint.isRepartitioning && !namedSource && checkpoint.isDistributed(name) {
            throw CheckpointError(
                .layoutMismatch,
                "entry '\(name)' is a distributed array saved by \(savedRankCount) ranks and \(rankCount) are restoring it; read this rank's part with read(_:_:block:) and its new BlockLayout",
                path: shard.path
            )
        }
        return try shard.record(name)
    }
}
