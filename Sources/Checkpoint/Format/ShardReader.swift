/// Reads a shard: validates its header, footer and index up front, then decodes entries chunk by
/// chunk (in parallel), verifying each chunk's SHA-256 before decompressing it.
///
/// It reads only through ``ByteSource``s (a file, or bytes in memory), at explicit offsets, so
/// chunks are read concurrently without copies beyond the decoder's own buffers.
///
/// A 2.x shard may use chunks stored in older checkpoints' shards of the same rank (its
/// ``ShardIndex/bases``); those shards are opened and identified here too, so a missing or
/// replaced one is reported when the shard is opened, and chunks are read from whichever source
/// holds them (``source(for:)``).
final class ShardReader: @unchecked Sendable {
    let path: String
    let index: ShardIndex
    let fileSize: Int
    let indexDigest: [UInt8]
    let formatVersion: (major: UInt16, minor: UInt16)
    let source: any ByteSource
    /// The base shards' sources, in the order of `index.bases`.
    private let baseSources: [any ByteSource]
    private let byName: [String: Int]

    /// Opens and validates a shard file, and the base shards whose chunks it uses.
    ///
    /// - Parameters:
    ///   - path: The shard file.
    ///   - basePath: Where the shard of the same rank of the checkpoint of a step is; by default the
    ///     directory layout's `../ckpt-<step>/<same file name>`.
    /// - Throws: `notFound`, `permissionDenied`, `truncated`, `badMagic`, `unsupportedFormatVersion` or
    ///   `corruptData`; `incompleteCheckpoint` when a base shard is missing or was replaced.
    convenience init(path: String, basePath: ((UInt64) -> String)? = nil) throws(CheckpointError) {
        let locate = basePath ?? { step in Self.defaultBasePath(of: path, step: step) }
        try self.init(source: OpenFile.openForReading(path)) { (step) throws(CheckpointError) in
            try OpenFile.openForReading(locate(step))
        }
    }

    /// Validates a shard read from `source`, and the base shards whose chunks it uses.
    ///
    /// - Parameters:
    ///   - source: The shard's bytes.
    ///   - baseSource: Opens the shard of the same rank of the checkpoint of a step; a `notFound`
    ///     error means that shard is missing. `nil` when no older shards can be read: a shard that
    ///     uses any is then incomplete.
    /// - Throws: `truncated`, `badMagic`, `unsupportedFormatVersion` or `corruptData`, or what reading
    ///   the source throws; `incompleteCheckpoint` when a base shard is missing or was replaced.
    init(
        source: any ByteSource,
        baseSource: ((UInt64) throws(CheckpointError) -> any ByteSource)?
    ) throws(CheckpointError) {
        let path = source.path
        let size = try source.size()
        guard size >= ShardFormat.headerSize + ShardFormat.footerSize else {
            if size >= ShardFormat.magic.count,
                try Self.readBytes(source, 0, ShardFormat.magic.count) != ShardFormat.magic
            {
                throw CheckpointError(.badMagic, "not a swift-checkpoint shard (wrong magic bytes)", path: path)
            }
            throw CheckpointError(
                .truncated,
                "shard is \(size) bytes, smaller than a header and footer; it was cut short",
                path: path
            )
        }
        let header = try Self.readBytes(source, 0, ShardFormat.headerSize)
        guard Array(header[0..<8]) == ShardFormat.magic else {
            throw CheckpointError(.badMagic, "not a swift-checkpoint shard (wrong magic bytes)", path: path)
        }
        var cursor = ByteCursor(Array(header[8...]), path: path)
        let major = try cursor.u16()
        let minor = try cursor.u16()
        guard major <= ShardFormat.majorVersion else {
            throw CheckpointError(
                .unsupportedFormatVersion,
                "shard uses format \(major).\(minor), but this build of swift-checkpoint reads format \(ShardFormat.majorVersion).x at most; upgrade swift-checkpoint to read it",
                path: path
            )
        }
        guard major >= 1 else { throw CheckpointError(.corruptData, "shard declares format version 0", path: path) }
        guard try cursor.u32() == 0 else {
            throw CheckpointError(
                .corruptData,
                "shard header's reserved flags are not zero; the header is damaged",
                path: path
            )
        }
        let footer = try Self.readBytes(source, size - ShardFormat.footerSize, ShardFormat.footerSize)
        guard Array(footer[48..<56]) == ShardFormat.footerMagic else {
            throw CheckpointError(
                .truncated,
                "shard has no valid footer: the file was cut short or its end is damaged",
                path: path
            )
        }
        var footerCursor = ByteCursor(footer, path: path)
        let indexOffset = try footerCursor.u64()
        let indexLength = try footerCursor.u64()
        let digest = try footerCursor.bytes(ShardFormat.digestSize)
        let indexEnd = UInt64(size - ShardFormat.footerSize)
        guard indexOffset >= UInt64(ShardFormat.headerSize), indexOffset <= indexEnd,
            indexLength == indexEnd - indexOffset
        else {
            throw CheckpointError(.corruptData, "shard footer points outside the file", path: path)
        }
        let indexBytes = try Self.readBytes(source, Int(indexOffset), Int(indexLength))
        guard sha256(indexBytes) == digest else {
            throw CheckpointError(.corruptData, "shard index fails its SHA-256 checksum", path: path)
        }
        let index = try ShardIndex(
            decoding: indexBytes,
            dataRange: ShardFormat.headerSize..<Int(indexOffset),
            path: path,
            version: ShardFormat.Version(major: major, minor: minor)
        )
        var baseSources: [any ByteSource] = []
        var baseDataEnds: [Int] = []
        for base in index.bases {
            let (baseSource, dataEnd) = try Self.openBase(base, with: baseSource, usedBy: path)
            baseSources.append(baseSource)
            baseDataEnds.append(dataEnd)
        }
        for entry in index.entries {
            for chunk in entry.chunks {
                guard let base = chunk.base, chunk.offset + chunk.storedSize > baseDataEnds[base] else { continue }
                throw CheckpointError(
                    .corruptData,
                    "shard index is damaged: a chunk of '\(PrintableText.escaped(entry.name))' lies outside the data region of checkpoint \(index.bases[base].step)'s shard",
                    path: path
                )
            }
        }
        self.index = index
        self.baseSources = baseSources
        var byName: [String: Int] = [:]
        for (position, entry) in index.entries.enumerated() { byName[entry.name] = position }
        self.byName = byName
        self.path = path
        self.fileSize = size
        self.indexDigest = digest
        self.formatVersion = (major, minor)
        self.source = source
    }

    private init(_ other: ShardReader, index: ShardIndex) {
        path = other.path
        self.index = index
        fileSize = other.fileSize
        indexDigest = other.indexDigest
        formatVersion = other.formatVersion
        source = other.source
        baseSources = other.baseSources
        byName = other.byName
    }

    /// This shard with the element fields its manifest records (rule M20): each names a raw entry
    /// of opaque elements in the index, and the fields lie inside its element size.
    ///
    /// - Parameter entries: The manifest's entries of this shard.
    /// - Returns: A reader whose records carry the fields (`self` when the manifest records none).
    /// - Throws: `corruptData` when the manifest and the index disagree.
    func adoptingFields(of entries: [Manifest.Entry]) throws(CheckpointError) -> ShardReader {
        var index = self.index
        var described = Set<String>()
        for entry in entries {
            guard let fields = entry.fields else { continue }
            let name = PrintableText.escaped(entry.name)
            guard described.insert(entry.name).inserted, let position = byName[entry.name] else {
                throw CheckpointError(
                    .corruptData,
                    "the manifest records fields of '\(name)' twice, or for an entry the shard does not hold; the checkpoint is inconsistent",
                    path: path
                )
            }
            let type = index.entries[position].elementType
            guard index.entries[position].encoding == .raw, type.scalar == .opaque else {
                throw CheckpointError(
                    .corruptData,
                    "the manifest records fields of '\(name)', whose elements are not plain structs (\(type)); the checkpoint is inconsistent",
                    path: path
                )
            }
            if let problem = ElementType.fieldsProblem(fields, size: type.size) {
                throw CheckpointError(
                    .corruptData,
                    "the manifest's fields of '\(name)' do not fit its elements: it \(problem); the checkpoint is inconsistent",
                    path: path
                )
            }
            index.entries[position].elementType.fields = fields
        }
        return described.isEmpty ? self : ShardReader(self, index: index)
    }

    /// The index record of an entry.
    func record(_ name: String) throws(CheckpointError) -> EntryRecord {
        guard let position = byName[name] else {
            throw CheckpointError(
                .entryMissing,
                "entry '\(PrintableText.escaped(name))' is not in this checkpoint; it holds: \(index.entries.map { PrintableText.escaped($0.name) }.joined(separator: ", "))",
                path: path
            )
        }
        return index.entries[position]
    }

    /// The source that holds `chunk`'s stored bytes: this shard, or the base shard it refers to.
    /// What this shard's chunk records hold: XXH3-128 in 3.x, SHA-256 otherwise.
    var chunkChecksum: ChecksumAlgorithm {
        ShardFormat.Version(major: formatVersion.major, minor: formatVersion.minor).chunkChecksum
    }

    func source(for chunk: ChunkRecord) -> any ByteSource { chunk.base.map { baseSources[$0] } ?? source }

    /// The steps of the checkpoints whose shards hold chunks this one uses, ascending.
    var baseSteps: [UInt64] { index.bases.map(\.step) }

    /// Decodes all of `record`'s chunks into `destination` (exactly `record.rawSize` bytes).
    ///
    /// With `checkRawDigests`, each decoded chunk is also checked against the digest of its raw bytes
    /// that a 2.x index records (what later incremental checkpoints trust when they reuse the chunk).
    func decode(
        _ record: EntryRecord,
        into destination: UnsafeMutableRawBufferPointer,
        threads: Int,
        checkRawDigests: Bool = false
    ) throws(CheckpointError) {
        precondition(destination.count == record.rawSize)
        Syscalls.adviseHugePages(destination)
        var starts: [Int] = []
        var position = 0
        for chunk in record.chunks {
            starts.append(position)
            position += chunk.rawSize
        }
        let lanes = max(1, min(threads, record.chunks.count))
        let decoders = try (0..<lanes).map { _ throws(CheckpointError) in
            try ChunkDecoder(for: record.chunks, of: record, checksum: chunkChecksum)
        }
        try ParallelWork.run(count: record.chunks.count, workers: decoders) {
            (decoder, index) throws(CheckpointError) in
            let chunk = record.chunks[index]
            let target = UnsafeMutableRawBufferPointer(
                rebasing: destination[starts[index]..<starts[index] + chunk.rawSize]
            )
            try decoder.decode(chunk, of: record, from: source(for: chunk), into: target)
            if checkRawDigests, let rawDigest = chunk.rawDigest, sha256(UnsafeRawBufferPointer(target)) != rawDigest {
                throw CheckpointError(
                    .corruptData,
                    "entry '\(PrintableText.escaped(record.name))': the chunk at byte \(chunk.offset) decodes to bytes whose SHA-256 differs from the digest the index records for them",
                    path: source(for: chunk).path
                )
            }
        }
    }

    /// Reads and verifies every chunk of every entry, discarding the data: each chunk's stored
    /// digest, and (2.x) the digest of the bytes it decodes to.
    ///
    /// Chunks are streamed through buffers of one chunk per thread, never a whole entry: what this
    /// allocates is bounded by `threads` times the largest chunk whose stored bytes passed their
    /// checksum and whose zstd frame declares the size the index claims (at most
    /// ``ShardFormat/maximumChunkRawSize`` raw, plus its stored bytes), whatever the entries claim.
    ///
    /// - Parameters:
    ///   - threads: Threads that decode the chunks of an entry.
    ///   - verified: Called after each entry verified, in index order (for progress).
    func verifyAll(threads: Int, verified: (EntryRecord) -> Void = { _ in }) throws(CheckpointError) {
        let lanes = max(1, min(threads, index.entries.map(\.chunks.count).max() ?? 1))
        let decoders = try (0..<lanes).map { _ throws(CheckpointError) in
            try ChunkDecoder(checksum: chunkChecksum)
        }
        for record in index.entries {
            try ParallelWork.run(count: record.chunks.count, workers: decoders) {
                (decoder, position) throws(CheckpointError) in
                let chunk = record.chunks[position]
                let decoded = try decoder.verify(chunk, of: record, from: source(for: chunk))
                if let rawDigest = chunk.rawDigest, sha256(decoded) != rawDigest {
                    throw CheckpointError(
                        .corruptData,
                        "entry '\(PrintableText.escaped(record.name))': the chunk at byte \(chunk.offset) decodes to bytes whose SHA-256 differs from the digest the index records for them",
                        path: source(for: chunk).path
                    )
                }
            }
            verified(record)
        }
    }

    /// Throws `insufficientMemory` when one buffer of `bytes` cannot fit in this machine's memory.
    ///
    /// A file can claim any size up to the format's limits; allocating more than the machine has
    /// would abort the process instead of failing with an error.
    static func checkAllocation(_ bytes: Int, of what: String, path: String) throws(CheckpointError) {
        let available = Syscalls.physicalMemory
        guard bytes > available else { return }
        throw CheckpointError(
            .insufficientMemory,
            "reading \(what) needs a buffer of \(bytes) bytes, more than this machine's \(available) bytes of memory; restore it on a machine with more memory or from another checkpoint (or the sizes in the file were edited)",
            path: path
        )
    }

    /// `<checkpoint directory>/ckpt-<step>/<this shard's file name>`, from the directory layout.
    static func defaultBasePath(of path: String, step: UInt64) -> String {
        let components = path.split(separator: "/", omittingEmptySubsequences: false)
        let fileName = components.last.map(String.init) ?? path
        let root = components.count >= 3 ? components.dropLast(2).joined(separator: "/") : "."
        return (root.isEmpty ? "" : root) + "/" + CheckpointLayout.committedName(Step(rawValue: step)) + "/" + fileName
    }

    /// Opens a base shard and checks that it is the one the references were made against.
    /// - Returns: The base shard's source and the end of its data region.
    private static func openBase(
        _ base: ShardBase,
        with open: ((UInt64) throws(CheckpointError) -> any ByteSource)?,
        usedBy path: String
    ) throws(CheckpointError) -> (any ByteSource, Int) {
        guard let open else {
            throw CheckpointError(
                .incompleteCheckpoint,
                "this checkpoint uses chunks stored in checkpoint \(base.step), whose shard was not given to the reader",
                path: path
            )
        }
        let baseSource: any ByteSource
        do { baseSource = try open(base.step) } catch  where error.code == .notFound {
            throw CheckpointError(
                .incompleteCheckpoint,
                "this checkpoint uses chunks stored in checkpoint \(base.step), whose shard is missing (the checkpoint was deleted or moved); restore from a checkpoint that does not depend on it",
                path: error.path
            )
        }
        let basePath = baseSource.path
        let size = try baseSource.size()
        guard size >= ShardFormat.headerSize + ShardFormat.footerSize else {
            throw CheckpointError(
                .incompleteCheckpoint,
                "this checkpoint uses chunks stored in checkpoint \(base.step), whose shard is cut short",
                path: basePath
            )
        }
        guard try readBytes(baseSource, 0, ShardFormat.magic.count) == ShardFormat.magic else {
            throw CheckpointError(
                .corruptData,
                "this checkpoint uses chunks stored in checkpoint \(base.step), whose shard is not a swift-checkpoint shard (wrong magic bytes)",
                path: basePath
            )
        }
        let footer = try readBytes(baseSource, size - ShardFormat.footerSize, ShardFormat.footerSize)
        var cursor = ByteCursor(footer, path: basePath)
        let indexOffset = try cursor.u64()
        _ = try cursor.u64()
        let digest = try cursor.bytes(ShardFormat.digestSize)
        guard Array(footer[48..<56]) == ShardFormat.footerMagic, digest == base.indexDigest else {
            throw CheckpointError(
                .incompleteCheckpoint,
                "this checkpoint uses chunks stored in checkpoint \(base.step), but that checkpoint's shard is not the one they were stored in (it was replaced, or its footer is damaged)",
                path: basePath
            )
        }
        guard indexOffset >= UInt64(ShardFormat.headerSize), indexOffset <= UInt64(size - ShardFormat.footerSize) else {
            throw CheckpointError(
                .corruptData,
                "shard footer points outside the file (a base of \(path))",
                path: basePath
            )
        }
        return (baseSource, Int(indexOffset))
    }

    private static func readBytes(
        _ source: any ByteSource,
        _ offset: Int,
        _ count: Int
    ) throws(CheckpointError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        try withTypedThrows {
            try bytes.withUnsafeMutableBytes { buffer in try source.read(into: buffer, at: offset) }
        }
        return bytes
    }
}

/// One worker's buffers for reading stored chunk bytes and undoing the filter.
///
/// The buffers grow to the largest chunk decoded so far, and only once a chunk's stored bytes
/// passed their checksum and (zstd) its frame declared the size the index claims: a claim the
/// stored bytes do not back is refused before anything is allocated for it.
final class ChunkDecoder {
    private let decompressor: ZstdDecompressor
    /// The checksum the chunk records hold (the shard's format decides).
    private let checksum: ChecksumAlgorithm
    private var stored: UnsafeMutableRawBufferPointer
    private var unfiltered: UnsafeMutableRawBufferPointer
    /// Decoded bytes of a chunk that has no place of its own (``verify(_:of:from:)``).
    private var scratch: UnsafeMutableRawBufferPointer

    /// A decoder whose buffers start out holding `storedCapacity` stored bytes of a zstd chunk and
    /// `unfilteredCapacity` decoded bytes of a shuffled chunk; they grow when a chunk needs more.
    /// `checksum` is what the chunk records of the shard hold.
    init(storedCapacity: Int = 0, unfilteredCapacity: Int = 0, checksum: ChecksumAlgorithm) throws(CheckpointError) {
        decompressor = try ZstdDecompressor()
        self.checksum = checksum
        stored = Syscalls.allocateWorkingBuffer(byteCount: storedCapacity)
        unfiltered = Syscalls.allocateWorkingBuffer(byteCount: unfilteredCapacity)
        scratch = .allocate(byteCount: 1, alignment: 64)
    }

    /// A decoder with buffers for any of `chunks` of `record`: only what their codec and filter use.
    convenience init(
        for chunks: some Sequence<ChunkRecord>,
        of record: EntryRecord,
        checksum: ChecksumAlgorithm
    ) throws(CheckpointError) {
        var stored = 0
        var raw = 0
        for chunk in chunks {
            if chunk.codec == .zstd { stored = max(stored, chunk.storedSize) }
            raw = max(raw, chunk.rawSize)
        }
        try self.init(
            storedCapacity: stored,
            unfilteredCapacity: record.filter.shuffles ? raw : 0,
            checksum: checksum
        )
    }

    deinit {
        stored.deallocate()
        unfiltered.deallocate()
        scratch.deallocate()
    }

    /// `buffer`, reallocated to hold at least `count` bytes.
    private static func grow(_ buffer: inout UnsafeMutableRawBufferPointer, to count: Int) {
        guard buffer.count < count else { return }
        buffer.deallocate()
        buffer = Syscalls.allocateWorkingBuffer(byteCount: count)
    }

    /// Decodes `chunk` into `target` (exactly `chunk.rawSize` bytes), verifying its stored bytes'
    /// SHA-256 before using them.
    func decode(
        _ chunk: ChunkRecord,
        of record: EntryRecord,
        from source: any ByteSource,
        into target: UnsafeMutableRawBufferPointer
    ) throws(CheckpointError) {
        if chunk.codec == .zstd {
            let frame = try loadFrame(chunk, of: record, from: source)
            try expand(frame, chunk, of: record, from: source, into: target)
            return
        }
        // A raw chunk is read straight to where its bytes belong (its size is its stored size,
        // bytes the file holds).
        let filtered = try filteredTarget(for: chunk, of: record, target)
        try source.read(into: filtered, at: chunk.offset)
        try checkDigest(UnsafeRawBufferPointer(filtered), chunk, of: record, from: source)
        if record.filter.shuffles {
            record.filter.undo(UnsafeRawBufferPointer(filtered), into: target, width: record.filterWidth)
        }
    }

    /// Decodes `chunk` into this decoder's own scratch buffer, for verification.
    /// - Returns: The decoded bytes, valid until the next call.
    func verify(
        _ chunk: ChunkRecord,
        of record: EntryRecord,
        from source: any ByteSource
    ) throws(CheckpointError) -> UnsafeRawBufferPointer {
        if chunk.codec == .zstd {
            let frame = try loadFrame(chunk, of: record, from: source)
            Self.grow(&scratch, to: chunk.rawSize)
            let target = UnsafeMutableRawBufferPointer(rebasing: scratch[..<chunk.rawSize])
            try expand(frame, chunk, of: record, from: source, into: target)
            return UnsafeRawBufferPointer(target)
        }
        Self.grow(&scratch, to: chunk.rawSize)
        let target = UnsafeMutableRawBufferPointer(rebasing: scratch[..<chunk.rawSize])
        try decode(chunk, of: record, from: source, into: target)
        return UnsafeRawBufferPointer(target)
    }

    /// Reads a zstd chunk's stored bytes, checks their SHA-256 and that the frame declares the
    /// chunk's raw size, all before any buffer of that size exists.
    private func loadFrame(
        _ chunk: ChunkRecord,
        of record: EntryRecord,
        from source: any ByteSource
    ) throws(CheckpointError) -> UnsafeRawBufferPointer {
        Self.grow(&stored, to: chunk.storedSize)
        let bytes = UnsafeMutableRawBufferPointer(rebasing: stored[..<chunk.storedSize])
        try source.read(into: bytes, at: chunk.offset)
        try checkDigest(UnsafeRawBufferPointer(bytes), chunk, of: record, from: source)
        let declared = ZstdDecompressor.declaredContentSize(UnsafeRawBufferPointer(bytes))
        guard declared == UInt64(chunk.rawSize) else {
            throw CheckpointError(
                .corruptData,
                "entry '\(PrintableText.escaped(record.name))', chunk at byte \(chunk.offset): the index claims \(chunk.rawSize) bytes but the stored zstd frame declares \(declared.map(String.init) ?? "no size"); the index was edited or damaged",
                path: source.path
            )
        }
        return UnsafeRawBufferPointer(bytes)
    }

    /// Decompresses a loaded frame into `target`, undoing the filter.
    private func expand(
        _ frame: UnsafeRawBufferPointer,
        _ chunk: ChunkRecord,
        of record: EntryRecord,
        from source: any ByteSource,
        into target: UnsafeMutableRawBufferPointer
    ) throws(CheckpointError) {
        let filtered = try filteredTarget(for: chunk, of: record, target)
        do { try decompressor.decompress(frame, into: filtered) } catch {
            throw CheckpointError(
                .corruptData,
                "entry '\(PrintableText.escaped(record.name))', chunk at byte \(chunk.offset): \(error.message)",
                path: source.path
            )
        }
        if record.filter.shuffles {
            record.filter.undo(UnsafeRawBufferPointer(filtered), into: target, width: record.filterWidth)
        }
    }

    /// Where the chunk's filtered bytes go: `target` itself, or (shuffled) the unfiltered buffer.
    private func filteredTarget(
        for chunk: ChunkRecord,
        of record: EntryRecord,
        _ target: UnsafeMutableRawBufferPointer
    ) throws(CheckpointError) -> UnsafeMutableRawBufferPointer {
        precondition(target.count == chunk.rawSize)
        guard record.filter.shuffles else { return target }
        Self.grow(&unfiltered, to: chunk.rawSize)
        return UnsafeMutableRawBufferPointer(rebasing: unfiltered[..<chunk.rawSize])
    }

    private func checkDigest(
        _ bytes: UnsafeRawBufferPointer,
        _ chunk: ChunkRecord,
        of record: EntryRecord,
        from source: any ByteSource
    ) throws(CheckpointError) {
        guard checksum.field(of: bytes) == chunk.digest else {
            throw CheckpointError(
                .corruptData,
                "entry '\(PrintableText.escaped(record.name))': the chunk at byte \(chunk.offset) fails its \(checksum.name) checksum",
                path: source.path
            )
        }
    }
}
