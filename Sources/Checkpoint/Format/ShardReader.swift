/// Reads a shard file: validates its header, footer and index up front, then decodes entries
/// chunk by chunk (in parallel), verifying each chunk's SHA-256 before decompressing it.
final class ShardReader: @unchecked Sendable {
    let path: String
    let index: ShardIndex
    let fileSize: Int
    let indexDigest: [UInt8]
    let formatVersion: (major: UInt16, minor: UInt16)
    let file: OpenFile
    private let byName: [String: Int]

    /// Opens and validates a shard.
    /// - Throws: `notFound`, `permissionDenied`, `truncated`, `badMagic`, `unsupportedFormatVersion` or `corruptData`.
    init(path: String) throws(CheckpointError) {
        let file = try OpenFile.openForReading(path)
        let size = try file.size()
        guard size >= ShardFormat.headerSize + ShardFormat.footerSize else {
            if size >= ShardFormat.magic.count,
                try Self.readBytes(file, 0, ShardFormat.magic.count) != ShardFormat.magic
            {
                throw CheckpointError(.badMagic, "not a swift-checkpoint shard (wrong magic bytes)", path: path)
            }
            throw CheckpointError(
                .truncated,
                "shard is \(size) bytes, smaller than a header and footer; it was cut short",
                path: path
            )
        }
        let header = try Self.readBytes(file, 0, ShardFormat.headerSize)
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
        let footer = try Self.readBytes(file, size - ShardFormat.footerSize, ShardFormat.footerSize)
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
        let indexBytes = try Self.readBytes(file, Int(indexOffset), Int(indexLength))
        guard sha256(indexBytes) == digest else {
            throw CheckpointError(.corruptData, "shard index fails its SHA-256 checksum", path: path)
        }
        index = try ShardIndex(
            decoding: indexBytes,
            dataRange: ShardFormat.headerSize..<Int(indexOffset),
            path: path
        )
        var byName: [String: Int] = [:]
        for (position, entry) in index.entries.enumerated() { byName[entry.name] = position }
        self.byName = byName
        self.path = path
        self.fileSize = size
        self.indexDigest = digest
        self.formatVersion = (major, minor)
        self.file = file
    }

    /// The index record of an entry.
    func record(_ name: String) throws(CheckpointError) -> EntryRecord {
        guard let position = byName[name] else {
            throw CheckpointError(
                .entryMissing,
                "entry '\(name)' is not in this checkpoint; it holds: \(index.entries.map(\.name).joined(separator: ", "))",
                path: path
            )
        }
        return index.entries[position]
    }

    /// Decodes all of `record`'s chunks into `destination` (exactly `record.rawSize` bytes).
    func decode(
        _ record: EntryRecord,
        into destination: UnsafeMutableRawBufferPointer,
        threads: Int
    ) throws(CheckpointError) {
        precondition(destination.count == record.rawSize)
        var starts: [Int] = []
        var position = 0
        for chunk in record.chunks {
            starts.append(position)
            position += chunk.rawSize
        }
        let largest = record.chunks.map { max($0.storedSize, $0.rawSize) }.max() ?? 0
        let lanes = max(1, min(threads, record.chunks.count))
        let decoders = try (0..<lanes).map { _ throws(CheckpointError) in try ChunkDecoder(scratchSize: largest) }
        try ParallelWork.run(count: record.chunks.count, workers: decoders) {
            (decoder, index) throws(CheckpointError) in
            let chunk = record.chunks[index]
            let target = UnsafeMutableRawBufferPointer(
                rebasing: destination[starts[index]..<starts[index] + chunk.rawSize]
            )
            try decoder.decode(chunk, of: record, from: file, into: target)
        }
    }

    /// Reads and verifies every chunk of every entry, discarding the data.
    func verifyAll(threads: Int) throws(CheckpointError) {
        for record in index.entries {
            let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, record.rawSize), alignment: 64)
            defer { scratch.deallocate() }
            try decode(
                record,
                into: UnsafeMutableRawBufferPointer(rebasing: scratch[..<record.rawSize]),
                threads: threads
            )
        }
    }

    private static func readBytes(_ file: OpenFile, _ offset: Int, _ count: Int) throws(CheckpointError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        try withTypedThrows {
            try bytes.withUnsafeMutableBytes { buffer in try file.read(into: buffer, at: offset) }
        }
        return bytes
    }
}

/// One worker's buffers for reading stored chunk bytes and undoing the filter.
final class ChunkDecoder {
    private let decompressor: ZstdDecompressor
    private let stored: UnsafeMutableRawBufferPointer
    private let unfiltered: UnsafeMutableRawBufferPointer

    init(scratchSize: Int) throws(CheckpointError) {
        decompressor = try ZstdDecompressor()
        stored = .allocate(byteCount: max(1, scratchSize), alignment: 64)
        unfiltered = .allocate(byteCount: max(1, scratchSize), alignment: 64)
    }

    deinit {
        stored.deallocate()
        unfiltered.deallocate()
    }

    func decode(
        _ chunk: ChunkRecord,
        of record: EntryRecord,
        from file: OpenFile,
        into target: UnsafeMutableRawBufferPointer
    ) throws(CheckpointError) {
        let filtered =
            record.filter == .shuffle ? UnsafeMutableRawBufferPointer(rebasing: unfiltered[..<chunk.rawSize]) : target
        // A raw chunk is read straight to where its bytes belong; a frame goes through scratch.
        let bytes =
            chunk.codec == .raw ? filtered : UnsafeMutableRawBufferPointer(rebasing: stored[..<chunk.storedSize])
        try file.read(into: bytes, at: chunk.offset)
        guard sha256(UnsafeRawBufferPointer(bytes)) == chunk.digest else {
            throw CheckpointError(
                .corruptData,
                "entry '\(record.name)': the chunk at byte \(chunk.offset) fails its SHA-256 checksum",
                path: file.path
            )
        }
        if chunk.codec == .zstd {
            do { try decompressor.decompress(UnsafeRawBufferPointer(bytes), into: filtered) } catch {
                throw CheckpointError(
                    .corruptData,
                    "entry '\(record.name)', chunk at byte \(chunk.offset): \(error.message)",
                    path: file.path
                )
            }
        }
        if record.filter == .shuffle {
            ByteShuffle.unshuffle(UnsafeRawBufferPointer(filtered), into: target, width: record.filterWidth)
        }
    }
}
