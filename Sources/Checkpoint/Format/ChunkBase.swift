/// The chunks an incremental shard may reference instead of storing them again: every chunk the
/// previous checkpoint of this rank used, keyed by the digest of its raw bytes, with the shard that
/// physically holds its stored bytes.
///
/// References are resolved when they are made: a chunk the previous checkpoint itself referenced
/// keeps the shard that holds it, so a reader never follows a chain.
struct ChunkBase: Sendable {
    /// A shard that holds stored chunk bytes.
    struct Holder: Hashable, Sendable {
        var step: Step
        var indexDigest: [UInt8]
    }

    /// What identifies a chunk's content and how its stored bytes decode: the same raw bytes under
    /// the same filter decode the same way, whatever the codec or compression level.
    struct Key: Hashable, Sendable {
        var rawDigest: [UInt8]
        var rawSize: Int
        var filter: Filter
        var filterWidth: Int
    }

    /// Where a chunk's stored bytes are.
    struct Stored: Sendable {
        /// Position in ``holders``.
        var holder: Int
        var offset: Int
        var storedSize: Int
        var codec: ChunkCodec
        var digest: [UInt8]
    }

    /// The checkpoint these chunks are the state of.
    var step: Step
    /// Checkpoints written since the last full one, counting that checkpoint (0: it is full).
    var sinceFull: Int
    var holders: [Holder]
    var chunks: [Key: Stored]

    /// The chunks of a 2.x shard as the next checkpoint sees them.
    /// - Parameters:
    ///   - index: The shard's index.
    ///   - step: Its checkpoint's step.
    ///   - indexDigest: Its footer's digest.
    ///   - sinceFull: Its checkpoint's ``Manifest/Incremental/sinceFull``.
    init(index: ShardIndex, step: Step, indexDigest: [UInt8], sinceFull: Int) {
        self.step = step
        self.sinceFull = sinceFull
        holders = index.bases.map { Holder(step: Step(rawValue: $0.step), indexDigest: $0.indexDigest) }
        let own = holders.count
        holders.append(Holder(step: step, indexDigest: indexDigest))
        chunks = [:]
        for entry in index.entries {
            for chunk in entry.chunks {
                guard let rawDigest = chunk.rawDigest else { continue }
                let key = Key(
                    rawDigest: rawDigest,
                    rawSize: chunk.rawSize,
                    filter: entry.filter,
                    filterWidth: entry.filterWidth
                )
                chunks[key] = Stored(
                    holder: chunk.base ?? own,
                    offset: chunk.offset,
                    storedSize: chunk.storedSize,
                    codec: chunk.codec,
                    digest: chunk.digest
                )
            }
        }
    }

    /// The chunk stored with these raw bytes under this filter, if any.
    func lookup(rawDigest: [UInt8], rawSize: Int, filter: Filter, filterWidth: Int) -> Stored? {
        chunks[Key(rawDigest: rawDigest, rawSize: rawSize, filter: filter, filterWidth: filterWidth)]
    }

    /// Drops the chunks of holders that fail `isUsable` (a step not older than the one being written,
    /// a shard deleted or replaced since).
    func keeping(_ isUsable: (Holder) -> Bool) -> ChunkBase {
        let usable = holders.map(isUsable)
        guard usable.contains(false) else { return self }
        var copy = self
        copy.chunks = chunks.filter { usable[$0.value.holder] }
        return copy
    }
}
