import Foundation

/// Reads the named entries of one verified snapshot.
///
/// A ``Checkpointable`` type builds itself from a reader in ``Checkpointable/init(from:)``. Each
/// read decodes the entry's chunks in parallel directly into a new array, verifying every chunk's
/// SHA-256 on the way; nothing is written into the application's existing state, so a failure
/// leaves it untouched.
///
/// ```swift
/// init(from reader: SnapshotReader) throws {
///     temperature = try reader.read([Double].self, "temperature")
///     time = try reader.read(Double.self, "time")
///     parameters = try reader.decode(Parameters.self, "parameters")
/// }
/// ```
///
/// A checkpoint written by another number of ranks is read block by block: distributed arrays with
/// ``read(_:_:block:)`` (a plain read of one throws `layoutMismatch`), everything else from rank 0's
/// copy. See <doc:Repartitioning>.
public struct SnapshotReader: Sendable {
    let shard: ShardReader
    let threads: Int
    private(set) var prefix = ""
    /// The checkpoint's other shards and block layouts (see `SnapshotReader+Blocks.swift`).
    let checkpoint: CheckpointShards
    /// Whether plain reads come from a shard the application named (``savedBy(rank:)``).
    var namedSource = false

    init(shard: ShardReader, threads: Int, checkpoint: CheckpointShards) {
        self.shard = shard
        self.threads = max(1, threads)
        self.checkpoint = checkpoint
    }

    /// The snapshot's entries, in the order they were written.
    public var entries: [EntryInfo] { shard.index.entries.map(EntryInfo.init) }

    /// Whether the snapshot holds an entry with this name (relative to a nested reader's prefix).
    public func contains(_ name: String) -> Bool {
        (try? shard.record(prefix + name)) != nil || checkpoint.isDistributed(prefix + name)
    }

    /// Describes one entry.
    /// - Throws: ``CheckpointError/Code/entryMissing``.
    public func info(_ name: String) throws(CheckpointError) -> EntryInfo { EntryInfo(try plainRecord(prefix + name)) }

    /// Reads an array of `BitwiseCopyable` elements.
    /// - Throws: `entryMissing`; `typeMismatch` when the entry holds other elements (say `Float` saved,
    ///   `Double` requested); `corruptData` when a chunk fails its checksum.
    public func read<Element: BitwiseCopyable>(
        _ type: [Element].Type,
        _ name: String
    ) throws(CheckpointError) -> [Element] {
        let record = try rawRecord(name, Element.self)
        let count = record.elementCount
        try ShardReader.checkAllocation(
            record.rawSize,
            of: "entry '\(PrintableText.escaped(record.name))'",
            path: shard.path
        )
        // An empty array must not go through `unsafeUninitializedCapacity`: for 0 elements it
        // writes the count into the shared empty-array storage, which other threads read
        // (the thread sanitizer reports it). The record was checked above; there is nothing to decode.
        guard count > 0 else { return [] }
        var failure: CheckpointError?
        let array = [Element](unsafeUninitializedCapacity: count) { buffer, initialized in
            do throws(CheckpointError) {
                try shard.decode(record, into: UnsafeMutableRawBufferPointer(buffer), threads: threads)
                initialized = count
            } catch {
                failure = error
                initialized = 0
            }
        }
        if let failure { throw failure }
        return array
    }

    /// Reads a `ContiguousArray` of `BitwiseCopyable` elements. See ``read(_:_:)->[Element]``.
    public func read<Element: BitwiseCopyable>(
        _ type: ContiguousArray<Element>.Type,
        _ name: String
    ) throws(CheckpointError) -> ContiguousArray<Element> {
        ContiguousArray(try read([Element].self, name))
    }

    /// Reads one `BitwiseCopyable` value written with ``SnapshotWriter/write(value:as:)``.
    ///
    /// The entry's element count is checked before anything is decoded: an entry that claims
    /// more than one value is refused without allocating for it.
    public func read<Value: BitwiseCopyable>(_ type: Value.Type, _ name: String) throws(CheckpointError) -> Value {
        let record = try rawRecord(name, Value.self)
        guard record.elementCount == 1 else {
            throw CheckpointError(
                .shapeMismatch,
                "entry '\(PrintableText.escaped(prefix + name))' holds \(record.elementCount) values, not one",
                path: shard.path
            )
        }
        return try read([Value].self, name)[0]
    }

    /// Decodes an entry straight into memory the caller owns, which must have exactly the entry's element count.
    ///
    /// The buffer is only written once every chunk has been read and verified (into a staging
    /// copy), so a failure leaves it as it was.
    /// - Throws: `entryMissing`, `typeMismatch`, `shapeMismatch` (different element count) or `corruptData`.
    public func read<Element: BitwiseCopyable>(
        into buffer: UnsafeMutableBufferPointer<Element>,
        _ name: String
    ) throws(CheckpointError) {
        let staged = try stage(into: buffer.count, Element.self, name)
        staged.apply(to: UnsafeMutableRawBufferPointer(buffer))
    }

    /// The decoded, verified bytes of any entry, whatever its type: the elements' little-endian
    /// bytes for raw entries, UTF-8 JSON for encoded ones. For tools (`ckpt extract`, `ckpt diff`).
    /// - Throws: `entryMissing` or `corruptData`.
    public func readBytes(_ name: String) throws(CheckpointError) -> [UInt8] {
        let record = try plainRecord(prefix + name)
        try ShardReader.checkAllocation(
            record.rawSize,
            of: "entry '\(PrintableText.escaped(record.name))'",
            path: shard.path
        )
        var bytes = [UInt8](repeating: 0, count: record.rawSize)
        try withTypedThrows {
            try bytes.withUnsafeMutableBytes { buffer in try shard.decode(record, into: buffer, threads: threads) }
        }
        return bytes
    }

    /// Decodes a `Codable` entry written with ``SnapshotWriter/encode(_:as:)``.
    /// - Throws: `entryMissing`, `typeMismatch` (the entry holds raw data), `decodingFailed`, `corruptData`.
    public func decode<Value: Decodable>(_ type: Value.Type, _ name: String) throws(CheckpointError) -> Value {
        let record = try plainRecord(prefix + name)
        guard record.encoding == .json else {
            throw CheckpointError(
                .typeMismatch,
                "entry '\(PrintableText.escaped(record.name))' holds raw \(record.elementType), not an encoded \(Value.self); read it with read(_:_:)",
                path: shard.path
            )
        }
        try ShardReader.checkAllocation(
            record.rawSize,
            of: "entry '\(PrintableText.escaped(record.name))'",
            path: shard.path
        )
        var bytes = [UInt8](repeating: 0, count: record.rawSize)
        try withTypedThrows {
            try bytes.withUnsafeMutableBytes { buffer in
                try shard.decode(record, into: buffer, threads: threads)
            }
        }
        do {
            return try JSONCoding.decoder.decode(Value.self, from: Data(bytes))
        } catch {
            throw CheckpointError(
                .decodingFailed,
                "entry '\(PrintableText.escaped(record.name))' (saved as \(PrintableText.escaped(record.elementType.typeName))) does not decode as \(Value.self)",
                path: shard.path,
                underlying: error
            )
        }
    }

    /// A reader for a nested value written with ``SnapshotWriter/write(_:as:)``: names are relative to `name/`.
    public func nested(_ name: String) -> SnapshotReader {
        var reader = self
        reader.prefix = prefix + name + "/"
        return reader
    }

    /// Builds a nested ``Checkpointable`` value written with ``SnapshotWriter/write(_:as:)``.
    public func read<Value: Checkpointable>(_ type: Value.Type, _ name: String) throws -> Value {
        try Value(from: nested(name))
    }

    /// Reads and verifies an entry with `count` elements into a staging buffer, for two-phase restores.
    func stage<Element: BitwiseCopyable>(
        into count: Int,
        _ type: Element.Type,
        _ name: String
    ) throws(CheckpointError) -> StagedBytes {
        let record = try rawRecord(name, Element.self)
        guard record.elementCount == count else {
            throw CheckpointError(
                .shapeMismatch,
                "entry '\(PrintableText.escaped(record.name))' holds \(record.elementCount) elements (shape \(record.shape)) but the destination has \(count)",
                path: shard.path
            )
        }
        let staged = StagedBytes(count: record.rawSize)
        try shard.decode(record, into: staged.bytes, threads: threads)
        return staged
    }

    private func rawRecord<Element: BitwiseCopyable>(
        _ name: String,
        _ type: Element.Type
    ) throws(CheckpointError) -> EntryRecord {
        let record = try plainRecord(prefix + name)
        let wanted = ElementType.of(Element.self)
        guard record.encoding == .raw else {
            throw CheckpointError(
                .typeMismatch,
                "entry '\(PrintableText.escaped(record.name))' holds an encoded \(PrintableText.escaped(record.elementType.typeName)), not raw \(wanted.typeName); read it with decode(_:_:)",
                path: shard.path
            )
        }
        if let problem = record.elementType.restoreProblem(as: wanted) {
            throw CheckpointError(
                .typeMismatch,
                "entry '\(PrintableText.escaped(record.name))' \(problem)",
                path: shard.path
            )
        }
        return record
    }
}

/// Verified bytes waiting to be copied into application memory.
final class StagedBytes: @unchecked Sendable {
    let bytes: UnsafeMutableRawBufferPointer

    init(count: Int) { bytes = .allocate(byteCount: count, alignment: 64) }

    deinit { bytes.deallocate() }

    func apply(to destination: UnsafeMutableRawBufferPointer) {
        precondition(destination.count == bytes.count)
        if bytes.count > 0 { destination.copyMemory(from: UnsafeRawBufferPointer(bytes)) }
    }
}

/// A description of one saved entry, as `ckpt inspect` shows it.
public struct EntryInfo: Sendable, Hashable {
    /// The entry's full name.
    public var name: String
    /// Its element type (for `Codable` entries: `uint8` bytes named after the Swift type).
    public var elementType: ElementType
    /// Whether the entry holds a JSON-encoded `Codable` value rather than raw elements.
    public var isEncoded: Bool
    /// Dimensions, row-major; `[]` for a single value.
    public var shape: [Int]
    /// The filter applied before compression.
    public var filter: Filter
    /// Uncompressed size in bytes.
    public var rawBytes: Int
    /// Size on disk in bytes.
    public var storedBytes: Int
    /// Number of chunks.
    public var chunkCount: Int

    /// `rawBytes / storedBytes` (1 for empty entries).
    public var compressionRatio: Double { storedBytes == 0 ? 1 : Double(rawBytes) / Double(storedBytes) }

    init(_ record: EntryRecord) {
        name = record.name
        elementType = record.elementType
        isEncoded = record.encoding == .json
        shape = record.shape
        filter = record.filter
        rawBytes = record.rawSize
        storedBytes = record.storedSize
        chunkCount = record.chunks.count
    }
}
