/// Constants of the shard file format; `Documentation/FileFormat.md` is the specification.
///
/// ```
/// header  16 bytes   magic "CKPTSNAP", u16 major, u16 minor, u32 flags (0)
///                    (1.x self-contained, 2.x incremental, 3.x self-contained with XXH3 chunk checksums)
/// chunks  …          each a zstd frame or raw bytes, at offsets the index gives
/// index   N bytes    entry table (see ShardIndex); in 2.x preceded by the table of base shards
/// footer  56 bytes   u64 index offset, u64 index length, 32-byte SHA-256 of the index, magic "CKPTEND\0"
/// ```
enum ShardFormat {
    static let magic: [UInt8] = Array("CKPTSNAP".utf8)
    static let footerMagic: [UInt8] = Array("CKPTEND".utf8) + [0]
    /// The newest major version this build reads; readers accept any minor of a major they know.
    static let majorVersion: UInt16 = 3
    /// What a self-contained shard is written as (incremental checkpoints off): every 1.x reader reads it.
    static let selfContainedVersion = Version(major: 1, minor: 0)
    /// What an incremental shard is written as: chunk records carry the digest of their raw bytes and
    /// may refer to chunks stored in older checkpoints' shards. A 1.x reader could not read the
    /// referenced chunks, so it must refuse the file as newer rather than as damaged (which would make
    /// a restore fall back silently past it): hence a major version.
    static let incrementalVersion = Version(major: 2, minor: 0)
    /// A self-contained shard whose chunk checksums are XXH3-128 instead of SHA-256: the 1.0 layout
    /// byte for byte, but a 1.x reader would take every checksum for damage (and fall back silently
    /// past the checkpoint), so it must refuse the file as newer: hence a major version.
    static let fastChecksumVersion = Version(major: 3, minor: 0)

    /// The version a writer writes: 2.0 when incremental (its checksums are SHA-256), else 3.0 with
    /// XXH3-128 checksums, 1.0 with SHA-256.
    static func version(incremental: Bool, checksum: ChecksumAlgorithm) -> Version {
        if incremental { return incrementalVersion }
        return checksum == .xxh3 ? fastChecksumVersion : selfContainedVersion
    }
    static let headerSize = 16
    static let footerSize = 56
    static let digestSize = 32

    /// Limits every reader enforces before allocating, so a hostile file cannot make it allocate
    /// more than the file justifies.
    static let maximumTypeNameLength = 1024
    static let maximumDimensions = 32
    static let maximumChunkRawSize = 1 << 30
    /// zstd never expands data by more than this factor per chunk (an all-equal 128 KiB block is
    /// stored as a 4-byte RLE block): larger claimed raw sizes are corruption.
    static let maximumCompressionRatio = 32_768
    /// A 1.x chunk record: offset, stored size, raw size, codec, digest of the stored bytes.
    static let chunkRecordSize = 8 + 8 + 8 + 1 + digestSize
    /// A 2.x chunk record: a 1.x record, the digest of the raw bytes, and a `u32` location.
    static let incrementalChunkRecordSize = chunkRecordSize + digestSize + 4
    /// A 2.x base record: the step and the index digest of a shard whose chunks this one uses.
    static let baseRecordSize = 8 + digestSize

    /// A shard format version, `major.minor`.
    struct Version: Hashable, Sendable, CustomStringConvertible {
        var major: UInt16
        var minor: UInt16

        /// Whether chunk records carry raw digests and locations (2.x).
        var isIncremental: Bool { major == 2 }

        /// What the chunk records' checksums of the stored bytes are: XXH3-128 in 3.x, SHA-256 otherwise.
        var chunkChecksum: ChecksumAlgorithm { major == 3 ? .xxh3 : .sha256 }

        /// Whether entries may use the ``Filter/delta`` filter (3.x).
        var allowsDelta: Bool { major == 3 }

        /// `"1.0"`.
        var description: String { "\(major).\(minor)" }
    }
}

/// How an entry's bytes are represented.
enum EntryEncoding: UInt8, Sendable {
    /// The elements' in-memory bytes (little-endian), for `BitwiseCopyable` types.
    case raw = 0
    /// UTF-8 JSON from `JSONEncoder`, for `Codable` values.
    case json = 1
}

/// The reversible transform applied to an entry's bytes before compression.
public enum Filter: UInt8, Sendable, CustomStringConvertible, CaseIterable {
    /// Bytes are compressed as they are.
    case none = 0
    /// Bytes are grouped by their position within each scalar before compression.
    case shuffle = 1
    /// Integers are replaced by their differences from the previous one in the chunk (wrapping),
    /// then shuffled: slowly changing counters and indices become runs of small numbers. Shard
    /// format 3.x only.
    case delta = 2

    /// `"none"`, `"shuffle"` or `"delta"`.
    public var description: String {
        switch self {
        case .none: "none"
        case .shuffle: "shuffle"
        case .delta: "delta"
        }
    }

    /// Whether the filter groups bytes by their position in each scalar (both ``shuffle`` and ``delta``).
    var shuffles: Bool { self != .none }

    /// Filters `source` into `destination` (same size, a multiple of `width`): the shuffle, or
    /// (``delta``) the differences of consecutive `width`-byte integers, written into `scratch`
    /// (at least as large as `source`) and then shuffled (8- and 4-byte integers in one pass,
    /// without `scratch`). ``none`` copies.
    func apply(
        _ source: UnsafeRawBufferPointer,
        into destination: UnsafeMutableRawBufferPointer,
        width: Int,
        scratch: UnsafeMutableRawBufferPointer
    ) {
        switch self {
        case .none, .shuffle: ByteShuffle.shuffle(source, into: destination, width: self == .none ? 1 : width)
        case .delta where Delta.fusesShuffle(width: width):
            Delta.encodeShuffled(source, into: destination, width: width)
        case .delta:
            let differences = UnsafeMutableRawBufferPointer(rebasing: scratch[..<source.count])
            Delta.encode(source, into: differences, width: width)
            ByteShuffle.shuffle(UnsafeRawBufferPointer(differences), into: destination, width: width)
        }
    }

    /// Reverses ``apply(_:into:width:scratch:)``: unshuffles `source` into `destination` and, for
    /// ``delta``, adds the differences up (in the same pass for 8- and 4-byte integers).
    func undo(_ source: UnsafeRawBufferPointer, into destination: UnsafeMutableRawBufferPointer, width: Int) {
        if self == .delta && Delta.fusesShuffle(width: width) {
            Delta.decodeShuffled(source, into: destination, width: width)
            return
        }
        ByteShuffle.unshuffle(source, into: destination, width: self == .none ? 1 : width)
        if self == .delta { Delta.decode(destination, width: width) }
    }
}

/// The checksum a shard's chunk records hold of each chunk's stored bytes (one 32-byte field).
enum ChecksumAlgorithm: Sendable {
    /// SHA-256: cryptographic, what content addressing (incremental) and sealed checkpoints need.
    case sha256
    /// XXH3-128 in its canonical (big-endian) form, followed by 16 zero bytes: detects damage at
    /// memory speed, but anyone can forge a match, so it only ever guards against accidents.
    case xxh3

    /// The 32-byte checksum field of `bytes`.
    func field(of bytes: UnsafeRawBufferPointer) -> [UInt8] {
        switch self {
        case .sha256: Checkpoint.sha256(bytes)
        case .xxh3: xxh3_128(bytes) + [UInt8](repeating: 0, count: 16)
        }
    }

    /// `"SHA-256"` or `"XXH3-128"`, for messages.
    var name: String {
        switch self {
        case .sha256: "SHA-256"
        case .xxh3: "XXH3-128"
        }
    }
}

/// How one chunk is stored.
enum ChunkCodec: UInt8, Sendable {
    /// The filtered bytes themselves (the chunk did not shrink under zstd).
    case raw = 0
    /// One standard zstd frame with the content size and checksum.
    case zstd = 1
}

/// One chunk of an entry: where its stored bytes are and how to decode them.
struct ChunkRecord: Sendable, Equatable {
    var offset: Int
    var storedSize: Int
    var rawSize: Int
    var codec: ChunkCodec
    /// The checksum of the stored bytes: SHA-256, or in 3.x shards XXH3-128 and 16 zero bytes
    /// (``ShardFormat/Version/chunkChecksum``).
    var digest: [UInt8]
    /// SHA-256 of the chunk's raw bytes (before the filter and compression): what an incremental
    /// writer compares to find unchanged chunks. Recorded in 2.x shards only.
    var rawDigest: [UInt8]? = nil
    /// Which shard holds the stored bytes: `nil` for this one, otherwise a position in
    /// ``ShardIndex/bases`` (an older checkpoint's shard of the same rank).
    var base: Int? = nil
}

/// An older checkpoint's shard (of the same rank) whose chunks a 2.x shard uses. The reference
/// always names the shard that physically holds the bytes, so there is never a chain to follow.
struct ShardBase: Sendable, Hashable {
    /// The step of the checkpoint whose shard holds the chunks.
    var step: UInt64
    /// The SHA-256 of that shard's index (its footer digest): it tells the shard the references were
    /// made against from one that replaced it since.
    var indexDigest: [UInt8]
}

/// One entry of a shard's index.
struct EntryRecord: Sendable {
    var name: String
    var encoding: EntryEncoding
    var elementType: ElementType
    var filter: Filter
    /// The byte width the shuffle filter used (1 when unfiltered).
    var filterWidth: Int
    var shape: [Int]
    var rawSize: Int
    var chunks: [ChunkRecord]

    var storedSize: Int { chunks.reduce(0) { $0 + $1.storedSize } }
    var elementCount: Int { rawSize / max(elementType.size, 1) }
}

/// The entry table of a shard.
struct ShardIndex: Sendable {
    /// The layout: 1.x (self-contained) or 2.x (raw digests, base table and chunk locations).
    var version: ShardFormat.Version
    /// The shards whose chunks this one uses (2.x), by ascending step.
    var bases: [ShardBase]
    var entries: [EntryRecord]

    /// Serializes the index in the byte layout of its version.
    func encoded() -> [UInt8] {
        var out = ByteBuilder()
        if version.isIncremental {
            out.append(UInt32(bases.count))
            for base in bases {
                out.append(base.step)
                out.append(contentsOf: base.indexDigest)
            }
        }
        out.append(UInt32(entries.count))
        for entry in entries {
            out.appendString16(entry.name)
            out.append(entry.encoding.rawValue)
            out.append(entry.elementType.scalar.rawValue)
            out.append(entry.filter.rawValue)
            out.append(UInt8(entry.filterWidth))
            out.append(UInt32(entry.elementType.size))
            out.appendString16(entry.elementType.typeName)
            out.append(UInt8(entry.shape.count))
            for dimension in entry.shape { out.append(UInt64(dimension)) }
            out.append(UInt64(entry.rawSize))
            out.append(UInt32(entry.chunks.count))
            for chunk in entry.chunks {
                out.append(UInt64(chunk.offset))
                out.append(UInt64(chunk.storedSize))
                out.append(UInt64(chunk.rawSize))
                out.append(chunk.codec.rawValue)
                out.append(contentsOf: chunk.digest)
                if version.isIncremental {
                    precondition(chunk.rawDigest?.count == ShardFormat.digestSize, "a 2.x chunk needs its raw digest")
                    out.append(contentsOf: chunk.rawDigest ?? [])
                    out.append(UInt32(chunk.base.map { $0 + 1 } ?? 0))
                }
            }
        }
        return out.bytes
    }

    /// Parses and validates an index read from a shard of format `version` whose chunk data lies in `dataRange`.
    ///
    /// Every count and size is checked against the bytes that remain and the data region
    /// before anything is allocated from it. Chunks held by base shards are checked against those
    /// shards' data regions when they are opened (``ShardReader``).
    init(
        decoding bytes: [UInt8],
        dataRange: Range<Int>,
        path: String,
        version: ShardFormat.Version = ShardFormat.selfContainedVersion
    ) throws(CheckpointError) {
        var cursor = ByteCursor(bytes, path: path)
        var bases: [ShardBase] = []
        if version.isIncremental {
            let baseCount = Int(try cursor.u32())
            guard baseCount <= cursor.remaining / ShardFormat.baseRecordSize else {
                throw cursor.corrupt("index claims \(baseCount) base shards")
            }
            for _ in 0..<baseCount {
                let step = try cursor.u64()
                let digest = try cursor.bytes(ShardFormat.digestSize)
                guard bases.last.map({ $0.step < step }) ?? true else {
                    throw cursor.corrupt("base shards are not in ascending order of step")
                }
                bases.append(ShardBase(step: step, indexDigest: digest))
            }
        }
        let recordSize = version.isIncremental ? ShardFormat.incrementalChunkRecordSize : ShardFormat.chunkRecordSize
        let entryCount = Int(try cursor.u32())
        // The smallest entry record is 26 bytes (one-byte name, empty type name, no dimensions, no chunks).
        guard entryCount <= bytes.count / 26 else { throw cursor.corrupt("index claims \(entryCount) entries") }
        var entries: [EntryRecord] = []
        entries.reserveCapacity(entryCount)
        var names = Set<String>()
        for _ in 0..<entryCount {
            let name = try cursor.string16(limit: EntryName.maximumLength)
            do { try EntryName.validate(name) } catch {
                throw cursor.corrupt("invalid entry name in index: \(error.message)")
            }
            guard names.insert(name).inserted else { throw cursor.corrupt("entry '\(name)' appears twice") }
            guard let encoding = EntryEncoding(rawValue: try cursor.u8()) else {
                throw cursor.corrupt("unknown encoding of '\(name)'")
            }
            guard let scalar = ElementType.Scalar(rawValue: try cursor.u8()) else {
                throw cursor.corrupt("unknown scalar type of '\(name)'")
            }
            guard let filter = Filter(rawValue: try cursor.u8()) else {
                throw cursor.corrupt("unknown filter of '\(name)'")
            }
            let filterWidth = Int(try cursor.u8())
            let elementSize = Int(try cursor.u32())
            let typeName = try cursor.string16(limit: ShardFormat.maximumTypeNameLength)
            guard elementSize > 0 else { throw cursor.corrupt("element size of '\(name)' is zero") }
            guard scalar == .opaque || elementSize % scalar.size == 0 else {
                throw cursor.corrupt("element size \(elementSize) of '\(name)' is not a multiple of its scalar")
            }
            guard filterWidth >= 1, elementSize % filterWidth == 0 else {
                throw cursor.corrupt("filter width \(filterWidth) of '\(name)' does not divide its element size")
            }
            if filter == .delta {
                guard version.allowsDelta else {
                    throw cursor.corrupt("'\(name)' uses the delta filter, which only format 3.x shards may use")
                }
                guard [1, 2, 4, 8].contains(filterWidth) else {
                    throw cursor.corrupt("the delta filter of '\(name)' has width \(filterWidth), not 1, 2, 4 or 8")
                }
            }
            let dimensionCount = Int(try cursor.u8())
            guard dimensionCount <= ShardFormat.maximumDimensions else {
                throw cursor.corrupt("'\(name)' has \(dimensionCount) dimensions")
            }
            var shape: [Int] = []
            var elements = 1
            for _ in 0..<dimensionCount {
                let dimension = try cursor.u64()
                guard dimension <= UInt64(Int.max) else { throw cursor.corrupt("dimension of '\(name)' overflows") }
                shape.append(Int(dimension))
                let (product, overflow) = elements.multipliedReportingOverflow(by: Int(dimension))
                guard !overflow else { throw cursor.corrupt("shape of '\(name)' overflows") }
                elements = product
            }
            let rawSize64 = try cursor.u64()
            let (expected, overflow) = elements.multipliedReportingOverflow(by: elementSize)
            guard !overflow, rawSize64 == UInt64(expected) else {
                throw cursor.corrupt("'\(name)' holds \(rawSize64) bytes but its shape \(shape) needs \(expected)")
            }
            let rawSize = Int(rawSize64)
            let chunkCount = Int(try cursor.u32())
            guard chunkCount <= cursor.remaining / recordSize else {
                throw cursor.corrupt("'\(name)' claims \(chunkCount) chunks, more than the index holds")
            }
            var chunks: [ChunkRecord] = []
            chunks.reserveCapacity(chunkCount)
            var covered = 0
            for _ in 0..<chunkCount {
                let offset = try cursor.u64()
                let stored = try cursor.u64()
                let raw = try cursor.u64()
                guard let codec = ChunkCodec(rawValue: try cursor.u8()) else {
                    throw cursor.corrupt("unknown codec in '\(name)'")
                }
                let digest = try cursor.bytes(ShardFormat.digestSize)
                var rawDigest: [UInt8]?
                var base: Int?
                if version.isIncremental {
                    rawDigest = try cursor.bytes(ShardFormat.digestSize)
                    let location = Int(try cursor.u32())
                    guard location <= bases.count else {
                        throw cursor.corrupt("a chunk of '\(name)' refers to base shard \(location) of \(bases.count)")
                    }
                    base = location == 0 ? nil : location - 1
                }
                if base == nil {
                    guard offset >= UInt64(dataRange.lowerBound), stored <= UInt64(dataRange.upperBound),
                        offset <= UInt64(dataRange.upperBound) - stored
                    else { throw cursor.corrupt("a chunk of '\(name)' lies outside the data region") }
                } else {
                    // The base's data region is known once it is opened; here only what fits any file.
                    guard offset >= UInt64(ShardFormat.headerSize), stored <= UInt64(Int.max),
                        offset <= UInt64(Int.max) - stored
                    else {
                        throw cursor.corrupt("a chunk of '\(name)' lies outside its base shard's data region")
                    }
                }
                guard raw > 0, raw <= UInt64(ShardFormat.maximumChunkRawSize), raw % UInt64(elementSize) == 0 else {
                    throw cursor.corrupt("a chunk of '\(name)' has an invalid size \(raw)")
                }
                switch codec {
                case .raw:
                    guard stored == raw else { throw cursor.corrupt("a raw chunk of '\(name)' changes size") }
                case .zstd:
                    guard stored > 0, raw / UInt64(ShardFormat.maximumCompressionRatio) <= stored else {
                        throw cursor.corrupt("a chunk of '\(name)' claims an impossible compression ratio")
                    }
                }
                covered += Int(raw)
                guard covered <= rawSize else { throw cursor.corrupt("chunks of '\(name)' hold more than its size") }
                chunks.append(
                    ChunkRecord(
                        offset: Int(offset),
                        storedSize: Int(stored),
                        rawSize: Int(raw),
                        codec: codec,
                        digest: digest,
                        rawDigest: rawDigest,
                        base: base
                    )
                )
            }
            guard covered == rawSize else {
                throw cursor.corrupt("chunks of '\(name)' hold \(covered) bytes but the entry has \(rawSize)")
            }
            let elementType = ElementType(scalar: scalar, size: elementSize, typeName: typeName)
            entries.append(
                EntryRecord(
                    name: name,
                    encoding: encoding,
                    elementType: elementType,
                    filter: filter,
                    filterWidth: filterWidth,
                    shape: shape,
                    rawSize: rawSize,
                    chunks: chunks
                )
            )
        }
        guard cursor.remaining == 0 else {
            throw cursor.corrupt("\(cursor.remaining) unexpected bytes after the index")
        }
        // Each stored byte of this file belongs to at most one chunk. Without this rule a small
        // file could point many chunks at the same bytes and make a reader allocate far more
        // than the file holds. (Chunks in older shards are bounded by those files' sizes when
        // the shard is opened.)
        let regions = entries.flatMap { entry in
            entry.chunks.filter { $0.base == nil }.map { ($0.offset, $0.storedSize) }
        }.sorted { $0 < $1 }
        for (previous, next) in zip(regions, regions.dropFirst()) where previous.0 + previous.1 > next.0 {
            throw cursor.corrupt("two chunks overlap at byte \(next.0)")
        }
        // Chunks in a base shard follow the same rule, except that several records may name the
        // very same stored chunk: an incremental writer reuses one stored chunk for every chunk of
        // the same content. Each base's regions are bounded by its data region when it is opened.
        var baseRegions = [[ChunkRecord]](repeating: [], count: bases.count)
        for entry in entries {
            for chunk in entry.chunks { if let base = chunk.base { baseRegions[base].append(chunk) } }
        }
        for (base, chunks) in baseRegions.enumerated() {
            let sorted = chunks.sorted { ($0.offset, $0.storedSize) < ($1.offset, $1.storedSize) }
            for (previous, next) in zip(sorted, sorted.dropFirst()) {
                let same =
                    previous.offset == next.offset && previous.storedSize == next.storedSize
                    && previous.rawSize == next.rawSize && previous.codec == next.codec
                    && previous.digest == next.digest
                guard same || previous.offset + previous.storedSize <= next.offset else {
                    throw cursor.corrupt(
                        "two chunks in checkpoint \(bases[base].step)'s shard overlap at byte \(next.offset) without being the same chunk"
                    )
                }
            }
        }
        self.version = version
        self.bases = bases
        self.entries = entries
    }

    init(
        entries: [EntryRecord],
        bases: [ShardBase] = [],
        version: ShardFormat.Version = ShardFormat.selfContainedVersion
    ) {
        self.version = version
        self.bases = bases
        self.entries = entries
    }
}
